package events

import (
	"bufio"
	"net"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestVersionAtLeast(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{"2.14.0": true, "2.15.2": true, "3.0.0": true, "2.14.0-beta.1": true, "2.9.25": false, "2.13.9": false, "v2.14.1": true, "": false} {
		if got := versionAtLeast(v, MinServerVersion); got != want {
			t.Errorf("versionAtLeast(%q) = %v", v, got)
		}
	}
}

// TestConnectRefusesOldServer speaks just enough of the NATS protocol to
// announce version 2.9.25, as Debian's nats-server does.
func TestConnectRefusesOldServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte(`INFO {"server_id":"old","version":"2.9.25","proto":1,"max_payload":1048576,"headers":true,"jetstream":true}` + "\r\n"))
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, "PING") {
				_, _ = c.Write([]byte("PONG\r\n"))
			}
		}
	}()
	_, _, err = Connect(ConnectConfig{URL: "nats://" + ln.Addr().String()}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "2.9.25") || !strings.Contains(err.Error(), "2.14.0 or newer") {
		t.Fatalf("Connect to a 2.9 server: %v", err)
	}
}
