package events

import (
	"bufio"
	"net"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestParseNotification(t *testing.T) {
	t.Parallel()
	const put = `{"EventName":"s3:ObjectCreated:Put","Key":"docs/u%2Fd%2Fa+b.pdf","Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"docs"},"object":{"key":"u%2Fd%2Fa+b.pdf","size":12,"eTag":"abc"}}}]}`
	got, err := ParseNotification([]byte(put))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (ObjectCreated{EventName: "s3:ObjectCreated:Put", Bucket: "docs", Key: "u/d/a b.pdf", Size: 12, ETag: "abc"}) {
		t.Fatalf("parsed %+v", got)
	}
	for _, name := range []string{"s3:ObjectCreated:Post", "s3:ObjectCreated:Copy", "s3:ObjectCreated:CompleteMultipartUpload", "ObjectCreated:Put"} {
		msg := strings.ReplaceAll(put, `"eventName":"s3:ObjectCreated:Put"`, `"eventName":"`+name+`"`)
		if got, err := ParseNotification([]byte(msg)); err != nil || len(got) != 1 {
			t.Errorf("%s: %v %v", name, got, err)
		}
	}
	deleted := strings.ReplaceAll(put, `"eventName":"s3:ObjectCreated:Put"`, `"eventName":"s3:ObjectRemoved:Delete"`)
	if got, err := ParseNotification([]byte(deleted)); err != nil || len(got) != 0 {
		t.Errorf("a delete record should be skipped: %v %v", got, err)
	}
	for _, bad := range []string{"", "null", "{}", `{"Records":[]}`, `{"Records":[{}]}`, "[1,2]",
		strings.ReplaceAll(put, `u%2Fd%2Fa+b.pdf","size"`, `%zz","size"`),
		strings.ReplaceAll(put, `"size":12`, `"size":-1`),
		strings.ReplaceAll(put, `"name":"docs"`, `"name":""`),
	} {
		if _, err := ParseNotification([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseNotification(f *testing.F) {
	f.Add([]byte(`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a%2Fb","size":1}}}]}`))
	f.Add([]byte(`{"Records":[{"eventName":"s3:ObjectRemoved:Delete"}]}`))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseNotification(data)
		if err != nil {
			return
		}
		for _, r := range recs {
			if r.Key == "" || r.Bucket == "" || r.Size < 0 || !createdEvents[r.EventName] {
				t.Fatalf("accepted an invalid record %+v from %q", r, data)
			}
		}
	})
}

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
