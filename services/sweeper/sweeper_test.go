package sweeper_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/services/sweeper"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// age makes documents look last changed by long ago.
func age(t *testing.T, s *apitest.Stack, by time.Duration, ids ...uuid.UUID) {
	t.Helper()
	if _, err := s.DB.Exec(context.Background(), `UPDATE documents SET created_at = created_at - $2::interval,
		updated_at = updated_at - $2::interval WHERE id = ANY($1)`, ids, by.String()); err != nil {
		t.Fatal(err)
	}
}

func exists(t *testing.T, s *apitest.Stack, id uuid.UUID) bool {
	t.Helper()
	var n int
	if err := s.DB.QueryRow(context.Background(), "SELECT count(*) FROM documents WHERE id = $1", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestScheduledSweepPurgesStaleUploadsAndKeepsYoungOnes(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Sweepers: 1, Edit: func(c *config.Config) { c.SweepInterval = time.Second }})
	user, tok := s.NewUser(t)
	s.SetLimit(t, user, 100)

	var young, stale []uuid.UUID
	for range 3 {
		young = append(young, s.RequestUpload(t, tok, "young.pdf", "application/pdf", 10).DocumentID)
		stale = append(stale, s.RequestUpload(t, tok, "stale.pdf", "application/pdf", 10).DocumentID)
	}
	// A stale upload that arrived but breaks the quota: rejected, object deleted.
	tk := s.RequestUpload(t, tok, "big.pdf", "application/pdf", -1)
	if st := s.Put(t, tk, "", apitest.BytesOf(500)); st != http.StatusOK {
		t.Fatal(st)
	}
	age(t, s, 2*time.Hour, append(stale, tk.DocumentID)...)

	deadline := time.Now().Add(15 * time.Second)
	for {
		gone := 0
		for _, id := range stale {
			if !exists(t, s, id) {
				gone++
			}
		}
		if gone == len(stale) && !s.ObjectExists(t, tk.DocumentID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s of @every 1s sweeps, %d of %d stale rows are gone", gone, len(stale))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, id := range young {
		if !exists(t, s, id) {
			t.Fatalf("young pending document %s was purged", id)
		}
	}
	var status, reason string
	if err := s.DB.QueryRow(context.Background(), "SELECT status, reject_reason FROM documents WHERE id = $1", tk.DocumentID).Scan(&status, &reason); err != nil {
		t.Fatal(err)
	}
	if status != "rejected" || reason != "over_quota" {
		t.Fatalf("stale over-quota upload is %s/%s", status, reason)
	}
	if used, _ := s.Quota(t, tok); used != 0 {
		t.Fatalf("used_bytes = %d", used)
	}
}

func TestSweepRecoversALostEventAndChargesOnce(t *testing.T) {
	t.Parallel()
	// No MinIO notifications: the event is "lost".
	s := apitest.Start(t, apitest.Options{Sweepers: 1})
	done := s.WatchSweeps(t)
	_, tok := s.NewUser(t)
	id := s.Upload(t, tok, "lost.pdf", apitest.BytesOf(321))
	age(t, s, 2*time.Hour, id)

	first := done.Wait(t, s.TriggerSweep(t), 10*time.Second)
	if first.Confirmed != 1 || first.Purged != 0 || first.Errors != 0 {
		t.Fatalf("first run: %+v", first)
	}
	second := done.Wait(t, s.TriggerSweep(t), 10*time.Second)
	if second.Confirmed != 0 {
		t.Fatalf("second run confirmed again: %+v", second)
	}
	var c apitest.Confirmation
	r := s.Confirm(t, tok, id)
	r.Decode(t, &c)
	if r.Status != http.StatusOK || c.Status != "uploaded" || c.UsedBytes != 321 {
		t.Fatalf("after the sweep: %d %s", r.Status, r.Body)
	}
	if events := s.CountEvents(t, id, "document.uploaded"); events != 1 {
		t.Fatalf("%d document.uploaded events, want 1", events)
	}
}

func TestOrphanedObjectRemovedLiveObjectKept(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Sweepers: 1, Edit: func(c *config.Config) {
		c.UploadURLTTL = 2 * time.Second // a second was too tight for the PUT on a loaded machine
		c.PendingTTL = 3 * time.Second
	}})
	done := s.WatchSweeps(t)
	_, tok := s.NewUser(t)
	live := s.Upload(t, tok, "live.pdf", apitest.BytesOf(100))
	if r := s.Confirm(t, tok, live); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	orphan := uuid.NewString() + "/" + uuid.NewString() + "/" + uuid.NewString() + ".pdf"
	client := s.MinIO.Client(t)
	if _, err := client.PutObject(context.Background(), s.Bucket, orphan, bytes.NewReader([]byte("left behind")), 11, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3100 * time.Millisecond) // both objects are now older than PENDING_TTL

	run := done.Wait(t, s.TriggerSweep(t), 10*time.Second)
	if run.OrphansRemoved != 1 || run.Errors != 0 {
		t.Fatalf("run: %+v", run)
	}
	if s.KeyExists(t, orphan) {
		t.Fatal("orphaned object still there")
	}
	if !s.ObjectExists(t, live) {
		t.Fatal("a live document's object was removed")
	}
}

