// Package clamav is a client of ClamAV's daemon, clamd: its INSTREAM
// command (the bytes go over the connection, clamd needs no access to
// them) and PING. Fail-closed by construction: a verdict of clean is only
// ever clamd's own "stream: OK" after every byte was sent and the end of
// the stream acknowledged; a failed write, a short read, a timeout or any
// other answer is an error, never clean.
//
// Written here rather than taken from a library: the protocol is a few
// dozen lines (clamd's manual, "INSTREAM"), and no Go client is kept up to
// date (the candidates are years old, and one reports clean when a write
// fails).
package clamav

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// chunkSize is the most bytes one INSTREAM chunk carries.
const chunkSize = 64 << 10

// maxReply bounds the answer read from clamd: a verdict is a short line.
const maxReply = 4 << 10

// ErrTooLarge is a stream longer than the scanner takes: MaxBytes, or
// clamd's StreamMaxLength ("INSTREAM size limit exceeded"). Nothing was
// scanned.
var ErrTooLarge = errors.New("clamav: the stream is larger than the scanner takes")

// Client scans streams with a clamd.
type Client struct {
	// Network and Address say where clamd listens: "tcp" and host:port
	// (clamd's TCPSocket), or "unix" and a socket path (LocalSocket).
	Network, Address string
	// Timeout bounds each call when its context ends later (0: the
	// context's deadline only). It covers the whole scan, sending and
	// clamd's verdict.
	Timeout time.Duration
	// MaxBytes is the most bytes one Scan sends (0: no bound but clamd's);
	// keep it at or below clamd's StreamMaxLength.
	MaxBytes int64
}

// Verdict is clamd's answer about one stream.
type Verdict struct {
	// Infected is true when clamd found a signature in the stream.
	Infected bool
	// Signature names what it found (e.g. "Win.Test.EICAR_HDB-1").
	Signature string
	// LimitsExceeded is true when clamd could not scan the whole stream:
	// an archive member, the data extracted or the nesting was over its
	// MaxFileSize, MaxScanSize or MaxRecursion. clamd says so only with
	// AlertExceedsMax (a "Heuristics.Limits.Exceeded.*" signature, in
	// Signature); without it, it answers OK for what it skipped. Neither
	// infected nor clean.
	LimitsExceeded bool
}

// limitsExceeded prefixes the signatures clamd reports, with
// AlertExceedsMax, for a stream it could not scan whole.
const limitsExceeded = "Heuristics.Limits.Exceeded"

// Scan streams r to clamd and returns its verdict. An error means no
// verdict: the stream must be treated as not scanned. r should end its
// reads when ctx ends (an object store's stream does): Scan's deadline
// stops the connection, not a read that blocks.
func (c *Client) Scan(ctx context.Context, r io.Reader) (Verdict, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	conn, err := c.dial(ctx)
	if err != nil {
		return Verdict{}, err
	}
	defer conn.Close()
	// A NUL-terminated command ("z") and a NUL-terminated answer.
	if _, err := conn.Write([]byte("zINSTREAM\x00")); err != nil {
		return Verdict{}, c.failed("send INSTREAM", err)
	}
	sent, err := c.send(conn, r)
	var closed *connError
	if errors.As(err, &closed) {
		// clamd closes the connection once the stream passes its
		// StreamMaxLength, saying so first: read what it said (it is
		// there already, or nothing will come).
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		if reply, rerr := readReply(conn); rerr == nil && isSizeLimit(reply) {
			return Verdict{}, ErrTooLarge
		}
	}
	if err != nil {
		return Verdict{}, err
	}
	reply, err := readReply(conn)
	if err != nil {
		return Verdict{}, c.failed(fmt.Sprintf("read the verdict on %d bytes", sent), err)
	}
	return parseVerdict(reply)
}

// send writes r to conn as INSTREAM chunks, then the zero-length chunk
// that ends the stream, and returns how many bytes it sent.
func (c *Client) send(conn net.Conn, r io.Reader) (int64, error) {
	buf := make([]byte, 4+chunkSize)
	var sent int64
	for {
		// What the reader has now goes at once: a slow source (an object
		// store's stream) keeps the connection moving, and the deadline
		// counts from the last byte sent.
		n, rerr := r.Read(buf[4:])
		if n > 0 {
			if c.MaxBytes > 0 && sent+int64(n) > c.MaxBytes {
				return sent, ErrTooLarge
			}
			binary.BigEndian.PutUint32(buf[:4], uint32(n))
			if _, err := conn.Write(buf[:4+n]); err != nil {
				return sent, &connError{c.failed("send the stream", err)}
			}
			sent += int64(n)
		}
		switch {
		case rerr == io.EOF:
			if _, err := conn.Write([]byte{0, 0, 0, 0}); err != nil {
				return sent, c.failed("end the stream", err)
			}
			return sent, nil
		case rerr != nil:
			return sent, fmt.Errorf("clamav: read the stream to scan: %w", rerr)
		}
	}
}

// connError is a write to clamd that failed: clamd may have said why.
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// Ping checks that clamd answers.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("zPING\x00")); err != nil {
		return c.failed("send PING", err)
	}
	reply, err := readReply(conn)
	if err != nil {
		return c.failed("read PONG", err)
	}
	if reply != "PONG" {
		return fmt.Errorf("clamav: PING answered %q", reply)
	}
	return nil
}

// bound is ctx ended by Timeout too.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.Timeout > 0 {
		return context.WithTimeout(ctx, c.Timeout)
	}
	return context.WithCancel(ctx)
}

// dial connects to clamd with the call's deadline set on the connection,
// which ctx's end (a cancel before the deadline) also interrupts.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.Network, c.Address)
	if err != nil {
		return nil, c.failed("connect", err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return &stopConn{Conn: conn, stop: stop}, nil
}

// stopConn is a connection whose context watch ends when it is closed.
type stopConn struct {
	net.Conn
	stop func() bool
}

func (c *stopConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

func (c *Client) failed(what string, err error) error {
	return fmt.Errorf("clamav: %s (clamd at %s %s): %w", what, c.Network, c.Address, err)
}

// readReply reads clamd's NUL-terminated answer (or, if it closes the
// connection instead, what it sent) without the NUL.
func readReply(conn net.Conn) (string, error) {
	reply, err := bufio.NewReader(io.LimitReader(conn, maxReply)).ReadBytes(0)
	if err != nil && !(errors.Is(err, io.EOF) && len(reply) > 0) {
		return "", err
	}
	return string(bytes.TrimRight(reply, "\x00\n")), nil
}

func isSizeLimit(reply string) bool {
	return strings.Contains(reply, "size limit exceeded")
}

// parseVerdict reads clamd's answer to INSTREAM: "stream: OK", "stream:
// <signature> FOUND", or an error ("... ERROR").
func parseVerdict(reply string) (Verdict, error) {
	switch {
	case reply == "stream: OK":
		return Verdict{}, nil
	case strings.HasPrefix(reply, "stream: ") && strings.HasSuffix(reply, " FOUND"):
		sig := strings.TrimSuffix(strings.TrimPrefix(reply, "stream: "), " FOUND")
		if strings.HasPrefix(sig, limitsExceeded) {
			return Verdict{LimitsExceeded: true, Signature: sig}, nil
		}
		return Verdict{Infected: true, Signature: sig}, nil
	case isSizeLimit(reply):
		return Verdict{}, ErrTooLarge
	}
	return Verdict{}, fmt.Errorf("clamav: clamd answered %q", reply)
}
