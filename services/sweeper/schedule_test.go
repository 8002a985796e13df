package sweeper_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/services/sweeper"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
)

// TestSweeperStartsOnlyOnWhatSetupMade: the sweeper makes neither its
// consumer nor the schedule. Without them it refuses to start and says to
// run docuvault setup; with them (events.Setup, tested there) it runs.
func TestSweeperStartsOnlyOnWhatSetupMade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testenv.NATS(t).URL
	bus, err := events.Open(events.ConnectConfig{URL: url}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	// An hour: no tick fires during the test (there is no use case to run).
	sw := sweeper.New(nil, bus, document.SweepConfig{}, time.Hour, nil, zerolog.Nop())
	wantNotSetUp := func(when string) {
		t.Helper()
		err := sw.Run(ctx)
		if !errors.Is(err, events.ErrNotSetUp) || !strings.Contains(err.Error(), "run docuvault setup") {
			t.Errorf("Run %s: %v, want an error saying to run docuvault setup", when, err)
		}
	}
	wantNotSetUp("before setup")
	// Setup's own connection, as `docuvault setup` has.
	nc, js, err := events.Connect(events.ConnectConfig{URL: url, Name: "setup"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := events.EnsureStreams(ctx, js, events.StreamLimits{}); err != nil {
		t.Fatal(err)
	}
	wantNotSetUp("with the streams but no schedule")
	if _, err := js.Consumer(ctx, events.StreamSweeper, sweeper.ConsumerName); err == nil {
		t.Error("the sweeper made its consumer")
	}

	if err := events.Setup(ctx, js, events.StreamLimits{}, time.Hour); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sw.Run(runCtx) }()
	select {
	case err := <-done:
		t.Fatalf("Run after setup returned at once: %v", err)
	case <-time.After(time.Second):
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run after setup: %v", err)
	}
}
