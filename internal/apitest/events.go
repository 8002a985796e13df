package apitest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docuvault/docuvault/shared/events"
)

// Event is a document event as recorded: CloudEvents JSON.
type Event struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Data    json.RawMessage `json:"data"`
}

// DocumentEvents returns every event recorded for document id, oldest
// first, each once: those the relays published to the DOCUMENTS stream
// (they delete the rows they publish) and those still waiting in the
// outbox. The outbox is read first, so a row published meanwhile is seen
// in both and kept once, by event id.
func (s *Stack) DocumentEvents(tb testing.TB, id uuid.UUID) []Event {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := s.DB.Query(ctx, `SELECT payload::text FROM outbox WHERE payload->>'subject' = $1 ORDER BY id`, id.String())
	if err != nil {
		tb.Fatal(err)
	}
	var waiting []Event
	for rows.Next() {
		var payload string
		if err := rows.Scan(&payload); err != nil {
			tb.Fatal(err)
		}
		waiting = append(waiting, decodeEvent(tb, []byte(payload)))
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}

	nc, js := s.connectNATS(tb)
	defer nc.Close()
	stream, err := js.Stream(ctx, events.StreamDocuments)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var all []Event
	seen := map[string]bool{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		if e := decodeEvent(tb, msg.Data); e.Subject == id.String() {
			all = append(all, e)
			seen[e.ID] = true
		}
	}
	for _, e := range waiting {
		if !seen[e.ID] {
			all = append(all, e)
		}
	}
	return all
}

// CountEvents counts the events of type typ recorded for document id.
func (s *Stack) CountEvents(tb testing.TB, id uuid.UUID, typ string) int {
	tb.Helper()
	n := 0
	for _, e := range s.DocumentEvents(tb, id) {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func decodeEvent(tb testing.TB, b []byte) Event {
	tb.Helper()
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		tb.Fatalf("event is not CloudEvents JSON: %v: %s", err, b)
	}
	return e
}
