package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/services/confirmer"
	"github.com/docuvault/docuvault/services/sweeper"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
)

// noViolations checks that nothing a role's bus logged is a refusal by
// the server.
func noViolations(t *testing.T, role string, logs *logBuffer) {
	t.Helper()
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "Permissions Violation") || strings.Contains(line, "nats async error") {
			t.Errorf("%s: %s", role, line)
		}
	}
}

// consume runs the durable consumer c with h on bus until the test ends.
func consume(t *testing.T, bus *events.Bus, c events.Consumer, h events.Handler) {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- bus.Consume(zerolog.Nop().WithContext(ctx), c, h) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("consume %s: %v", c.Name, err)
		}
	})
}

// receive waits for a value on ch.
func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10 s", what)
		panic("unreachable")
	}
}

// TestRolesDoWhatTheyUse runs what each role does on NATS, through the
// code the role runs (shared/events with the roles' durable consumers), as the
// role's user with its inbox prefix: the start-up checks, the consumer
// loops with their acks (the classifier's and the scanner's on the same
// document events, each its own durable), the outbox relay's publishes,
// the api's live stream (with a resume and a reset), readiness, the
// backlog gauge and the sweep trigger. The server refuses none of it.
func TestRolesDoWhatTheyUse(t *testing.T) {
	s := startConf(t)
	su := s.setup(t)
	ctx := t.Context()
	api, apiLogs := s.bus(t, "api")
	conf, confLogs := s.bus(t, "confirmer")
	sw, swLogs := s.bus(t, "sweeper")
	cl, clLogs := s.bus(t, "classifier")
	sc, scLogs := s.bus(t, "scanner")
	mc := s.minio(t)

	// Start-up checks: the streams each relay publishes to, the schedule.
	if err := api.CheckStreams(ctx, events.StreamMinIO, events.StreamDocuments, events.StreamSweeper); err != nil {
		t.Errorf("api: %v", err)
	}
	if err := conf.CheckStreams(ctx, events.StreamDocuments); err != nil {
		t.Errorf("confirmer: %v", err)
	}
	if err := sw.CheckStreams(ctx, events.StreamDocuments, events.StreamSweeper); err != nil {
		t.Errorf("sweeper: %v", err)
	}
	if every, err := sw.SweepSchedule(ctx); err != nil || every != time.Hour {
		t.Errorf("sweeper: SweepSchedule = %v, %v; want 1h", every, err)
	}
	// /readyz and the backlog gauge (the api serves both).
	if err := api.Ping(ctx); err != nil {
		t.Errorf("api: ping: %v", err)
	}

	// The confirmer takes MinIO's notification and acks it (confirmed).
	notified := make(chan string, 1)
	consume(t, conf, events.Consumer{Durable: events.ConfirmerConsumer}, func(_ context.Context, m events.Message) events.Outcome {
		return events.AckThen(func(context.Context) { notified <- string(m.Data) })
	})
	if _, err := mc.js.Publish(ctx, events.SubjectMinIO, []byte(`{"n":1}`)); err != nil {
		t.Fatalf("minio: publish: %v", err)
	}
	if got := receive(t, "notification at the confirmer", notified); got != `{"n":1}` {
		t.Errorf("confirmer got %s", got)
	}
	if msgs, _, err := api.Backlog(ctx); err != nil || msgs != 0 {
		t.Errorf("api: Backlog = %d, %v; want 0 once the confirmer acked", msgs, err)
	}

	// Every relay's user publishes document events as the relay does (an
	// async JetStream publish with a message id, on a connection with the
	// role's inbox prefix); the classifier and the scanner each receive
	// the document.uploaded ones on their own durable consumer, and the
	// classifier the document.scanned ones too (the scanner's verdicts,
	// which the relays publish for it).
	classified := make(chan string, 8)
	consume(t, cl, events.Consumer{Durable: events.ClassifierConsumer}, func(_ context.Context, m events.Message) events.Outcome {
		classified <- m.Subject
		return events.Ack()
	})
	scanned := make(chan string, 8)
	consume(t, sc, events.Consumer{Durable: events.ScannerConsumer}, func(_ context.Context, m events.Message) events.Outcome {
		scanned <- m.Subject
		return events.Ack()
	})
	user := uuid.New()
	follow, err := api.FollowUser(ctx, user, 0, time.Time{})
	if err != nil {
		t.Fatalf("api: follow: %v", err)
	}
	defer follow.Stop()
	relay := func(role, typ string) uint64 {
		t.Helper()
		msg := &nats.Msg{Subject: typ + "." + user.String(), Data: []byte(`{"by":"` + role + `"}`)}
		f, err := s.as(t, role).js.PublishMsgAsync(msg, jetstream.WithMsgID(uuid.NewString()))
		if err != nil {
			t.Fatalf("%s: publish %s: %v", role, msg.Subject, err)
		}
		select {
		case ack := <-f.Ok():
			return ack.Sequence
		case err := <-f.Err():
			t.Fatalf("%s: publish %s: %v", role, msg.Subject, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no PubAck for %s", role, msg.Subject)
		}
		return 0
	}
	var seqs []uint64
	for _, role := range []string{"api", "confirmer", "sweeper"} {
		seqs = append(seqs, relay(role, string(document.EventUploaded)))
		if got := receive(t, "document.uploaded at the classifier", classified); got != string(document.EventUploaded)+"."+user.String() {
			t.Errorf("classifier got %s", got)
		}
		if got := receive(t, "document.uploaded at the scanner", scanned); got != string(document.EventUploaded)+"."+user.String() {
			t.Errorf("scanner got %s", got)
		}
		if e := receive(t, "the live event", follow.Events); e.Seq != seqs[len(seqs)-1] {
			t.Errorf("api: followed event %d, want %d", e.Seq, seqs[len(seqs)-1])
		}
	}
	// A resume after a held event (a message get), and one too old (a
	// stream info, then a reset).
	resumed, err := api.FollowUser(ctx, user, seqs[0], time.Time{})
	if err != nil {
		t.Fatalf("api: resume: %v", err)
	}
	if e := receive(t, "the resumed event", resumed.Events); resumed.Reset || e.Seq != seqs[1] {
		t.Errorf("api: resumed at %d (reset %v), want %d", e.Seq, resumed.Reset, seqs[1])
	}
	resumed.Stop()
	reset, err := api.FollowUser(ctx, user, seqs[0], time.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("api: resume too old: %v", err)
	}
	if !reset.Reset || reset.Seq != seqs[2] {
		t.Errorf("api: a resume too old: reset %v at %d, want a reset at %d", reset.Reset, reset.Seq, seqs[2])
	}
	reset.Stop()

	// A scan verdict, published by a relay: the classifier takes it up.
	relay("confirmer", string(document.EventScanned))
	if got := receive(t, "document.scanned at the classifier", classified); got != string(document.EventScanned)+"."+user.String() {
		t.Errorf("classifier got %s", got)
	}

	// The admin's sweep: the api publishes a tick, a sweeper takes it and
	// announces the run.
	consume(t, sw, events.Consumer{Durable: events.SweeperConsumer}, func(_ context.Context, m events.Message) events.Outcome {
		var tick sweeper.Tick
		_ = json.Unmarshal(m.Data, &tick)
		return events.AckThen(func(ctx context.Context) {
			if err := sw.Publish(ctx, sweeper.SubjectCompleted, []byte(`{"run_id":"`+tick.RunID+`"}`), tick.RunID+".completed"); err != nil {
				t.Errorf("sweeper: announce: %v", err)
			}
		})
	})
	id, err := sweeper.NewTrigger(api).TriggerSweep(ctx)
	if err != nil {
		t.Fatalf("api: trigger a sweep: %v", err)
	}
	st, err := su.js.Stream(ctx, events.StreamSweeper)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := st.GetLastMsgForSubject(ctx, sweeper.SubjectCompleted)
		if err == nil && strings.Contains(string(m.Data), id) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no run %s announced within 10 s: %v", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	for role, logs := range map[string]*logBuffer{"api": apiLogs, "confirmer": confLogs, "sweeper": swLogs, "classifier": clLogs, "scanner": scLogs} {
		noViolations(t, role, logs)
	}
	mc.noErrors(t)
}

