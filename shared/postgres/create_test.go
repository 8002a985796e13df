package postgres_test

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/postgres"
)

// plainPool is a second pool on pool's database, without pool's tracer: its
// statements are not counted.
func plainPool(t *testing.T, pool *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	cfg := pool.Config()
	cfg.ConnConfig.Tracer = nil
	plain, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Close)
	return plain
}

// holdCreates sends a create to s that waits in its statement, for a row
// lock the test holds, and returns once it waits: the creates made then
// queue behind it, and go in one batch when release is called (release
// returns once the held create is answered).
func holdCreates(t *testing.T, s *postgres.Store, pool *pgxpool.Pool) (release func()) {
	t.Helper()
	ctx := context.Background()
	plain := plainPool(t, pool)
	held := newDocument(uuid.New(), nil)
	limits := limitsOf(held, 1000, 0, 0)
	if _, created, err := s.CreateDocument(ctx, newDocument(held.UserID, nil), limits); err != nil || !created {
		t.Fatalf("the held user's first create: created %v, %v", created, err)
	}
	tx, err := plain.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM rate_limits WHERE user_id = $1 FOR UPDATE`, held.UserID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := s.CreateDocument(ctx, held, limits)
		done <- err
	}()
	waitFor(t, "the held create to wait for its lock", func() bool {
		var waiting int
		err := plain.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		return err == nil && waiting == 1
	})
	return func() {
		t.Helper()
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("the held create: %v", err)
		}
	}
}

// waitFor polls cond until it holds, for up to ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
	}
}

// createAnswer is what CreateDocument answered one caller.
type createAnswer struct {
	usage   document.UploadUsage
	created bool
	err     error
}

// createTogether makes every create of docs (with its limits) at once, while
// a held create keeps s's batch busy, so that they all go in the next batch;
// it returns each caller's answer and the statements pool sent for them.
func createTogether(t *testing.T, s *postgres.Store, pool *pgxpool.Pool, counter *queryCounter,
	docs []*document.Document, limits []document.UploadLimits) ([]createAnswer, int64) {
	t.Helper()
	release := holdCreates(t, s, pool)
	before := counter.n.Load()
	answers := make([]createAnswer, len(docs))
	var wg sync.WaitGroup
	for i, d := range docs {
		wg.Go(func() {
			u, created, err := s.CreateDocument(context.Background(), d, limits[i])
			answers[i] = createAnswer{u, created, err}
		})
	}
	waitFor(t, "every create to queue", func() bool { return postgres.QueuedCreates(s) == len(docs) })
	release()
	wg.Wait()
	return answers, counter.n.Load() - before
}

// Creates that arrive together commit together (group commit: one
// statement, one transaction for many), and each caller still gets its own
// exact answer, as if it had been alone: one user's reservations fit in
// order up to the quota and no further, another user's requests are
// counted one by one and refused past the rate and the pending bound, and
// a third user's creates are unaffected by both.
func TestConcurrentCreatesCommitTogether(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, counter := countingStore(t) // 1000 bytes a user

	crowded, rated, other := uuid.New(), uuid.New(), uuid.New()
	now := time.Now().UTC().Truncate(time.Microsecond)
	size := int64(100)
	var docs []*document.Document
	var limits []document.UploadLimits
	add := func(user uuid.UUID, n int, l document.UploadLimits) {
		for range n {
			d := newDocument(user, nil)
			d.CreatedAt, d.UpdatedAt = now, now
			if l.Reserve > 0 {
				d.DeclaredSize = &l.Reserve
			}
			docs, limits = append(docs, d), append(limits, l)
		}
	}
	add(crowded, 20, document.UploadLimits{Now: now, Window: time.Minute, Reserve: size}) // 10 fit
	add(rated, 10, document.UploadLimits{Now: now, Window: time.Minute, MaxRequests: 5, MaxPending: 3})
	add(other, 5, document.UploadLimits{Now: now, Window: time.Minute, Reserve: size})

	answers, statements := createTogether(t, s, pool, counter, docs, limits)

	reservedBefore := map[uuid.UUID][]int64{} // by the creates that reserved
	requests := map[int]bool{}                // the rated user's request counts
	for i, a := range answers {
		d := docs[i]
		if a.err != nil {
			t.Fatalf("create %d: %v", i, a.err)
		}
		if a.usage.Quota.UserID != d.UserID || a.usage.Quota.LimitBytes != 1000 || a.usage.Quota.UsedBytes != 0 {
			t.Errorf("create %d saw quota %+v, want its owner's, nothing used of 1000", i, a.usage.Quota)
		}
		_, err := s.Document(ctx, d.ID)
		if stored := err == nil; stored != a.created {
			t.Errorf("create %d: created %v, but stored %v (%v)", i, a.created, stored, err)
		}
		switch d.UserID {
		case crowded, other:
			if a.usage.Requests != (document.RateWindow{}) || a.usage.Pending != 0 {
				t.Errorf("create %d without a rate or pending bound saw %+v, want nothing counted", i, a.usage)
			}
			if a.created {
				if d.ReservedBytes != size {
					t.Errorf("create %d: the document holds %d, want %d", i, d.ReservedBytes, size)
				}
				reservedBefore[d.UserID] = append(reservedBefore[d.UserID], a.usage.Quota.ReservedBytes)
			} else if q := a.usage.Quota; q.ReservedBytes != 1000 {
				t.Errorf("refused create %d saw %+v, want the 1000 bytes reserved before it", i, q)
			}
		case rated:
			// The k-th request of the window: the first three find room
			// (0, 1, 2 pending), the fourth and fifth find 3 pending, the
			// rest are past the rate (and 3 pending).
			k := a.usage.Requests.Count
			if requests[k] || k < 1 || k > 10 || !a.usage.Requests.Start.Equal(now) {
				t.Errorf("rated create %d: window %+v, want a count of its own in 1..10 since %v", i, a.usage.Requests, now)
			}
			requests[k] = true
			if a.usage.Pending != min(k-1, 3) || a.created != (k <= 3) || a.usage.Quota.ReservedBytes != 0 {
				t.Errorf("rated create %d (request %d): created %v, usage %+v; want %v with %d pending",
					i, k, a.created, a.usage, k <= 3, min(k-1, 3))
			}
		}
	}
	for user, want := range map[uuid.UUID]int{crowded: 10, other: 5} {
		got := reservedBefore[user]
		slices.Sort(got)
		for k := range want {
			if len(got) != want || got[k] != int64(k)*size {
				t.Fatalf("the creates that reserved saw %v reserved before them, want 0, 100, … (%d of them)", got, want)
			}
		}
		if q, err := s.Quota(ctx, user); err != nil || q.ReservedBytes != int64(want)*size {
			t.Errorf("quota after the batch: %+v, %v; want %d reserved", q, err, int64(want)*size)
		}
	}
	t.Logf("%d concurrent creates in %d statement(s)", len(docs), statements)
	if statements != 1 {
		t.Fatalf("%d creates that arrived together took %d statements, want 1", len(docs), statements)
	}
}

// A create that fails (its document id taken: a retried call) fails alone,
// as it did in a statement of its own: the others in its batch are created
// and answered as if the batch had not held it, and nothing of it is
// written (its request is not counted, nothing is reserved).
func TestACreateThatFailsFailsAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, counter := countingStore(t)
	user := uuid.New()
	size := int64(100)
	limitsFor := func(d *document.Document) document.UploadLimits { return limitsOf(d, 10, 0, size) }
	newDoc := func() *document.Document { return newDocument(user, &size) }
	first := newDoc()
	if _, created, err := s.CreateDocument(ctx, first, limitsFor(first)); err != nil || !created {
		t.Fatalf("first create: %v, %v", created, err)
	}

	taken := newDoc() // a new object key for a taken id
	taken.ID = first.ID
	twice := newDoc() // one call made twice: the same id and object key
	again := *twice
	docs := []*document.Document{newDoc(), taken, newDoc(), twice, &again, newDoc()}
	var limits []document.UploadLimits
	for _, d := range docs {
		limits = append(limits, limitsFor(d))
	}
	answers, statements := createTogether(t, s, pool, counter, docs, limits)

	counts := map[int]bool{}
	var failed []int
	for i, a := range answers {
		if a.err != nil {
			if document.ErrorCode(a.err) != document.Internal || a.created || a.usage != (document.UploadUsage{Quota: document.Quota{UserID: user}}) {
				t.Errorf("failed create %d: %+v, code %s; want Internal and nothing else", i, a, document.ErrorCode(a.err))
			}
			failed = append(failed, i)
			continue
		}
		k := a.usage.Requests.Count
		if !a.created || counts[k] || k < 2 || k > 5 || a.usage.Quota.ReservedBytes != int64(k-1)*size {
			t.Errorf("create %d: created %v, usage %+v; want created, as the only request %d of the window, after %d bytes reserved",
				i, a.created, a.usage, k, (k-1)*int(size))
		}
		counts[k] = true
	}
	// taken fails, and one of twice and again.
	if len(failed) != 2 || failed[0] != 1 || (failed[1] != 3 && failed[1] != 4) {
		t.Errorf("creates %v failed, want 1 (a taken id) and one of 3 and 4 (one call made twice)", failed)
	}
	if got, err := s.Document(ctx, first.ID); err != nil || got.ObjectKey != first.ObjectKey {
		t.Errorf("the first document is now %+v, %v", got, err)
	}
	var count int
	if err := pool.QueryRow(ctx, `SELECT count FROM rate_limits WHERE user_id = $1 AND action = 'upload'`, user).Scan(&count); err != nil || count != 5 {
		t.Errorf("%d requests counted (%v), want 5: the first, and the 4 creates that did not fail", count, err)
	}
	if q, err := s.Quota(ctx, user); err != nil || q.ReservedBytes != 5*size {
		t.Errorf("quota %+v, %v; want the 5 documents' %d bytes reserved", q, err, 5*size)
	}
	// One statement for the batch, which failed, then one for each alone.
	t.Logf("%d creates, 2 failing, in %d statements", len(docs), statements)
	if statements != 1+int64(len(docs)) {
		t.Errorf("%d statements, want %d", statements, 1+len(docs))
	}
}

// Concurrent creates of a few users in two processes (two stores, each with
// its batches), against quotas that hold a quarter of them: every
// reservation fits, none is made past the limit, each caller's answer is
// the quota its reservation was checked against, and no batch deadlocks
// with another. Half the users' creates have rate and pending bounds that
// leave room (their requests are counted, which puts them in a line); the
// other half's have none, and meet only at the quota row.
func TestConcurrentCreatesNeverReservePastTheQuota(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, counter := countingStore(t) // 1000 bytes a user
	processes := []*postgres.Store{s, postgres.NewStore(plainPool(t, pool), 1000)}
	users := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	const perProcess = 20 // creates of each user in each process
	counted := map[uuid.UUID]bool{users[0]: true, users[1]: true}
	size := int64(100)

	type answer struct {
		user uuid.UUID
		createAnswer
	}
	answers := make(chan answer, len(processes)*len(users)*perProcess)
	before := counter.n.Load()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, p := range processes {
		for range perProcess {
			for _, user := range users {
				wg.Go(func() {
					d := newDocument(user, &size)
					<-start
					bound := 0
					if counted[user] {
						bound = 1000
					}
					u, created, err := p.CreateDocument(ctx, d, limitsOf(d, bound, bound, size))
					answers <- answer{user, createAnswer{u, created, err}}
				})
			}
		}
	}
	close(start)
	wg.Wait()
	close(answers)
	statements := counter.n.Load() - before

	reservedBefore := map[uuid.UUID][]int64{}
	for a := range answers {
		if a.err != nil {
			t.Fatalf("create of %s: %v", a.user, a.err)
		}
		q := a.usage.Quota
		if a.created {
			reservedBefore[a.user] = append(reservedBefore[a.user], q.ReservedBytes)
		} else if q.UsedBytes+q.ReservedBytes+size <= q.LimitBytes {
			t.Errorf("a create of %s was refused with %+v, where it fits", a.user, q)
		}
	}
	for _, user := range users {
		got := reservedBefore[user]
		slices.Sort(got)
		if want := []int64{0, 100, 200, 300, 400, 500, 600, 700, 800, 900}; !slices.Equal(got, want) {
			t.Errorf("the creates of %s that reserved saw %v reserved before them, want %v", user, got, want)
		}
		var pending int
		var reserved int64
		if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(reserved_bytes), 0) FROM documents WHERE user_id = $1`, user).Scan(&pending, &reserved); err != nil {
			t.Fatal(err)
		}
		q, err := s.Quota(ctx, user)
		if err != nil || pending != 10 || q.ReservedBytes != 1000 || reserved != 1000 {
			t.Errorf("%s: %d documents holding %d bytes, quota %+v (%v); want 10, the quota's 1000 reserved", user, pending, reserved, q, err)
		}
		var requests int
		if err := pool.QueryRow(ctx, `SELECT coalesce(sum(count), 0) FROM rate_limits WHERE user_id = $1 AND action = 'upload'`, user).Scan(&requests); err != nil {
			t.Fatal(err)
		}
		want := 0 // nothing is counted without a bound
		if counted[user] {
			want = len(processes) * perProcess
		}
		if requests != want {
			t.Errorf("%s: %d requests counted, want %d", user, requests, want)
		}
	}
	creates := len(users) * perProcess
	t.Logf("%d concurrent creates in one process (racing %d in another): %d statements, %.2f a create",
		creates, creates, statements, float64(statements)/float64(creates))
	if statements > int64(creates)/2 {
		t.Fatalf("%d concurrent creates took %d statements: they did not go together", creates, statements)
	}
}

