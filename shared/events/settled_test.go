package events_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
)

// The confirm's wait is woken by the event a relay publishes once a door
// committed a document's settlement, as DOCUMENTS stores it: the uploaded
// or rejected event of that document, and nothing else.
func TestSettlementsWakeOnTheDocumentsOwnEvent(t *testing.T) {
	t.Parallel()
	bus, _ := streamsBus(t, events.StreamLimits{})
	watch, err := bus.WatchSettlements()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	publish := func(typ document.EventType, d *document.Document) {
		t.Helper()
		e := document.NewEvent(typ, d, time.Now())
		payload, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.Publish(ctx, e.Subject(), payload, e.ID.String()); err != nil {
			t.Fatal(err)
		}
	}
	user := uuid.New()
	waited := &document.Document{ID: uuid.New(), UserID: user}
	other := &document.Document{ID: uuid.New(), UserID: user}
	settled, stop := watch.Await(waited.ID)
	defer stop()
	twice, stopTwice := watch.Await(waited.ID) // a second confirm of it

	// Another document's settlement, and this one's classification, wake nothing.
	publish(document.EventUploaded, other)
	publish(document.EventClassified, waited)
	select {
	case <-settled:
		t.Fatal("woken by another document's event, or by a classification")
	case <-time.After(200 * time.Millisecond):
	}
	publish(document.EventRejected, waited)
	for _, ch := range []<-chan struct{}{settled, twice} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("not woken by the document's rejection")
		}
	}
	stopTwice()

	// A waiter that stopped is gone: a later wait of the same document
	// waits for a later event.
	again, stopAgain := watch.Await(waited.ID)
	defer stopAgain()
	select {
	case <-again:
		t.Fatal("a new wait was woken by an earlier event")
	case <-time.After(100 * time.Millisecond):
	}
	publish(document.EventUploaded, waited)
	select {
	case <-again:
	case <-time.After(5 * time.Second):
		t.Fatal("not woken by the document's upload")
	}
}