// action is one thing a user may try on NATS: a publish (a JetStream API
// request, an ack, a message) or a subscription, and the users allowed it.
type action struct {
	what    string
	sub     bool // a subscription; otherwise a publish
	subject string
	body    string
	allowed []string
}

// actions lists, for every subject DocuVault uses and every change of a
// stream or consumer, who may do it: everything else is refused.
func actions() []action {
	user := uuid.NewString()
	forged := `{"name":"MINIO_EVENTS","subjects":["minio.events","forge.>"],"subject_transform":{"src":"forge.>","dest":"minio.events"},"retention":"interest","max_bytes":1073741824,"storage":"file","num_replicas":1}`
	var list []action
	pub := func(what, subject, body string, allowed ...string) {
		list = append(list, action{what: what, subject: subject, body: body, allowed: allowed})
	}
	sub := func(what, subject string, allowed ...string) {
		list = append(list, action{what: what, sub: true, subject: subject, allowed: allowed})
	}
	// MinIO's subject: MinIO only, from its own account.
	pub("publish a MinIO notification", "minio.events", `{"Records":[]}`)
	// Streams: setup only.
	pub("add a subject transform to MINIO_EVENTS", "$JS.API.STREAM.UPDATE.MINIO_EVENTS", forged, "setup")
	pub("create a stream republishing to minio.events", "$JS.API.STREAM.CREATE.FORGE", `{"name":"FORGE","subjects":["forge.>"],"republish":{"src":">","dest":"minio.events"},"max_bytes":1048576}`, "setup")
	for _, stream := range []string{"MINIO_EVENTS", "DOCUMENTS", "SWEEPER"} {
		if stream != "MINIO_EVENTS" { // above, with a subject transform
			pub("update "+stream, "$JS.API.STREAM.UPDATE."+stream, `{"name":"`+stream+`"}`, "setup")
		}
		pub("delete "+stream, "$JS.API.STREAM.DELETE."+stream, "", "setup")
		pub("purge "+stream, "$JS.API.STREAM.PURGE."+stream, "", "setup")
		pub("delete a message of "+stream, "$JS.API.STREAM.MSG.DELETE."+stream, `{"seq":1}`, "setup")
		pub("snapshot "+stream, "$JS.API.STREAM.SNAPSHOT."+stream, "", "setup")
		pub("restore "+stream, "$JS.API.STREAM.RESTORE."+stream, "", "setup")
		pub("step down the leader of "+stream, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, "", "setup")
		pub("list the consumers of "+stream, "$JS.API.CONSUMER.NAMES."+stream, "", "setup")
		pub("read a message of "+stream+" (direct)", "$JS.API.DIRECT.GET."+stream, `{"seq":1}`, "setup")
	}
	pub("list the streams", "$JS.API.STREAM.NAMES", "", "setup")
	pub("read the account's JetStream info", "$JS.API.INFO", "", "setup")
	// Reads of streams: who uses them.
	pub("look up MINIO_EVENTS", "$JS.API.STREAM.INFO.MINIO_EVENTS", "", "api", "setup")
	pub("look up DOCUMENTS", "$JS.API.STREAM.INFO.DOCUMENTS", "", "api", "confirmer", "sweeper", "setup")
	pub("look up SWEEPER", "$JS.API.STREAM.INFO.SWEEPER", "", "api", "sweeper", "setup")
	pub("read a notification of MINIO_EVENTS", "$JS.API.STREAM.MSG.GET.MINIO_EVENTS", `{"seq":1}`, "setup")
	pub("read an event of DOCUMENTS", "$JS.API.STREAM.MSG.GET.DOCUMENTS", `{"seq":1}`, "api", "setup")
	pub("read a message of SWEEPER", "$JS.API.STREAM.MSG.GET.SWEEPER", `{"last_by_subj":"sweeper.schedule"}`, "sweeper", "setup")
	// Consumers: made, changed and deleted by setup only, except the
	// api's live-stream consumers of DOCUMENTS.
	pub("create a consumer of MINIO_EVENTS", "$JS.API.CONSUMER.CREATE.MINIO_EVENTS.forger.minio.events", `{"stream_name":"MINIO_EVENTS","config":{"name":"forger","filter_subject":"minio.events"}}`, "setup")
	pub("create an unfiltered consumer of MINIO_EVENTS", "$JS.API.CONSUMER.CREATE.MINIO_EVENTS.forger", `{"stream_name":"MINIO_EVENTS","config":{"name":"forger"}}`, "setup")
	pub("create an ephemeral consumer of MINIO_EVENTS (old form)", "$JS.API.CONSUMER.CREATE.MINIO_EVENTS", `{"stream_name":"MINIO_EVENTS","config":{}}`, "setup")
	pub("create a durable of MINIO_EVENTS (old form)", "$JS.API.CONSUMER.DURABLE.CREATE.MINIO_EVENTS.forger", `{"stream_name":"MINIO_EVENTS","config":{"durable_name":"forger"}}`, "setup")
	pub("update the confirmer's consumer", "$JS.API.CONSUMER.CREATE.MINIO_EVENTS.confirmer.minio.events", `{"stream_name":"MINIO_EVENTS","config":{"durable_name":"confirmer","filter_subject":"minio.events","ack_policy":"none"},"action":"update"}`, "setup")
	pub("delete the confirmer's consumer", "$JS.API.CONSUMER.DELETE.MINIO_EVENTS.confirmer", "", "setup")
	pub("pause the confirmer's consumer", "$JS.API.CONSUMER.PAUSE.MINIO_EVENTS.confirmer", `{}`, "setup")
	pub("update the classifier's consumer", "$JS.API.CONSUMER.CREATE.DOCUMENTS.classifier.document.uploaded.>", `{"stream_name":"DOCUMENTS","config":{"durable_name":"classifier","filter_subject":"document.uploaded.>","ack_policy":"none"},"action":"update"}`, "setup")
	pub("update the classifier's consumer to one user's events", "$JS.API.CONSUMER.CREATE.DOCUMENTS.classifier.document.*."+user, `{"stream_name":"DOCUMENTS","config":{"durable_name":"classifier","filter_subject":"document.*.`+user+`"},"action":"update"}`, "setup")
	pub("delete the classifier's consumer", "$JS.API.CONSUMER.DELETE.DOCUMENTS.classifier", "", "setup")
	pub("update the scanner's consumer", "$JS.API.CONSUMER.CREATE.DOCUMENTS.scanner.document.uploaded.>", `{"stream_name":"DOCUMENTS","config":{"durable_name":"scanner","filter_subject":"document.uploaded.>","ack_policy":"none"},"action":"update"}`, "setup")
	pub("update the scanner's consumer to one user's events", "$JS.API.CONSUMER.CREATE.DOCUMENTS.scanner.document.*."+user, `{"stream_name":"DOCUMENTS","config":{"durable_name":"scanner","filter_subject":"document.*.`+user+`"},"action":"update"}`, "setup")
	pub("delete the scanner's consumer", "$JS.API.CONSUMER.DELETE.DOCUMENTS.scanner", "", "setup")
	pub("create a consumer of every document event", "$JS.API.CONSUMER.CREATE.DOCUMENTS.forger.document.>", `{"stream_name":"DOCUMENTS","config":{"name":"forger","filter_subject":"document.>"}}`, "setup")
	pub("create an unfiltered consumer of DOCUMENTS", "$JS.API.CONSUMER.CREATE.DOCUMENTS.forger", `{"stream_name":"DOCUMENTS","config":{"name":"forger"}}`, "setup")
	pub("update the sweeper's consumer", "$JS.API.CONSUMER.CREATE.SWEEPER.sweeper.sweeper.tick", `{"stream_name":"SWEEPER","config":{"durable_name":"sweeper","filter_subject":"sweeper.tick"},"action":"update"}`, "setup")
	pub("delete the sweeper's consumer", "$JS.API.CONSUMER.DELETE.SWEEPER.sweeper", "", "setup")
	pub("create a consumer of SWEEPER", "$JS.API.CONSUMER.CREATE.SWEEPER.forger.sweeper.tick", `{"stream_name":"SWEEPER","config":{"name":"forger","filter_subject":"sweeper.tick"}}`, "setup")
	pub("follow one user's events (the live stream)", "$JS.API.CONSUMER.CREATE.DOCUMENTS.live_1.document.*."+user, `{"stream_name":"DOCUMENTS","config":{"name":"live_1","filter_subject":"document.*.`+user+`","ack_policy":"none","deliver_policy":"new","inactive_threshold":1000000000,"mem_storage":true,"num_replicas":1}}`, "api", "setup")
	pub("delete a live-stream consumer", "$JS.API.CONSUMER.DELETE.DOCUMENTS.live_1", "", "api", "setup")
	// Binding, pulling and acking: the consumer's role (setup may look up
	// and pull through its $JS.API.>, never ack).
	pub("look up the confirmer's consumer", "$JS.API.CONSUMER.INFO.MINIO_EVENTS.confirmer", "", "confirmer", "setup")
	pub("look up the classifier's consumer", "$JS.API.CONSUMER.INFO.DOCUMENTS.classifier", "", "classifier", "setup")
	pub("look up the scanner's consumer", "$JS.API.CONSUMER.INFO.DOCUMENTS.scanner", "", "scanner", "setup")
	pub("look up the sweeper's consumer", "$JS.API.CONSUMER.INFO.SWEEPER.sweeper", "", "sweeper", "setup")
	pub("pull the confirmer's notifications", "$JS.API.CONSUMER.MSG.NEXT.MINIO_EVENTS.confirmer", `{"batch":1,"no_wait":true}`, "confirmer", "setup")
	pub("pull the classifier's events", "$JS.API.CONSUMER.MSG.NEXT.DOCUMENTS.classifier", `{"batch":1,"no_wait":true}`, "classifier", "setup")
	pub("pull the scanner's events", "$JS.API.CONSUMER.MSG.NEXT.DOCUMENTS.scanner", `{"batch":1,"no_wait":true}`, "scanner", "setup")
	pub("pull the sweeper's ticks", "$JS.API.CONSUMER.MSG.NEXT.SWEEPER.sweeper", `{"batch":1,"no_wait":true}`, "sweeper", "setup")
	pub("pull a live-stream consumer", "$JS.API.CONSUMER.MSG.NEXT.DOCUMENTS.live_1", `{"batch":1,"no_wait":true}`, "api", "setup")
	pub("ack a notification", "$JS.ACK.MINIO_EVENTS.confirmer.1.1.1.1.0", "", "confirmer")
	pub("ack a classifier's event", "$JS.ACK.DOCUMENTS.classifier.1.1.1.1.0", "", "classifier")
	pub("ack a scanner's event", "$JS.ACK.DOCUMENTS.scanner.1.1.1.1.0", "", "scanner")
	pub("ack a sweeper's tick", "$JS.ACK.SWEEPER.sweeper.1.1.1.1.0", "", "sweeper")
	pub("answer a flow control", "$JS.FC.MINIO_EVENTS.x.1", "")
	// Messages: the relays, the trigger, the announcement, the schedule.
	pub("publish a document event (the relay)", "document.uploaded."+user, `{}`, "api", "confirmer", "sweeper")
	// A scan verdict too: the scanner records it in the outbox, the
	// relays publish it.
	pub("publish a scan verdict (the relay)", string(document.EventScanned)+"."+user, `{}`, "api", "confirmer", "sweeper")
	pub("trigger a sweep", "sweeper.tick", `{"run_id":"x"}`, "api")
	pub("announce a sweep", "sweeper.run.completed", `{"run_id":"x"}`, "sweeper")
	pub("publish the sweep schedule", "sweeper.schedule", "", "setup")
	pub("publish elsewhere in SWEEPER", "sweeper.other", "")
	// Subscriptions: each user its own inbox prefix only.
	sub("receive everything", ">")
	sub("receive every inbox", "_INBOX.>")
	sub("receive MinIO's notifications", "minio.events")
	sub("receive document events", "document.>")
	sub("receive the events of documents leaving pending (the confirm's wait)", document.SubjectOfType(document.EventUploaded), "api")
	sub("receive the rejections (the confirm's wait)", document.SubjectOfType(document.EventRejected), "api")
	sub("receive the sweeper's subjects", "sweeper.>")
	sub("receive acks", "$JS.ACK.>")
	sub("receive JetStream API requests", "$JS.API.>")
	for _, u := range users {
		sub("receive "+u+"'s replies", inboxPrefix(u)+".>", u)
	}
	return list
}

