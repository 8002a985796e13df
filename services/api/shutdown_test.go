package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/services/docuvault/stack"
)

// A replica being replaced (a rolling deploy, a scale-down) stops taking
// connections, ends its live event streams so their clients reconnect to
// another replica, and still answers the requests it had begun.
func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)

	st, stopAPI := s.StartRole(t, stack.API) // a second api replica, to stop
	served := make(chan error, 1)
	stop := func() { go func() { served <- stopAPI() }() }
	addr := st.APIAddr.String()

	// A live event stream, open.
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	sse, err := http.DefaultClient.Do(req)
	if err != nil || sse.StatusCode != http.StatusOK {
		t.Fatalf("events: %v, %v", sse, err)
	}
	defer sse.Body.Close()
	sseEnded := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, sse.Body); sseEnded <- err }()

	// An upload-url request whose body is half sent.
	body := fmt.Sprintf(`{"filename":"late.pdf","content_type":"application/pdf","size_bytes":%d}`, 4321)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/documents/upload-url HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, tok, len(body), body[:len(body)/2])
	time.Sleep(500 * time.Millisecond) // the server has accepted, read the head and waits for the body

	stop()
	// New connections are refused once the listener is closed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the api still accepts connections 10 s after it was told to stop")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-sseEnded:
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream stayed open while the api shut down")
	}
	select {
	case err := <-served:
		t.Fatalf("the api stopped (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}

	// The rest of the body: the request is answered in full.
	if _, err := io.WriteString(conn, body[len(body)/2:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	defer resp.Body.Close()
	var ticket struct {
		DocumentID uuid.UUID `json:"document_id"`
		UploadURL  string    `json:"upload_url"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&ticket) != nil || ticket.DocumentID == uuid.Nil {
		t.Fatalf("upload-url in flight during shutdown: %d %+v", resp.StatusCode, ticket)
	}
	// and then its connection is closed, not kept alive.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("after its last answer the connection read %d bytes, %v; want EOF", n, err)
	}
	var n int
	if err := s.DB.QueryRow(context.Background(), "SELECT count(*) FROM documents WHERE id = $1 AND status = 'pending'", ticket.DocumentID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("document %s of the answered request: %d rows, %v", ticket.DocumentID, n, err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("the api's Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the api did not stop after its last request was answered")
	}
}
