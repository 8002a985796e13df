package devstack

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// Port is a TCP address something is about to listen on, and how a user
// changes it when it is taken.
type Port struct {
	Name    string // what listens there, such as "HTTP address"
	Addr    string // host:port
	Setting string // how to choose another, such as "HTTP_ADDR or --http-addr"
}

// CheckPorts tries to listen on every port in turn and closes the listener
// again. It fails, naming each port's Setting, if any is taken or cannot be
// used; listing every problem at once spares the user a run per port. A
// port is still free to be taken by someone else after the check.
func CheckPorts(ports ...Port) error {
	var errs []error
	var open []net.Listener
	defer func() {
		for _, l := range open {
			l.Close()
		}
	}()
	for _, p := range ports {
		// Holding the listeners until the end also catches two settings
		// naming the same address.
		l, err := net.Listen("tcp", p.Addr)
		if err == nil {
			open = append(open, l)
			continue
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			errs = append(errs, fmt.Errorf("%s %s is taken: set %s", p.Name, p.Addr, p.Setting))
		} else {
			errs = append(errs, fmt.Errorf("%s %s cannot be used (%v): set %s", p.Name, p.Addr, err, p.Setting))
		}
	}
	return errors.Join(errs...)
}

// splitAddr parses host:port and requires an explicit port: nats-server
// reads port 0 as 4222 and MinIO as a random one, both surprises here.
func splitAddr(addr, setting string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %q is not host:port: %w", setting, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("%s: %q needs a port between 1 and 65535", setting, addr)
	}
	return h, n, nil
}

// dialHost returns the host a client on this machine connects to for a
// server listening on host: a wildcard address becomes the loopback one.
func dialHost(host string) string {
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "127.0.0.1"
	}
	return host
}

// DialAddr returns the host:port a client on this machine connects to for a
// server listening on addr: ":8080" and "0.0.0.0:8080" become
// "127.0.0.1:8080". An addr that is not host:port is returned unchanged.
func DialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(dialHost(host), port)
}