// TestUsersAreRefusedWhatTheyDoNotUse tries, as every user of the
// DOCUVAULT account, every action of actions() it is not allowed, and
// checks that the server refused each one (a permission violation naming
// the subject) and that the streams and consumers are as setup made them:
// no change of a stream or consumer, no purge, no message deleted, no
// publish on minio.events, no document event from the classifier or the
// scanner, no subscription to another user's inbox prefix or to _INBOX.>
// (so no role reads the confirmer's pulled notifications).
func TestUsersAreRefusedWhatTheyDoNotUse(t *testing.T) {
	s := startConf(t)
	su := s.setup(t)
	ctx := t.Context()
	mc := s.minio(t)
	if _, err := mc.js.Publish(ctx, events.SubjectMinIO, []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	before := state(t, su)

	list := actions()
	for _, u := range users {
		c := s.as(t, u)
		for _, a := range list {
			if slices.Contains(a.allowed, u) {
				continue
			}
			if a.sub {
				if _, err := c.nc.SubscribeSync(a.subject); err != nil {
					t.Fatalf("%s: subscribe %s: %v", u, a.subject, err)
				}
				c.wantViolation(t, "Subscription", a.subject)
				continue
			}
			if err := c.nc.PublishRequest(a.subject, c.nc.NewRespInbox(), []byte(a.body)); err != nil {
				t.Fatalf("%s: publish %s: %v", u, a.subject, err)
			}
			c.wantViolation(t, "Publish", a.subject)
		}
	}
	if after := state(t, su); after != before {
		t.Errorf("the streams and consumers changed:\nbefore %s\nafter  %s", before, after)
	}
}

// TestRolesAreAllowedWhatTheyUse is the other half of the table: each
// role does every action actions() allows it, and the server refuses
// none. (setup's are covered by events.Setup in every test here.)
func TestRolesAreAllowedWhatTheyUse(t *testing.T) {
	s := startConf(t)
	s.setup(t)
	for _, u := range users {
		if u == "setup" {
			continue
		}
		c := s.as(t, u)
		for _, a := range actions() {
			if !slices.Contains(a.allowed, u) {
				continue
			}
			if a.sub {
				if _, err := c.nc.SubscribeSync(a.subject); err != nil {
					t.Fatalf("%s: subscribe %s: %v", u, a.subject, err)
				}
			} else if err := c.nc.PublishRequest(a.subject, c.nc.NewRespInbox(), []byte(a.body)); err != nil {
				t.Fatalf("%s: publish %s: %v", u, a.subject, err)
			}
			c.noErrors(t) // a refusal would be reported before the flush's answer
		}
	}
}

// TestActionsListEverySubjectOnce keeps actions() honest: each
// subscription or publish is listed once, and every user is allowed
// something and refused something.
func TestActionsListEverySubjectOnce(t *testing.T) {
	seen := map[string]bool{}
	allowed, refused := map[string]int{}, map[string]int{}
	for _, a := range actions() {
		key := fmt.Sprint(a.sub, a.subject)
		if seen[key] {
			t.Errorf("%s listed twice", a.subject)
		}
		seen[key] = true
		for _, u := range users {
			if slices.Contains(a.allowed, u) {
				allowed[u]++
			} else {
				refused[u]++
			}
		}
	}
	for _, u := range users {
		if allowed[u] == 0 || refused[u] == 0 {
			t.Errorf("%s: %d actions allowed, %d refused", u, allowed[u], refused[u])
		}
	}
}

// state describes the streams, their consumers and their messages, as setup
// reads them.
func state(t *testing.T, su *client) string {
	t.Helper()
	ctx := t.Context()
	var b strings.Builder
	names := su.js.StreamNames(ctx)
	var streams []string
	for n := range names.Name() {
		streams = append(streams, n)
	}
	if names.Err() != nil {
		t.Fatal(names.Err())
	}
	slices.Sort(streams)
	for _, name := range streams {
		st, err := su.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info := st.CachedInfo()
		cfg, _ := json.Marshal(info.Config)
		fmt.Fprintf(&b, "%s %s msgs=%d first=%d last=%d;", name, cfg, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
		cons := st.ListConsumers(ctx)
		for ci := range cons.Info() {
			cc, _ := json.Marshal(ci.Config)
			fmt.Fprintf(&b, " consumer %s %s;", ci.Name, cc)
		}
		if cons.Err() != nil {
			t.Fatal(cons.Err())
		}
	}
	return b.String()
}

// TestNoRoleReadsAnothersReplies: while the confirmer pulls a
// notification, the other roles can neither subscribe to its inbox prefix
// or to _INBOX.>, nor pull from its consumer, nor read the notification
// from the stream; and their own requests, sent with the NATS default
// inbox prefix instead of theirs, get no answer (a role cannot listen
// outside its prefix).
func TestNoRoleReadsAnothersReplies(t *testing.T) {
	s := startConf(t)
	s.setup(t)
	ctx := t.Context()
	mc := s.minio(t)
	type spy struct {
		c    *client
		subs []*nats.Subscription
	}
	var spies []spy
	for _, u := range []string{"api", "sweeper", "classifier", "scanner"} {
		c := s.as(t, u)
		sp := spy{c: c}
		for _, subject := range []string{"_INBOX_confirmer.>", "_INBOX.>", ">"} {
			sub, err := c.nc.SubscribeSync(subject)
			if err != nil {
				t.Fatal(err)
			}
			c.wantViolation(t, "Subscription", subject)
			sp.subs = append(sp.subs, sub)
		}
		spies = append(spies, sp)
	}

	conf, logs := s.bus(t, "confirmer")
	got := make(chan string, 1)
	consume(t, conf, events.Consumer{Durable: events.ConfirmerConsumer}, func(_ context.Context, m events.Message) events.Outcome {
		got <- string(m.Data)
		return events.Ack()
	})
	const secret = `{"Records":[{"s3":{"object":{"key":"private"}}}]}`
	if _, err := mc.js.Publish(ctx, events.SubjectMinIO, []byte(secret)); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, "the notification at the confirmer", got); m != secret {
		t.Fatalf("confirmer got %s", m)
	}
	for _, sp := range spies {
		for _, sub := range sp.subs {
			if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
				t.Errorf("%s received %s on %s: %.80s", sp.c.user, m.Subject, sub.Subject, m.Data)
			}
		}
		// With the default inbox prefix, a role's own request goes
		// unanswered: it may not subscribe there.
		nc, err := nats.Connect(s.url, nats.UserInfo(sp.c.user, s.pw[sp.c.user]),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // the refusals expected
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Request("$JS.API.STREAM.INFO.DOCUMENTS", nil, deniedWait); err == nil {
			t.Errorf("%s got an answer on the default inbox prefix", sp.c.user)
		}
		nc.Close()
	}
	noViolations(t, "confirmer", logs)
}

// TestForgedNotificationNeverArrives is the forgery of issue 23 against
// the real server and the real MinIO: a notification for a document with
// no declared size, saying size 1 and the ETag of bytes to be PUT later,
// which the confirmer would charge as 1 byte, after which MinIO's real
// notification (same ETag) would be skipped as already confirmed. With
// each role's credentials it is tried by every path into MINIO_EVENTS:
// publishing on minio.events (core and JetStream); a subject transform, a
// source or more subjects on MINIO_EVENTS (update, or delete and create
// again); a stream republishing to minio.events (a new one, or DOCUMENTS
// changed); a message schedule targeting minio.events from a subject the
// role may publish. Then the bytes are PUT: MINIO_EVENTS holds MinIO's one
// notification, with the real size, and nothing else.
func TestForgedNotificationNeverArrives(t *testing.T) {
	s := startConf(t)
	su := s.setup(t)
	m := startMinIOOn(t, s)
	ctx := t.Context()

	content := []byte("the bytes the forger PUTs once its notification was taken")
	const key = "docs/forged.txt"
	etag := fmt.Sprintf("%x", md5Sum(content))
	forged := fmt.Sprintf(`{"EventName":"s3:ObjectCreated:Put","Key":"%s/%s","Records":[{"eventVersion":"2.0","eventSource":"minio:s3","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"%s"},"object":{"key":"%s","size":1,"eTag":"%s","sequencer":"1"}}}]}`,
		m.bucket, key, m.bucket, strings.ReplaceAll(key, "/", "%2F"), etag)
	if recs, err := confirmer.ParseNotification([]byte(forged)); err != nil || len(recs) != 1 || recs[0].Size != 1 || recs[0].Key != key {
		t.Fatalf("the forgery is not what the confirmer would take: %+v, %v", recs, err)
	}

	minioCfg := func(t *testing.T) jetstream.StreamConfig {
		st, err := su.js.Stream(ctx, events.StreamMinIO)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config
	}
	docsCfg := func(t *testing.T) jetstream.StreamConfig {
		st, err := su.js.Stream(ctx, events.StreamDocuments)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config
	}
	for _, role := range []string{"api", "confirmer", "sweeper", "classifier", "scanner"} {
		c := s.as(t, role)
		try := func(what string, f func(ctx context.Context) error) {
			t.Helper()
			ctx, cancel := context.WithTimeout(ctx, deniedWait)
			defer cancel()
			if err := f(ctx); err == nil {
				t.Errorf("%s: %s succeeded", role, what)
			}
		}
		// publish sends the forgery on subject, as a JetStream publish
		// with headers h; a role allowed the subject gets a PubAck (the
		// message then sits in DOCUMENTS or SWEEPER, not in MINIO_EVENTS).
		publish := func(subject string, h nats.Header) {
			ctx, cancel := context.WithTimeout(ctx, deniedWait)
			defer cancel()
			_, _ = c.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: h, Data: []byte(forged)})
		}
		forge := "document.forge." + role

		if err := c.nc.Publish(events.SubjectMinIO, []byte(forged)); err != nil {
			t.Fatal(err)
		}
		try("a JetStream publish on minio.events", func(ctx context.Context) error {
			_, err := c.js.Publish(ctx, events.SubjectMinIO, []byte(forged))
			return err
		})
		transform := minioCfg(t)
		transform.Subjects = append(transform.Subjects, "forge."+role)
		transform.SubjectTransform = &jetstream.SubjectTransformConfig{Source: "forge." + role, Destination: events.SubjectMinIO}
		try("a subject transform on MINIO_EVENTS", func(ctx context.Context) error {
			_, err := c.js.UpdateStream(ctx, transform)
			return err
		})
		publish("forge."+role, nil)
		sourced := minioCfg(t)
		sourced.Sources = []*jetstream.StreamSource{{Name: events.StreamDocuments, FilterSubject: forge,
			SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: forge, Destination: events.SubjectMinIO}}}}
		try("DOCUMENTS as a source of MINIO_EVENTS", func(ctx context.Context) error {
			_, err := c.js.UpdateStream(ctx, sourced)
			return err
		})
		try("MINIO_EVENTS deleted", func(ctx context.Context) error {
			return c.js.DeleteStream(ctx, events.StreamMinIO)
		})
		wider := minioCfg(t)
		wider.Subjects = append(wider.Subjects, "forge."+role)
		try("MINIO_EVENTS created again with more subjects", func(ctx context.Context) error {
			_, err := c.js.CreateStream(ctx, wider)
			return err
		})
		try("a stream republishing to minio.events", func(ctx context.Context) error {
			_, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: "FORGE_" + strings.ToUpper(role), Subjects: []string{"forge." + role + ".>"},
				MaxBytes: 1 << 20, RePublish: &jetstream.RePublish{Source: ">", Destination: events.SubjectMinIO}})
			return err
		})
		publish("forge."+role+".x", nil)
		republish := docsCfg(t)
		republish.RePublish = &jetstream.RePublish{Source: forge, Destination: events.SubjectMinIO}
		try("DOCUMENTS republishing to minio.events", func(ctx context.Context) error {
			_, err := c.js.UpdateStream(ctx, republish)
			return err
		})
		publish(forge, nil)
		// A message schedule fires its target from the stream's own
		// subjects only (and the target must be one of them).
		for _, subject := range []string{sweeper.SubjectTick, sweeper.SubjectCompleted} {
			publish(subject, nats.Header{"Nats-Schedule": {"@every 1s"}, "Nats-Schedule-Target": {events.SubjectMinIO}})
		}
		if err := c.nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}

	// Anything those attempts set off (a republish, a schedule firing
	// every second) has had time to arrive.
	time.Sleep(2 * time.Second)
	if n := streamMsgs(t, su, events.StreamMinIO); n != 0 {
		t.Fatalf("MINIO_EVENTS holds %d messages before any PUT, want none", n)
	}

	// The forger's PUT: MinIO's real notification arrives, alone.
	if err := m.put(ctx, key, content); err != nil {
		t.Fatal(err)
	}
	m.waitStored(t, su, 1)
	st, err := su.js.Stream(ctx, events.StreamMinIO)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("MINIO_EVENTS message %d: %v", seq, err)
		}
		recs, err := confirmer.ParseNotification(raw.Data)
		if err != nil {
			t.Fatalf("MINIO_EVENTS message %d: %v", seq, err)
		}
		for _, r := range recs {
			if r.Key != key || r.Size != int64(len(content)) || r.ETag != etag {
				t.Errorf("MINIO_EVENTS message %d: %s of %d bytes, ETag %s; want only MinIO's: %s of %d bytes, ETag %s", seq, r.Key, r.Size, r.ETag, key, len(content), etag)
			}
		}
	}
	if cfg := minioCfg(t); !slices.Equal(cfg.Subjects, []string{events.SubjectMinIO}) || cfg.SubjectTransform != nil || len(cfg.Sources) > 0 || cfg.RePublish != nil {
		t.Errorf("MINIO_EVENTS changed: %+v", cfg)
	}
	if cfg := docsCfg(t); cfg.RePublish != nil {
		t.Errorf("DOCUMENTS republishes: %+v", cfg.RePublish)
	}
	if _, err := su.js.Stream(ctx, "FORGE_API"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream FORGE_API: %v, want none", err)
	}
}