// No run lists the whole bucket: each checks the next SWEEP_RECONCILE_KEYS
// keys after the cursor it left, and a finished pass waits for the period.
func TestReconciliationChecksOneSliceOfTheBucketPerRun(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Sweepers: 1, Edit: func(c *config.Config) {
		c.UploadURLTTL = 2 * time.Second
		c.PendingTTL = 3 * time.Second
		c.ReconcileKeys = 3
	}})
	done := s.WatchSweeps(t)
	_, tok := s.NewUser(t)
	live := s.Upload(t, tok, "live.pdf", apitest.BytesOf(100))
	if r := s.Confirm(t, tok, live); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	client := s.MinIO.Client(t)
	var orphans []string
	for range 7 {
		key := uuid.NewString() + "/" + uuid.NewString() + "/" + uuid.NewString() + ".pdf"
		if _, err := client.PutObject(context.Background(), s.Bucket, key, bytes.NewReader([]byte("left behind")), 11, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		orphans = append(orphans, key)
	}
	time.Sleep(3100 * time.Millisecond) // every object is now older than PENDING_TTL

	// 8 keys, 3 a run.
	removed := 0
	for i, want := range []int{3, 3, 2, 0} {
		run := done.Wait(t, s.TriggerSweep(t), 10*time.Second)
		if run.KeysChecked != want || run.Errors != 0 {
			t.Fatalf("run %d: %+v; want %d keys checked", i+1, run, want)
		}
		removed += run.OrphansRemoved
	}
	if removed != len(orphans) {
		t.Fatalf("%d orphans removed, want %d", removed, len(orphans))
	}
	for _, key := range orphans {
		if s.KeyExists(t, key) {
			t.Fatalf("orphan %s still there", key)
		}
	}
	if !s.ObjectExists(t, live) {
		t.Fatal("a live document's object was removed")
	}
}

func TestTwoSweepersProcessEachTickOnce(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Sweepers: 2, Edit: func(c *config.Config) {
		c.UploadsPerMinute, c.MaxPendingUploads = 1000, 1000 // one user makes 220 uploads here
	}})
	done := s.WatchSweeps(t)
	_, tok := s.NewUser(t)

	var stale []uuid.UUID
	for range 200 {
		stale = append(stale, s.RequestUpload(t, tok, "never.pdf", "application/pdf", 10).DocumentID)
	}
	var lost []uuid.UUID
	var want int64
	for i := range 20 {
		lost = append(lost, s.Upload(t, tok, "lost.pdf", apitest.BytesOf(50+i)))
		want += int64(50 + i)
	}
	age(t, s, 2*time.Hour, append(stale, lost...)...)

	var ids []string
	for range 6 {
		ids = append(ids, s.TriggerSweep(t))
	}
	var purged, confirmed int
	for _, id := range ids {
		c := done.Wait(t, id, 30*time.Second)
		purged += c.Purged
		confirmed += c.Confirmed
	}
	time.Sleep(200 * time.Millisecond)
	seen := map[string]int{}
	for _, c := range done.All() {
		seen[c.RunID]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("run %s completed %d times, want once", id, seen[id])
		}
	}
	if purged != 200 || confirmed != 20 {
		t.Fatalf("runs purged %d (want 200) and confirmed %d (want 20)", purged, confirmed)
	}
	if used, _ := s.Quota(t, tok); used != want {
		t.Fatalf("used_bytes = %d, want %d", used, want)
	}
	runs := apitest.Count(s.Sweepers[0].Metrics.SweepRuns) + apitest.Count(s.Sweepers[1].Metrics.SweepRuns)
	if runs != int64(len(ids)) {
		t.Fatalf("replicas ran %d sweeps for %d ticks", runs, len(ids))
	}
	t.Logf("replica runs: %d and %d", apitest.Count(s.Sweepers[0].Metrics.SweepRuns), apitest.Count(s.Sweepers[1].Metrics.SweepRuns))
}