// A create that waits for another writer of its owner's rows (another
// process's batch, mid-transaction) checks its limits on what that writer
// committed: the pending documents it added and the bytes it reserved,
// though they were not committed when the create's statement began.
func TestACreateThatWaitedChecksWhatTheWriterBeforeItCommitted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := openStore(t, 1000)
	plain := plainPool(t, pool)
	size := int64(100)
	for _, tc := range []struct {
		name   string
		limits func(d *document.Document) document.UploadLimits
		// other writes, in the other writer's transaction, what the
		// create must see.
		other string
		want  func(u document.UploadUsage) bool
	}{{
		name:   "pending",
		limits: func(d *document.Document) document.UploadLimits { return limitsOf(d, 0, 2, 0) },
		other: `WITH counted AS (
				UPDATE rate_limits SET count = count + 1 WHERE user_id = $1 AND action = 'upload'
			)
			INSERT INTO documents (id, user_id, filename, content_type, object_key, status, created_at, updated_at)
			VALUES (gen_random_uuid(), $1, 'b.txt', 'text/plain', gen_random_uuid()::text, 'pending', now(), now())`,
		want: func(u document.UploadUsage) bool { return u.Pending == 2 && u.Requests.Count == 3 },
	}, {
		name:   "quota",
		limits: func(d *document.Document) document.UploadLimits { return limitsOf(d, 0, 0, size) },
		other:  `UPDATE quotas SET reserved_bytes = reserved_bytes + 850 WHERE user_id = $1`,
		want:   func(u document.UploadUsage) bool { return u.Quota.ReservedBytes == 950 },
	}} {
		t.Run(tc.name, func(t *testing.T) {
			user := uuid.New()
			first := newDocument(user, &size)
			if _, created, err := s.CreateDocument(ctx, first, limitsOf(first, 0, 2, size)); err != nil || !created {
				t.Fatalf("first create: %v, %v", created, err)
			}
			tx, err := plain.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, tc.other, user); err != nil {
				t.Fatal(err)
			}
			done := make(chan createAnswer, 1)
			d := newDocument(user, &size)
			go func() {
				u, created, err := s.CreateDocument(ctx, d, tc.limits(d))
				done <- createAnswer{u, created, err}
			}()
			waitFor(t, "the create to wait for the other writer", func() bool {
				var waiting int
				err := plain.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
					WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
				return err == nil && waiting == 1
			})
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			a := <-done
			if a.err != nil || a.created || !tc.want(a.usage) {
				t.Fatalf("create after the other writer: created %v, usage %+v, %v; want refused on what it committed", a.created, a.usage, a.err)
			}
		})
	}
}

// BenchmarkConcurrentCreates makes creates from 32 goroutines, of 256
// users in turn, with a rate bound far from reached (so the request is
// counted) and a 64 KiB reservation, as the bench's upload load makes
// them; it reports the statements a create took (each its own transaction,
// with its WAL flush). The pending documents are not bounded: none of
// these leaves pending, and counting them would cost more with every
// create, where the bench's uploads are confirmed.
func BenchmarkConcurrentCreates(b *testing.B) {
	ctx := context.Background()
	s, _, counter := countingStore(b)
	users := make([]uuid.UUID, 256)
	for i := range users {
		users[i] = uuid.New()
		if _, err := s.SetQuotaLimit(ctx, users[i], 1<<50); err != nil {
			b.Fatal(err)
		}
	}
	size := int64(64 << 10)
	var next atomic.Int64
	before := counter.n.Load()
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d := newDocument(users[next.Add(1)%int64(len(users))], &size)
			if _, created, err := s.CreateDocument(ctx, d, limitsOf(d, 1e9, 0, size)); err != nil || !created {
				b.Errorf("create: %v, %v", created, err)
				return
			}
		}
	})
	b.ReportMetric(float64(counter.n.Load()-before)/float64(b.N), "statements/op")
}