func TestTenThousandStaleUploadsPurgedInOneRun(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Sweepers: 1})
	done := s.WatchSweeps(t)
	user := uuid.New()
	const n = 10000
	if _, err := s.DB.Exec(context.Background(), `INSERT INTO documents (id, user_id, filename, content_type, object_key, status, created_at, updated_at)
		SELECT gen_random_uuid(), $1::uuid, 'stale.pdf', 'application/pdf', $1::text || '/' || gen_random_uuid() || '/x.pdf', 'pending',
		       now() - interval '2 hours', now() - interval '2 hours'
		FROM generate_series(1, $2)`, user, n); err != nil {
		t.Fatal(err)
	}
	run := done.Wait(t, s.TriggerSweep(t), 5*time.Minute)
	if run.Purged != n || run.Errors != 0 {
		t.Fatalf("run: %+v", run)
	}
	var left int
	if err := s.DB.QueryRow(context.Background(), "SELECT count(*) FROM documents").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d rows left", left)
	}
	t.Logf("purged %d stale uploads in %d ms; longest batch transaction %.2f ms", n, run.DurationMS, run.MaxBatchLockMS)
}

func TestFailedObjectDeleteKeepsTheRowForTheNextRun(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Sweepers: 1, MinIO: testenv.StartMinIO(t, testenv.MinIOOptions{})})
	done := s.WatchSweeps(t)
	user, tok := s.NewUser(t)
	s.SetLimit(t, user, 10)
	tk := s.RequestUpload(t, tok, "big.pdf", "application/pdf", -1)
	if st := s.Put(t, tk, "", apitest.BytesOf(50)); st != http.StatusOK {
		t.Fatal(st)
	}
	if r := s.Confirm(t, tok, tk.DocumentID); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("confirm: %d", r.Status)
	}
	age(t, s, 48*time.Hour, tk.DocumentID)

	s.MinIO.Stop()
	run := done.Wait(t, s.TriggerSweep(t), 20*time.Second)
	if run.RejectedRemoved != 0 || run.Errors == 0 || !exists(t, s, tk.DocumentID) {
		t.Fatalf("with MinIO down: %+v, row kept: %v", run, exists(t, s, tk.DocumentID))
	}
	s.MinIO.Restart(t)
	run = done.Wait(t, s.TriggerSweep(t), 20*time.Second)
	if run.RejectedRemoved != 1 || exists(t, s, tk.DocumentID) {
		t.Fatalf("after MinIO returned: %+v", run)
	}
}

// A run is announced only once its tick is settled: whoever acts on
// sweeper.run.completed (the next sweep, a deploy script) finds no tick of
// it still in hand.
func TestRunAnnouncedAfterItsTickIsAcked(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Sweepers: 1})
	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATS.URL, Name: "announce-watch"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Read the consumer the moment each announcement arrives.
	inHand := make(chan int, 16)
	sub, err := nc.Subscribe(sweeper.SubjectCompleted, func(*nats.Msg) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cons, err := js.Consumer(ctx, events.StreamSweeper, sweeper.ConsumerName)
		if err != nil {
			t.Error(err)
			inHand <- -1
			return
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Error(err)
			inHand <- -1
			return
		}
		inHand <- info.NumAckPending
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		s.TriggerSweep(t)
		select {
		case n := <-inHand:
			if n != 0 {
				t.Fatalf("run %d: announced with %d ticks still unacknowledged", i, n)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("run %d was not announced", i)
		}
	}
}
