package reliability_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/internal/devstack"
	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/services/confirmer"
	"github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/services/sweeper"
	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/postgres"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	numUsers   = 10
	numWorkers = 16
	minOps     = 5000 // the workers stop at this many once the faults are over
	maxRunTime = 150 * time.Second

	maxDocBytes = 64 << 10
	// scanMaxBytes is clamd's StreamMaxLength and SCAN_MAX_BYTES: above
	// every upload of the run, so every charged document is scanned.
	scanMaxBytes = 16 << 20
	uploadURLTTL = 2 * time.Second
	pendingTTL   = 3 * time.Second // must exceed uploadURLTTL

	// faultGrace is how long after a fault ends its errors still count as
	// the fault's: clients reconnect, MinIO finishes starting.
	faultGrace = 5 * time.Second
	// quietFor is how long nothing may move for the system to count as
	// settled: longer than MinIO's 3 s retry of its queued notifications.
	quietFor = 4 * time.Second
	// maxFailures bounds the failures reported one by one.
	maxFailures = 25
)

// TestLedgerInvariantUnderFaults runs thousands of random operations from
// many goroutines — upload URLs, PUTs, confirmations through the endpoint
// racing MinIO's notifications, duplicated notifications, deletes, sweeps —
// while the confirmer restarts, NATS stops for a while, MinIO stops for a
// while and PostgreSQL (a cluster of the test's own) stops twice, for 2 to
// 4 s each, at random points among the other faults: every door must then
// answer 503 or succeed, never 500, and recover by itself, and the quota
// sampler forgives only the reads the outage cut. Once everything has
// settled and a final sweep has run, the ledger must agree with itself:
//
//  1. every user's used_bytes is the sum of the sizes of their charged
//     documents, and nothing is reserved (nothing is pending);
//  2. every charged document's object is in the bucket;
//  3. every object in the bucket has a document row;
//  4. every charged document (and every document deleted while charged) has
//     exactly one document.uploaded event, and no other document has one;
//  5. every object is its charged document's, of exactly the size and ETag
//     charged (no object of a rejected document, none left uncharged);
//  6. every object holds its owner's bytes: nobody holds bytes copied from
//     another user;
//  7. no multipart upload outlives its document: MinIO holds no incomplete
//     upload under the exact key of a document that is gone or no longer
//     pending, nor an object under the key of one that is gone.
//
// Beside single PUTs, every user uploads in parts: the big users (quotas of
// 16 to 32 MiB) files of 5 to 12 MiB in parts of 5 MiB, everyone one-part
// uploads of a few KiB. Their clients complete them (now and then first
// with a wrong part list, which must be refused with nothing charged),
// delete them part-way, or abandon them to the sweeper, while the other
// workers confirm, get and delete the same documents. Declared sizes are
// reserved in the quota; a sampler reads PostgreSQL every 100 ms, one
// snapshot at a time, and checks at every sample that used + reserved <=
// limit, that used_bytes is the sum of the charged sizes and that
// reserved_bytes is the sum of the pending documents' reservations — each
// its declared size. A reservation must make room for its charge: no
// declared upload is rejected over quota, and no refusal of a declared size
// is left unexplained by what is used and what the user's other uploads
// may reserve.
//
// Beside the honest clients, attackers holding upload URLs try, at random,
// server-side copies across users and onto confirmed documents, PUTs again
// after a rejection and after a delete, and headers that would store an
// object differently; the report counts each attack and how it was stopped.
//
// Scanning is on (a real clamd, one scanner): every charged document must
// end clean, downloadable only then; one upload in twenty is EICAR, which
// must end rejected as infected, uncharged, its object gone, with exactly
// one document.uploaded (its charge) and one document.rejected (its
// release), even when its client had been told 200 by the confirm; clamd
// stops for a while among the faults, and nothing is clean meanwhile.
//
// The operations are chosen at random; RELIABILITY_SEED=<n> replays a run's
// choices (the interleaving of the goroutines still varies).
func TestLedgerInvariantUnderFaults(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("RELIABILITY_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("RELIABILITY_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (RELIABILITY_SEED=%d replays it)", seed, seed)
	began := time.Now()

	// A PostgreSQL cluster of the test's own, which the run stops and
	// starts again: never DATABASE_URL's, which other tests share.
	pg := testenv.StartPostgres(t)
	dsn := pg.Database(t)
	clamd := testenv.StartClamAV(t, scanMaxBytes)
	s := apitest.Start(t, apitest.Options{Events: true, Sweepers: 1, Clamd: clamd, Scanners: 1, Edit: func(c *config.Config) {
		c.DatabaseURL = dsn
		// A scan whose event a NATS outage held back is recovered soon.
		c.ClassifyRecoveryAfter = 5 * time.Second
		c.UploadURLTTL = uploadURLTTL
		c.PendingTTL = pendingTTL
		// The ledger is under test, not the abuse limits: ten users asking
		// for hundreds of upload URLs a minute would spend the run on 429s.
		c.UploadsPerMinute = 0
		c.MaxPendingUploads = 0
		c.DeletesPerMinute, c.StoragePerMinute = 0, 0
		// Small multipart uploads, of 1 to 3 parts of the smallest size
		// MinIO takes, keep the run fast; the big users' are over the
		// threshold, so they go in parts whether asked or not.
		c.MultipartThreshold = multipartThreshold
		c.MultipartPartSize = partSize
		c.MaxUploadBytes = maxUploadBytes
	}})
	// The test's own reads go to the same database as the services'.
	s.DB.Close()
	db, err := postgres.Open(context.Background(), dsn) // declares the accounting version, as the roles do
	if err != nil {
		t.Fatal(err)
	}
	s.DB = db // closed with the stack
	r := newRig(t, s, seed)
	r.pg = pg
	t.Logf("stack ready in %s", time.Since(began).Round(time.Millisecond))

	// The quota sampler, from the first operation to the last sweep.
	stopSampling := make(chan struct{})
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		r.sampleQuotas(stopSampling)
	}()
	var sampleOnce sync.Once
	endSampling := func() {
		sampleOnce.Do(func() { close(stopSampling) })
		<-sampling
	}
	t.Cleanup(endSampling)

	// The workers. Failures are reported with r.fail (t.Errorf); nothing in them
	// stops the test goroutine, which injects the faults meanwhile.
	runStart := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range numWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				r.step(rng)
			}
		}()
	}
	var once sync.Once
	halt := func() {
		once.Do(func() { close(stop) })
		wg.Wait()
	}
	t.Cleanup(halt) // before the stack's own clean-up, if the test ends early

	// The faults, one after another, while the workers run; the
	// PostgreSQL outages go at random places among the others.
	faultRNG := rand.New(rand.NewPCG(seed, 1<<33))
	others := []struct {
		name string
		fn   func()
	}{
		{"confirmer restart", func() { r.restartConfirmer() }},
		{"NATS outage", func() {
			s.NATS.Stop()
			time.Sleep(2 * time.Second)
			s.NATS.Restart(t)
		}},
		{"MinIO outage", func() {
			s.MinIO.Stop()
			time.Sleep(2 * time.Second)
			s.MinIO.Restart(t)
		}},
		{"clamd outage", func() {
			clamd.Stop()
			time.Sleep(2 * time.Second)
			clamd.Restart(t)
		}},
		{"confirmer restart", func() { r.restartConfirmer() }},
	}
	pgAt := pgFaultPlan(faultRNG, len(others))
	time.Sleep(2 * time.Second)
	for i := 0; i <= len(others); i++ {
		for len(pgAt) > 0 && pgAt[0] == i {
			pgAt = pgAt[1:]
			r.inject("PostgreSQL outage", func() { r.pgStop(faultRNG) })
			time.Sleep(2*time.Second + time.Duration(faultRNG.IntN(2000))*time.Millisecond)
		}
		if i < len(others) {
			r.inject(others[i].name, others[i].fn)
			time.Sleep(3 * time.Second)
		}
	}

	for r.total.Load() < minOps && time.Since(runStart) < maxRunTime {
		time.Sleep(100 * time.Millisecond)
	}
	halt()
	workload := time.Since(runStart)
	if n := r.total.Load(); n < minOps {
		r.fail("only %d operations in %s, want at least %d", n, workload.Round(time.Millisecond), minOps)
	}
	t.Logf("workers stopped after %d operations in %s", r.total.Load(), workload.Round(time.Millisecond))

	// Let every notification, retry and outbox row land; then make every
	// pending row stale (nothing is mid-upload any more: the last upload
	// URL expired with the workers) and sweep.
	settled := r.quiesce(90 * time.Second)
	if _, err := s.DB.Exec(context.Background(), `UPDATE documents SET created_at = created_at - interval '2 hours',
		updated_at = updated_at - interval '2 hours' WHERE status = 'pending'`); err != nil {
		t.Fatal(err)
	}
	// The final sweep starts a reconciliation pass, as the next period
	// would (one sweep is a whole pass of this bucket): the backstop for
	// orphans whose notification MinIO lost when it stopped. The report
	// counts them (orphans_removed); all others went where they arose.
	if _, err := s.DB.Exec(context.Background(), `DELETE FROM reconcile_cursor`); err != nil {
		t.Fatal(err)
	}
	if wait := pendingTTL + 500*time.Millisecond - time.Since(runStart.Add(workload)); wait > 0 {
		time.Sleep(wait) // every object is now older than PENDING_TTL
	}
	runs := r.s.WatchSweeps(t)
	final := runs.Wait(t, r.s.TriggerSweep(t), 60*time.Second)
	if final.Errors != 0 {
		r.fail("final sweep left %d errors: %+v", final.Errors, final.SweepResult)
	}
	settled += r.quiesce(60 * time.Second)
	again := runs.Wait(t, r.s.TriggerSweep(t), 60*time.Second)
	if again.SweepResult != (document.SweepResult{MaxBatchLock: again.MaxBatchLock, LedgerChecked: again.LedgerChecked}) {
		r.fail("a second sweep still found work: %+v", again.SweepResult)
	}
	// The ledger proves itself: each of the last two sweeps checked every
	// user's quota row against the documents (a whole pass: LedgerUsers is
	// far above the users) and found none off, and no quota write of the
	// running roles was clamped at zero. (Had the final sweep repaired
	// drift, invariant 1 below would not see it: this is the check.)
	for _, run := range []sweeper.Completed{final, again} {
		if run.LedgerChecked < len(r.users) || run.LedgerDrifted != 0 {
			r.fail("ledger check of sweep %s: %d quota rows checked (want every user's, %d), %d off (%d used, %d reserved bytes); want none off",
				run.RunID, run.LedgerChecked, len(r.users), run.LedgerDrifted, run.LedgerDriftUsedBytes, run.LedgerDriftReservedBytes)
		}
	}
	for _, st := range append([]*stack.Stack{r.s.API, r.s.Confirmer}, r.s.Sweepers...) {
		for _, field := range []string{"used", "reserved"} {
			if n := apitest.Count(st.Metrics.LedgerDriftBytes.WithLabelValues("clamp", field)); n != 0 {
				r.fail("%d %s bytes absorbed by quota writes clamped at zero; want none", n, field)
			}
		}
	}
	if state, busy := r.activity(); busy {
		r.fail("after a sweep that found nothing to do, work is waiting: %s", state)
	}
	endSampling()

	r.check(t)
	r.report(t, final, settled, workload, time.Since(began))
	r.mu.Lock()
	r.reportPGOutages(t)
	r.mu.Unlock()
}

// putState is what became of a document's PUT.
type putState int

const (
	putNone     putState = iota // not tried
	putInFlight                 // being sent
	putOK                       // MinIO answered 200: the object is stored
	putRefused                  // MinIO refused it (403: the URL had expired; 400: a header or the checksum): nothing stored
	putFailed                   // no answer, or 5xx: the object may or may not be stored
)

// doc is a document an upload URL was issued for, as the workers saw it.
type doc struct {
	id          uuid.UUID
	user        *user
	size        int64 // the bytes PUT, and the declared size when declared
	declared    bool
	contentType string
	infected    bool   // its bytes are EICAR: the scanner must reject it
	askParts    bool   // upload-url is sent "multipart": true
	sha256      string // upload-url is sent this checksum ("" for none)
	multipart   bool   // an upload in parts: asked, or declared over MULTIPART_THRESHOLD
	ticket      apitest.Ticket
	plan        *apitest.Plan // a multipart document's plan
	key         string        // the object key
	issued      time.Time     // when the upload URL was asked for

	// Guarded by user.mu.
	put       putState
	confirmed bool      // a confirm answered 200
	rejected  bool      // a confirm answered 413
	missing   bool      // a confirm answered 422 although the PUT had succeeded
	deleted   bool      // a DELETE answered 204
	released  bool      // what it reserved of the quota, if anything, is known to be released
	aged      bool      // made to look stale in PostgreSQL: a sweep may remove it at any time
	storedAt  time.Time // when MinIO last answered 200 to a PUT of its bytes (a single PUT's)
	// goneYoung says how the document, or its multipart upload, was found
	// gone while younger than PENDING_TTL: no sweep may have removed it,
	// so a DELETE must have ("" if not).
	goneYoung string
}

// user is one of the run's users; workers share them.
type user struct {
	id    uuid.UUID
	token string
	limit int64

	big bool // a quota of tens of MiB, for multipart uploads of several parts

	mu           sync.Mutex
	docs         []*doc    // documents not known to be gone
	limitedUntil time.Time // after a 429: no upload URL before then
	// mayHold is the sum of the declared sizes of the upload URLs asked for
	// whose reservation is not known to be released (confirmed, rejected,
	// deleted, purged, or refused): never less than what the user's pending
	// documents reserve. asked is the sum of all declared sizes asked for.
	mayHold, asked int64
}

// content returns n bytes that only u's uploads hold (the same n bytes
// every time), so that bytes copied from another user's object are seen.
func (u *user) content(n int) []byte {
	tag := []byte(u.id.String())
	return bytes.Repeat(tag, n/len(tag)+1)[:n]
}

// eicarETag is the ETag MinIO gives a single PUT of EICAR.
var eicarETag = func() string {
	sum := md5.Sum([]byte(devstack.EICAR))
	return hex.EncodeToString(sum[:])
}()

// body is what d's PUT sends: its user's bytes, or EICAR.
func (d *doc) body() []byte {
	if d.infected {
		return []byte(devstack.EICAR)
	}
	return d.user.content(int(d.size))
}

// etag is the ETag MinIO gives a single PUT of u.content(n).
func (u *user) etag(n int64) string {
	sum := md5.Sum(u.content(int(n)))
	return hex.EncodeToString(sum[:])
}

// pick returns a random document of u's that satisfies ok, or nil.
func (u *user) pick(rng *rand.Rand, ok func(*doc) bool) *doc {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.docs) == 0 {
		return nil
	}
	start := rng.IntN(len(u.docs))
	for i := range len(u.docs) {
		if d := u.docs[(start+i)%len(u.docs)]; ok(d) {
			return d
		}
	}
	return nil
}

// limited reports whether u waits out a 429 before asking for upload URLs.
func (u *user) limited() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return time.Now().Before(u.limitedUntil)
}

// release records that d's reservation, if it had one, is gone: an answer
// said d was charged, rejected, deleted or purged.
func (u *user) release(d *doc) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if d.declared && !d.released {
		d.released = true
		u.mayHold -= d.size
	}
}

// forget drops d from u's live documents.
func (u *user) forget(d *doc) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if i := slices.Index(u.docs, d); i >= 0 {
		u.docs = slices.Delete(u.docs, i, i+1)
	}
}

// fault is one injected fault.
type fault struct {
	name       string
	start, end time.Time
}

// rig is the run's shared state: the stack, the users, the documents and
// the counts.
type rig struct {
	t      *testing.T
	s      *apitest.Stack
	client *http.Client
	js     jetstream.JetStream
	notes  *recentNotes // MinIO's latest notifications, as it published them
	admin  string
	users  []*user

	pg         *testenv.PostgresServer // the stack's, stopped by the PostgreSQL outages
	total      atomic.Int64            // operations
	validated  atomic.Int64            // API exchanges checked against the OpenAPI document
	inFault    atomic.Bool
	faultEnded atomic.Int64 // UnixNano of the last fault's end

	mu        sync.Mutex         // guards the fields below
	docs      map[uuid.UUID]*doc // every document an upload URL was issued for
	ops       map[string]int     // operations by kind
	outcomes  map[string]int     // answers by kind and status
	failures  int
	failed    []string // the first maxFailures failures, repeated at the end of the report
	orphans   int      // objects PUT on purpose for deleted documents
	faults    []fault
	inflight  map[string]int // operations by kind under way
	pgOutages []*pgOutage
	confirmer map[string]int64 // the confirmers' stats, summed over restarts

	listed []listed // documents listed before their upload URL came back
	// unissued are the multipart upload-url requests answered 503: the API
	// makes the row before the upload, and removes it when MinIO fails,
	// so a list may have shown it meanwhile.
	unissued []*doc
	ghosts   int                      // documents listed while their upload-url failed
	latency  map[string]time.Duration // total time of each kind of operation
	slowest  map[string]time.Duration
	// multipartKeys holds the object key of every multipart document seen,
	// by the workers or by the sampler in PostgreSQL.
	multipartKeys map[uuid.UUID]string
	sampled       sampleStats // what the quota sampler saw
	began         time.Time
	uploadsLeft   int // multipart keys checked at the end for incomplete uploads

	final *ledger // the state check read
}

// listed is a document a list showed to a user.
type listed struct {
	user   *user
	id     uuid.UUID
	answer documentAnswer
}

func newRig(t *testing.T, s *apitest.Stack, seed uint64) *rig {
	t.Helper()
	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATS.URL, Name: "reliability-test"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// MINIO_EVENTS keeps a notification only until it is confirmed: the
	// rig keeps the latest ones as MinIO publishes them, to send again.
	notes := &recentNotes{}
	if _, err := nc.Subscribe(events.SubjectMinIO, func(m *nats.Msg) { notes.add(m.Data) }); err != nil {
		t.Fatal(err)
	}
	r := &rig{
		t: t,
		s: s,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 2 * numWorkers,
			IdleConnTimeout:     30 * time.Second,
		}},
		js:        js,
		notes:     notes,
		admin:     s.Token(t, uuid.New(), auth.RoleAdmin),
		docs:      map[uuid.UUID]*doc{},
		ops:       map[string]int{},
		inflight:  map[string]int{},
		outcomes:  map[string]int{},
		latency:   map[string]time.Duration{},
		slowest:   map[string]time.Duration{},
		began:     time.Now(),
		confirmer: map[string]int64{},

		multipartKeys: map[uuid.UUID]string{},
	}
	t.Cleanup(r.client.CloseIdleConnections)
	// Small quotas, from 6 to 24 average documents, so that confirmations
	// are refused over quota and deletes make room again.
	rng := rand.New(rand.NewPCG(seed, 1<<32))
	for range numUsers {
		id, token := s.NewUser(t)
		u := &user{id: id, token: token, limit: 192<<10 + rng.Int64N(576<<10)}
		s.SetLimit(t, id, u.limit)
		r.users = append(r.users, u)
	}
	// A few users with room for one to three multipart uploads of 5 to
	// 12 MiB at once, whose reservations crowd out their small uploads.
	for range numBigUsers {
		id, token := s.NewUser(t)
		u := &user{id: id, token: token, big: true, limit: 16<<20 + rng.Int64N(16<<20)}
		s.SetLimit(t, id, u.limit)
		r.users = append(r.users, u)
	}
	return r
}

// inject runs one fault and records it.
func (r *rig) inject(name string, fn func()) {
	r.t.Helper()
	start := time.Now()
	r.inFault.Store(true)
	fn()
	end := time.Now()
	r.faultEnded.Store(end.UnixNano())
	r.inFault.Store(false)
	r.mu.Lock()
	r.faults = append(r.faults, fault{name, start, end})
	r.mu.Unlock()
}

// faulty reports whether a fault is on, or ended less than faultGrace ago.
func (r *rig) faulty() bool {
	return r.inFault.Load() || time.Since(time.Unix(0, r.faultEnded.Load())) < faultGrace
}

// restartConfirmer restarts the confirmer, keeping its counts.
func (r *rig) restartConfirmer() {
	r.t.Helper()
	r.addConfirmerStats()
	r.s.RestartConfirmer(r.t)
}

// addConfirmerStats adds the running confirmer's counts to the totals.
func (r *rig) addConfirmerStats() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range apitest.ConfirmerCounts(r.s.Confirmer) {
		r.confirmer[k] += v
	}
}

// fail reports a failure; after maxFailures it only counts them.
func (r *rig) fail(format string, args ...any) {
	r.mu.Lock()
	r.failures++
	n := r.failures
	if n <= maxFailures {
		r.failed = append(r.failed, fmt.Sprintf(format, args...))
	}
	r.mu.Unlock()
	if n <= maxFailures {
		r.t.Errorf(format, args...)
	}
}

// count records an operation of kind; call the function it returns when
// the operation is over.
func (r *rig) count(kind string) (done func()) {
	r.total.Add(1)
	start := time.Now()
	r.mu.Lock()
	r.inflight[kind]++
	r.mu.Unlock()
	return func() {
		took := time.Since(start)
		r.mu.Lock()
		r.inflight[kind]--
		r.ops[kind]++
		r.latency[kind] += took
		r.slowest[kind] = max(r.slowest[kind], took)
		r.mu.Unlock()
	}
}

// outcome records how an operation of kind ended, and returns how many
// ended so before; errors are told apart by whether a fault was on.
func (r *rig) outcome(kind, what string, isError bool) int {
	key := kind + " " + what
	if isError {
		if r.faulty() {
			key += " (fault)"
		} else {
			key += " (no fault)"
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes[key]++
	return r.outcomes[key] - 1
}

// step runs one random operation (or a short sequence of them) as a
// random user.
func (r *rig) step(rng *rand.Rand) {
	u := r.users[rng.IntN(len(r.users))]
	switch n := rng.IntN(1200); {
	case n < 450 && u.big && n%2 == 0:
		r.multipart(rng, u) // half the big users' uploads go in parts
	case n < 450:
		r.upload(rng, u)
	case n < 570:
		if d := u.pick(rng, func(*doc) bool { return true }); d != nil {
			r.confirm(d)
		}
	case n < 610:
		if d := u.pick(rng, func(d *doc) bool { return d.put == putNone && !d.multipart }); d != nil {
			r.put(d)
		}
	case n < 690:
		r.duplicateEvent(rng)
	case n < 820:
		if d := u.pick(rng, func(*doc) bool { return true }); d != nil {
			r.delete(d)
		}
	case n < 880:
		if d := u.pick(rng, func(*doc) bool { return true }); d != nil {
			r.get(d)
		}
	case n < 930:
		r.quota(u)
	case n < 996:
		r.list(u)
	case n < 1000:
		r.sweep()
	case n < 1080:
		r.attack(rng, u)
	default:
		r.multipart(rng, u)
	}
}

// api sends one request to the API, checks the exchange against the
// OpenAPI document and returns the status and body. The API never goes
// away in this test: a transport error is a failure.
func (r *rig) api(kind, method, path, token string, body any) (int, []byte, http.Header, bool) {
	defer r.count(kind)()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			r.fail("%s: %v", kind, err)
			return 0, nil, nil, false
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.s.URL+path, rd)
	if err != nil {
		r.fail("%s: %v", kind, err)
		return 0, nil, nil, false
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := r.client.Do(req)
	if err != nil {
		r.outcome(kind, "transport error", true)
		r.fail("%s %s: %v", method, path, err)
		return 0, nil, nil, false
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		r.outcome(kind, "transport error", true)
		r.fail("%s %s: reading the answer: %v", method, path, err)
		return 0, nil, nil, false
	}
	// Every kind of answer is checked against the OpenAPI document, the
	// first ones each time and then one in ten: checking costs more CPU
	// than the request itself under -race.
	if n := r.outcome(kind, strconv.Itoa(resp.StatusCode), resp.StatusCode >= 500); n < 20 || n%10 == 0 {
		apitest.ValidateExchange(r.t, req, nil, resp, data)
		r.validated.Add(1)
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		r.noteUnavailable(kind)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		r.fail("%s %s answered %d: %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode, data, resp.Header, true
}

// quotaDetail is the detail of a 413 over-quota answer.
type quotaDetail struct {
	Detail struct {
		UsedBytes     int64 `json:"used_bytes"`
		LimitBytes    int64 `json:"limit_bytes"`
		RejectedBytes int64 `json:"rejected_bytes"`
	} `json:"detail"`
}

// upload asks for an upload URL and mostly PUTs the bytes at once, and
// sometimes confirms through the endpoint at once, racing MinIO's
// notification. Some documents are never PUT: they stay pending until a
// sweep purges them.
func (r *rig) upload(rng *rand.Rand, u *user) {
	if u.limited() {
		r.quota(u)
		return
	}
	d := &doc{user: u, size: 1 + rng.Int64N(maxDocBytes), declared: rng.IntN(4) != 0, contentType: "application/pdf"}
	if rng.IntN(2) == 0 {
		d.contentType = "text/plain"
	}
	if rng.IntN(20) == 0 {
		d.infected, d.size = true, int64(len(devstack.EICAR))
	}
	if !r.issue(d, true) {
		return
	}
	switch n := rng.IntN(100); {
	case n < 4:
		// Deleted before its bytes arrive, which then arrive anyway through
		// the still-valid URL: an orphaned object the confirmer must remove.
		if r.delete(d) && r.put(d) == putOK {
			r.mu.Lock()
			r.orphans++
			r.mu.Unlock()
		}
		return
	case n < 19:
		return // never uploaded: a stale pending document
	}
	if r.put(d) == putOK && rng.IntN(100) < 45 {
		r.confirm(d)
	}
}

// issue asks for an upload URL for d (its user, size, whether declared,
// content type, whether in parts) and records the document; shared, it
// goes among its user's documents at once, for any worker to use. It
// reports whether the API issued the URL (or the multipart plan).
func (r *rig) issue(d *doc, shared bool) bool {
	u := d.user
	filename := "report.pdf"
	if d.contentType == "text/plain" {
		filename = "notes.txt"
	}
	body := map[string]any{"filename": filename, "content_type": d.contentType}
	if d.declared {
		body["size_bytes"] = d.size
	}
	if d.askParts {
		body["multipart"] = true
	}
	if d.sha256 != "" {
		body["sha256"] = d.sha256
	}
	d.multipart = d.askParts || d.declared && d.size > multipartThreshold
	// What u's other uploads may reserve while the API decides: all that
	// was not known released when this request left, and all asked for
	// since.
	var held, asked int64
	if d.declared {
		u.mu.Lock()
		held, asked = u.mayHold, u.asked
		u.mayHold += d.size
		u.asked += d.size
		u.mu.Unlock()
	}
	d.issued = time.Now()
	st, data, header, ok := r.api("upload-url", http.MethodPost, "/api/documents/upload-url", u.token, body)
	if !ok {
		return false
	}
	switch st {
	case http.StatusCreated:
		if !r.readTicket(d, data) {
			return false
		}
		r.mu.Lock()
		if r.docs[d.id] != nil {
			r.mu.Unlock()
			r.fail("upload-url: document id %s issued twice", d.id)
			return false
		}
		r.docs[d.id] = d
		if d.multipart {
			r.multipartKeys[d.id] = d.key
		}
		r.mu.Unlock()
		if shared {
			r.share(d)
		}
		return true
	case http.StatusRequestEntityTooLarge:
		u.mu.Lock()
		others := held + u.asked - asked - d.size
		u.mu.Unlock()
		u.release(d)
		var q quotaDetail
		_ = json.Unmarshal(data, &q)
		switch {
		case !d.declared || q.Detail.RejectedBytes != d.size || q.Detail.LimitBytes != u.limit || q.Detail.UsedBytes > q.Detail.LimitBytes:
			r.fail("upload-url of %d bytes (declared %v) for a limit of %d: 413 %s", d.size, d.declared, u.limit, data)
		case q.Detail.UsedBytes+others+d.size <= q.Detail.LimitBytes:
			// The answer does not say what was reserved; the workers know
			// at most how much.
			r.fail("upload-url of %d bytes for a limit of %d: 413 %s, but the user's other uploads reserved at most %d bytes: used + reserved + size fitted",
				d.size, u.limit, data, others)
		case q.Detail.UsedBytes+d.size <= q.Detail.LimitBytes:
			r.outcome("upload-url 413", "for what other uploads reserve", false)
		default:
			r.outcome("upload-url 413", "for what is used", false)
		}
		return false
	case http.StatusTooManyRequests:
		u.release(d)
		// A rate limit on upload URLs: wait as told before asking again.
		wait, err := strconv.Atoi(header.Get("Retry-After"))
		if err != nil || wait <= 0 {
			r.fail("upload-url: 429 with Retry-After %q", header.Get("Retry-After"))
			wait = 1
		}
		u.mu.Lock()
		u.limitedUntil = time.Now().Add(time.Duration(min(wait, 60)) * time.Second)
		u.mu.Unlock()
		return false
	case http.StatusServiceUnavailable:
		if d.multipart {
			r.mu.Lock()
			r.unissued = append(r.unissued, d)
			r.mu.Unlock()
		}
		return false
	}
	r.fail("upload-url: %d %s", st, data)
	return false
}

// readTicket reads upload-url's 201 answer for d: a single PUT's URL and
// headers, or a multipart upload's plan.
func (r *rig) readTicket(d *doc, data []byte) bool {
	var shape struct {
		UploadID string `json:"upload_id"`
	}
	if err := json.Unmarshal(data, &shape); err != nil || (shape.UploadID != "") != d.multipart {
		r.fail("upload-url of %d bytes (declared %v, multipart asked %v): want multipart %v, got %s",
			d.size, d.declared, d.askParts, d.multipart, data)
		return false
	}
	if d.multipart {
		return r.readPlan(d, data)
	}
	if err := json.Unmarshal(data, &d.ticket); err != nil || d.ticket.DocumentID == uuid.Nil {
		r.fail("upload-url: %v: %s", err, data)
		return false
	}
	d.id = d.ticket.DocumentID
	d.key = r.objectKey(d)
	want := map[string]string{"Content-Type": d.contentType, "If-None-Match": "*"}
	if d.sha256 != "" {
		want["x-amz-checksum-sha256"] = d.sha256
	}
	if !maps.Equal(d.ticket.Headers, want) {
		r.fail("upload-url for %s: headers %v, want %v", d.id, d.ticket.Headers, want)
	}
	return true
}

// share puts d among its user's documents, for any worker to use.
func (r *rig) share(d *doc) {
	d.user.mu.Lock()
	d.user.docs = append(d.user.docs, d)
	d.user.mu.Unlock()
}

// put sends d's bytes to its presigned URL, unless someone already did.
func (r *rig) put(d *doc) putState {
	u := d.user
	u.mu.Lock()
	if d.put != putNone {
		u.mu.Unlock()
		return putNone
	}
	d.put = putInFlight
	u.mu.Unlock()

	done := r.count("put")
	state := putFailed
	req, err := http.NewRequest(http.MethodPut, d.ticket.UploadURL, bytes.NewReader(d.body()))
	if err != nil {
		r.fail("put %s: %v", d.id, err)
	} else {
		for k, v := range d.ticket.Headers {
			if k != "Content-Length" { // net/http sets it from the body
				req.Header.Set(k, v)
			}
		}
		resp, err := r.client.Do(req)
		switch {
		case err != nil:
			r.outcome("put", "transport error", true)
			time.Sleep(20 * time.Millisecond) // MinIO is away: do not spin
		default:
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// MinIO answers 499 to the requests in hand when it stops.
			failed := resp.StatusCode >= 500 || resp.StatusCode == 499
			r.outcome("put", strconv.Itoa(resp.StatusCode), failed)
			switch age := time.Since(d.issued); {
			case resp.StatusCode == http.StatusOK:
				state = putOK
			case resp.StatusCode == http.StatusForbidden && age > uploadURLTTL/2:
				// Expired: X-Amz-Date has whole seconds, so a URL lives
				// between UPLOAD_URL_TTL - 1 s and UPLOAD_URL_TTL.
				state = putRefused
			case failed:
				time.Sleep(20 * time.Millisecond)
			default:
				r.fail("PUT of document %s, %s after its URL was issued: MinIO answered %d", d.id, age.Round(time.Millisecond), resp.StatusCode)
			}
		}
	}
	done()
	u.mu.Lock()
	d.put = state
	if state == putOK {
		d.storedAt = time.Now()
	}
	u.mu.Unlock()
	return state
}

// confirm posts /api/documents/{id}/confirm and checks the answer against
// what the workers know of the document.
func (r *rig) confirm(d *doc) {
	u := d.user
	// Whether the PUT had succeeded before this confirm was sent: another
	// worker's PUT may finish while the confirm is under way, and then a
	// 422 ("not there yet") is right.
	u.mu.Lock()
	putBefore := d.put
	u.mu.Unlock()
	st, data, _, ok := r.api("confirm", http.MethodPost, "/api/documents/"+d.id.String()+"/confirm", u.token, nil)
	if !ok {
		return
	}
	u.mu.Lock()
	put := d.put
	u.mu.Unlock()
	// An object can only be there if a PUT was at least sent.
	mayExist := put == putInFlight || put == putOK || put == putFailed
	switch st {
	case http.StatusOK:
		var c apitest.Confirmation
		if err := json.Unmarshal(data, &c); err != nil || c.ID != d.id || !document.Status(c.Status).Charged() ||
			c.SizeBytes != d.size || c.UsedBytes < 0 || c.UsedBytes > u.limit || !mayExist {
			r.fail("confirm %s (%d bytes, PUT %d, limit %d): 200 %s", d.id, d.size, put, u.limit, data)
		}
		u.mu.Lock()
		d.confirmed = true
		u.mu.Unlock()
		u.release(d)
	case http.StatusRequestEntityTooLarge:
		var q quotaDetail
		_ = json.Unmarshal(data, &q)
		if q.Detail.RejectedBytes != d.size || q.Detail.LimitBytes != u.limit || !mayExist {
			r.fail("confirm %s (%d bytes, PUT %d, limit %d): 413 %s", d.id, d.size, put, u.limit, data)
		}
		if d.declared {
			// Its size was reserved when its URL was issued: the charge
			// must fit.
			r.fail("confirm %s of %d declared (reserved) bytes, limit %d: 413 %s", d.id, d.size, u.limit, data)
		}
		u.mu.Lock()
		d.rejected = true
		u.mu.Unlock()
		u.release(d)
	case http.StatusUnprocessableEntity:
		// The upload has not arrived. After a successful PUT that is only
		// right if the object went with a concurrent delete or rejection:
		// checked at the end.
		if putBefore == putOK {
			u.mu.Lock()
			d.missing = true
			u.mu.Unlock()
		}
	case http.StatusNotFound:
		u.forget(d) // deleted, or purged by a sweep
		u.release(d)
	case http.StatusServiceUnavailable:
	default:
		r.fail("confirm %s: %d %s", d.id, st, data)
	}
}

// delete deletes d and reports whether the API answered 204.
func (r *rig) delete(d *doc) bool {
	u := d.user
	st, data, _, ok := r.api("delete", http.MethodDelete, "/api/documents/"+d.id.String(), u.token, nil)
	if !ok {
		return false
	}
	switch st {
	case http.StatusNoContent:
		u.mu.Lock()
		d.deleted = true
		u.mu.Unlock()
		u.forget(d)
		u.release(d)
		return true
	case http.StatusNotFound:
		u.forget(d)
		u.release(d)
	case http.StatusServiceUnavailable:
	default:
		r.fail("delete %s: %d %s", d.id, st, data)
	}
	return false
}

// documentAnswer is the part of a document the checks look at.
type documentAnswer struct {
	ID           uuid.UUID `json:"id"`
	ContentType  string    `json:"content_type"`
	DeclaredSize *int64    `json:"declared_size"`
	SizeBytes    int64     `json:"size_bytes"`
	Status       string    `json:"status"`
	RejectReason string    `json:"reject_reason"`
	ScanStatus   string    `json:"scan_status"`
	DownloadURL  string    `json:"download_url"`
}

// checkAnswer checks a document the API showed against what the workers
// know of it.
func (r *rig) checkAnswer(how string, d *doc, a documentAnswer) {
	status := document.Status(a.Status)
	bad := a.ID != d.id || a.ContentType != d.contentType || !status.Valid() ||
		(a.DeclaredSize != nil) != d.declared || a.DeclaredSize != nil && *a.DeclaredSize != d.size
	switch {
	case status.Charged():
		bad = bad || a.SizeBytes != d.size
	case status == document.StatusRejected:
		// Sizes always match and stay far below MAX_UPLOAD_BYTES; only
		// EICAR is found infected.
		infected := d.infected && a.RejectReason == document.ReasonInfected && a.ScanStatus == string(document.ScanInfected)
		bad = bad || a.RejectReason != document.ReasonOverQuota && !infected || a.SizeBytes != d.size
	}
	// A download only once found clean; EICAR never.
	clean := a.ScanStatus == string(document.ScanClean)
	if how == "get" && (status.Charged() && clean) != (a.DownloadURL != "") || d.infected && clean {
		bad = true
	}
	if bad {
		r.fail("%s %s (%d bytes, declared %v): %+v", how, d.id, d.size, d.declared, a)
	}
}

// get reads d through GET /api/documents/{id}.
func (r *rig) get(d *doc) {
	u := d.user
	st, data, _, ok := r.api("get", http.MethodGet, "/api/documents/"+d.id.String(), u.token, nil)
	if !ok {
		return
	}
	switch st {
	case http.StatusOK:
		var a documentAnswer
		if err := json.Unmarshal(data, &a); err != nil {
			r.fail("get %s: %v: %s", d.id, err, data)
			return
		}
		r.checkAnswer("get", d, a)
	case http.StatusNotFound:
		u.forget(d)
		u.release(d)
	case http.StatusServiceUnavailable:
	default:
		r.fail("get %s: %d %s", d.id, st, data)
	}
}

// quota reads u's quota: what is used and reserved fits the limit, and
// no more is reserved than u's uploads may hold.
func (r *rig) quota(u *user) {
	u.mu.Lock()
	held, asked := u.mayHold, u.asked
	u.mu.Unlock()
	st, data, _, ok := r.api("quota", http.MethodGet, "/api/auth/me/quota", u.token, nil)
	if !ok || st == http.StatusServiceUnavailable {
		return
	}
	u.mu.Lock()
	mayHold := held + u.asked - asked
	u.mu.Unlock()
	var q struct {
		UsedBytes     int64 `json:"used_bytes"`
		LimitBytes    int64 `json:"limit_bytes"`
		ReservedBytes int64 `json:"reserved_bytes"`
	}
	if err := json.Unmarshal(data, &q); st != http.StatusOK || err != nil || q.UsedBytes < 0 || q.ReservedBytes < 0 ||
		q.UsedBytes+q.ReservedBytes > u.limit || q.LimitBytes != u.limit || q.ReservedBytes > mayHold {
		r.fail("quota of %s (limit %d, at most %d bytes reserved): %d %s", u.id, u.limit, mayHold, st, data)
	}
}

// list reads the first page of u's documents: each must be one of u's.
func (r *rig) list(u *user) {
	st, data, _, ok := r.api("list", http.MethodGet, "/api/documents?limit=20", u.token, nil)
	if !ok || st == http.StatusServiceUnavailable {
		return
	}
	var page struct {
		Items []documentAnswer `json:"items"`
	}
	if err := json.Unmarshal(data, &page); st != http.StatusOK || err != nil {
		r.fail("list of %s: %d %s", u.id, st, data)
		return
	}
	for _, a := range page.Items {
		r.mu.Lock()
		d := r.docs[a.ID]
		if d == nil {
			// Its upload URL is still on the way to another worker.
			r.listed = append(r.listed, listed{u, a.ID, a})
		}
		r.mu.Unlock()
		switch {
		case d == nil:
		case d.user != u:
			r.fail("list of %s shows document %s of %s", u.id, a.ID, d.user.id)
		default:
			r.checkAnswer("list", d, a)
		}
	}
}

// sweep asks for a sweep now.
func (r *rig) sweep() {
	st, data, _, ok := r.api("sweep", http.MethodPost, "/api/admin/sweep", r.admin, nil)
	if ok && st != http.StatusAccepted && st != http.StatusServiceUnavailable {
		r.fail("sweep: %d %s", st, data)
	}
}

// duplicateEvent republishes one of the latest MinIO notifications, as a
// redelivery or MinIO's second target would: whatever it names must not
// be confirmed or charged twice.
func (r *rig) duplicateEvent(rng *rand.Rand) {
	defer r.count("duplicate event")()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	data := r.notes.pick(rng)
	if data == nil {
		r.outcome("duplicate event", "none seen yet", false)
		return
	}
	if _, err := r.js.Publish(ctx, events.SubjectMinIO, data); err != nil {
		r.outcome("duplicate event", "NATS error", true)
		time.Sleep(20 * time.Millisecond)
		return
	}
	r.outcome("duplicate event", "published", false)
}

// recentNotes holds the latest MinIO notifications seen.
type recentNotes struct {
	mu   sync.Mutex
	ring [64][]byte
	n    int // notifications seen
}

func (n *recentNotes) add(data []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ring[n.n%len(n.ring)] = data
	n.n++
}

// pick returns one of the latest notifications, or nil before the first.
func (n *recentNotes) pick(rng *rand.Rand) []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.n == 0 {
		return nil
	}
	return n.ring[rng.IntN(min(n.n, len(n.ring)))]
}

// quiesce waits until nothing moves for quietFor: the outbox is empty, the
// confirmer and the sweeper have nothing pending or unacknowledged, and no
// new message reaches MINIO_EVENTS or DOCUMENTS. It returns how long it
// waited.
func (r *rig) quiesce(timeout time.Duration) time.Duration {
	t := r.t
	t.Helper()
	start := time.Now()
	var quietSince time.Time
	var last string
	diagnosed := false
	for {
		state, busy := r.activity()
		if !diagnosed && time.Since(start) > 30*time.Second {
			diagnosed = true
			r.diagnose()
		}
		switch {
		case busy || state != last:
			quietSince = time.Time{}
			if time.Since(start) > 15*time.Second {
				// Slow to settle: say what still moves.
				t.Logf("settling for %s: %s", time.Since(start).Round(time.Millisecond), state)
			}
		case quietSince.IsZero():
			quietSince = time.Now()
		case time.Since(quietSince) >= quietFor:
			return time.Since(start)
		}
		last = state
		if time.Since(start) > timeout {
			t.Fatalf("not settled after %s: %s", timeout, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// diagnose logs what PostgreSQL's sessions wait for and the goroutines of
// the roles, when settling takes long.
func (r *rig) diagnose() {
	t := r.t
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := r.s.DB.Query(ctx, `SELECT pid, state, coalesce(wait_event_type, ''), coalesce(wait_event, ''),
			coalesce(extract(epoch FROM now() - xact_start), 0)::float8, left(query, 300), pg_blocking_pids(pid)::text
		FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`)
	if err != nil {
		t.Logf("diagnose: %v", err)
	} else {
		for rows.Next() {
			var pid int
			var state, waitType, wait, query, blockers string
			var age float64
			if err := rows.Scan(&pid, &state, &waitType, &wait, &age, &query, &blockers); err != nil {
				t.Logf("diagnose: %v", err)
				break
			}
			t.Logf("diagnose: pg %d %s for %.1fs, waiting %s/%s on %s: %s", pid, state, age, waitType, wait, blockers, query)
		}
		rows.Close()
	}
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "shared/document.") || strings.Contains(g, "services/sweeper.") {
			t.Logf("diagnose: goroutine %s", g)
		}
	}
}

// activity describes what is still moving; busy is true while work waits.
func (r *rig) activity() (state string, busy bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var outbox int64
	if err := r.s.DB.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outbox); err != nil {
		return err.Error(), true
	}
	parts := []string{fmt.Sprintf("outbox %d", outbox)}
	busy = outbox > 0
	var unscanned int64
	if err := r.s.DB.QueryRow(ctx, `SELECT count(*) FROM documents WHERE scan_status = 'pending'`).Scan(&unscanned); err != nil {
		return err.Error(), true
	}
	parts = append(parts, fmt.Sprintf("scans pending %d", unscanned))
	busy = busy || unscanned > 0
	for _, c := range []struct{ stream, consumer string }{{events.StreamMinIO, confirmer.ConsumerName}, {events.StreamSweeper, sweeper.ConsumerName}} {
		cons, err := r.js.Consumer(ctx, c.stream, c.consumer)
		if err != nil {
			return err.Error(), true
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err.Error(), true
		}
		parts = append(parts, fmt.Sprintf("%s pending %d, unacknowledged %d", c.consumer, info.NumPending, info.NumAckPending))
		busy = busy || info.NumPending+uint64(info.NumAckPending) > 0
	}
	for _, name := range []string{events.StreamMinIO, events.StreamDocuments} {
		st, err := r.js.Stream(ctx, name)
		if err != nil {
			return err.Error(), true
		}
		info, err := st.Info(ctx)
		if err != nil {
			return err.Error(), true
		}
		parts = append(parts, fmt.Sprintf("%s last seq %d", name, info.State.LastSeq))
	}
	return strings.Join(parts, ", "), busy
}

// row is a documents row.
type row struct {
	user     uuid.UUID
	key      string
	status   document.Status
	size     int64
	etag     string
	reserved int64
	partSize int64 // 0 for a single PUT
	scan     document.ScanState
}

// docEvents are the document events of one document.
type docEvents struct {
	uploaded, rejected, deleted []document.Event
}

// ledger is the final state, read from PostgreSQL, MinIO and JetStream.
type ledger struct {
	rows    map[uuid.UUID]row
	quotas  map[uuid.UUID][3]int64 // used, limit, reserved
	objects map[string]bool
	stored  map[string]minio.ObjectInfo // the objects, by key
	events  map[uuid.UUID]*docEvents
	byType  map[document.EventType]int
	total   int // messages in DOCUMENTS
}

// read reads the final state.
func (r *rig) read(t *testing.T) *ledger {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := &ledger{rows: map[uuid.UUID]row{}, quotas: map[uuid.UUID][3]int64{}, objects: map[string]bool{},
		stored: map[string]minio.ObjectInfo{}, events: map[uuid.UUID]*docEvents{}, byType: map[document.EventType]int{}}

	rows, err := r.s.DB.Query(ctx, `SELECT id, user_id, object_key, status, size_bytes, etag, reserved_bytes,
		coalesce(part_size, 0), coalesce(scan_status, '') FROM documents`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id uuid.UUID
		var w row
		if err := rows.Scan(&id, &w.user, &w.key, &w.status, &w.size, &w.etag, &w.reserved, &w.partSize, &w.scan); err != nil {
			t.Fatal(err)
		}
		l.rows[id] = w
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows, err = r.s.DB.Query(ctx, `SELECT user_id, used_bytes, limit_bytes, reserved_bytes FROM quotas`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id uuid.UUID
		var used, limit, reserved int64
		if err := rows.Scan(&id, &used, &limit, &reserved); err != nil {
			t.Fatal(err)
		}
		l.quotas[id] = [3]int64{used, limit, reserved}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	for obj := range r.s.MinIO.Client(t).ListObjects(ctx, r.s.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list the bucket: %v", obj.Err)
		}
		l.objects[obj.Key] = true
		l.stored[obj.Key] = obj
	}

	// Every document event, with an ordered consumer, as a subscriber
	// reading the stream from its start would.
	stream, err := r.js.Stream(ctx, events.StreamDocuments)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := r.js.OrderedConsumer(ctx, events.StreamDocuments, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectDocument}})
	if err != nil {
		t.Fatal(err)
	}
	for uint64(l.total) < info.State.Msgs {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			l.total++
			var e document.Event
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				r.fail("%s: not a document event: %v: %s", m.Subject(), err, m.Data())
				continue
			}
			if got := m.Headers().Get(jetstream.MsgIDHeader); got != e.ID.String() || m.Subject() != e.Subject() {
				r.fail("event %s on %s has Nats-Msg-Id %q", e.ID, m.Subject(), got)
			}
			l.byType[e.Type]++
			de := l.events[e.Data.DocumentID]
			if de == nil {
				de = &docEvents{}
				l.events[e.Data.DocumentID] = de
			}
			switch e.Type {
			case document.EventUploaded:
				de.uploaded = append(de.uploaded, e)
			case document.EventRejected:
				de.rejected = append(de.rejected, e)
			case document.EventDeleted:
				de.deleted = append(de.deleted, e)
			}
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("read %d of %d document events, then nothing more", l.total, info.State.Msgs)
		}
	}
	return l
}

// check reads the final state and checks the invariants.
func (r *rig) check(t *testing.T) {
	t.Helper()
	l := r.read(t)
	charged := func(s document.Status) bool { return s.Charged() }

	// 1. For every user, used_bytes is the sum of the charged sizes, and
	// reserved_bytes the sum of what the pending documents reserve (none
	// is left pending: nothing may be reserved).
	sums, reserved := map[uuid.UUID]int64{}, map[uuid.UUID]int64{}
	for id, w := range l.rows {
		if charged(w.status) {
			sums[w.user] += w.size
		}
		if w.status == document.StatusPending {
			reserved[w.user] += w.reserved
		} else if w.reserved != 0 {
			r.fail("invariant 1: %s document %s still reserves %d bytes", w.status, id, w.reserved)
		}
		if _, ok := l.quotas[w.user]; !ok {
			r.fail("document %s belongs to %s, who has no quota row", id, w.user)
		}
		if r.docs[id] == nil {
			r.fail("document %s (%s) was never issued an upload URL", id, w.status)
		}
		if w.status == document.StatusPending {
			r.fail("document %s is still pending after the final sweep", id)
		}
	}
	for user, q := range l.quotas {
		if q[0] != sums[user] {
			r.fail("invariant 1: user %s: used_bytes %d, but the charged documents add up to %d", user, q[0], sums[user])
		}
		if q[2] != reserved[user] || q[2] != 0 {
			r.fail("invariant 1: user %s: reserved_bytes %d, the pending documents reserve %d, and none should be pending", user, q[2], reserved[user])
		}
		if q[0]+q[2] > q[1] {
			r.fail("invariant 1: user %s: used_bytes %d + reserved_bytes %d > limit_bytes %d", user, q[0], q[2], q[1])
		}
	}
	for _, u := range r.users {
		if _, ok := l.quotas[u.id]; !ok {
			r.fail("user %s has no quota row", u.id)
		}
	}

	// 2. Every charged document's object is in the bucket; 3. every object
	// has a row.
	keys := map[string]uuid.UUID{}
	for id, w := range l.rows {
		keys[w.key] = id
		if charged(w.status) && !l.objects[w.key] {
			r.fail("invariant 2: %s document %s has no object %s", w.status, id, w.key)
		}
	}
	for key := range l.objects {
		if _, ok := keys[key]; !ok {
			r.fail("invariant 3: object %s has no document row", key)
		}
	}

	// 5. Every object is its charged document's, exactly as charged; 6. it
	// holds its owner's bytes.
	owners := map[uuid.UUID]*user{}
	for _, u := range r.users {
		owners[u.id] = u
	}
	for key, obj := range l.stored {
		id, ok := keys[key]
		if !ok {
			continue // invariant 3
		}
		w := l.rows[id]
		if !charged(w.status) || obj.Size != w.size || obj.ETag != w.etag {
			r.fail("invariant 5: object %s (%d bytes, ETag %s, last modified %s) is stored for %s document %s charged %d bytes (ETag %s)%s",
				key, obj.Size, obj.ETag, r.sinceFaults(obj.LastModified), w.status, id, w.size, w.etag, r.storedWhen(id))
		}
		if u := owners[w.user]; u == nil || w.partSize == 0 && obj.ETag != u.etag(obj.Size) ||
			w.partSize > 0 && obj.ETag != u.multipartETag(obj.Size, w.partSize) {
			r.fail("invariant 6: object %s of user %s does not hold that user's bytes (ETag %s)", key, w.user, obj.ETag)
		}
	}

	// 4. Exactly one document.uploaded for every document charged now or
	// when it was deleted; none for any other. The same for rejections.
	ids := map[uuid.UUID]bool{}
	for id := range r.docs {
		ids[id] = true
	}
	for id := range l.events {
		ids[id] = true
		if r.docs[id] == nil {
			r.fail("events for document %s, which was never issued an upload URL", id)
		}
	}
	ledger := map[uuid.UUID]int64{} // per user: uploaded sizes minus those deleted while charged
	for id := range ids {
		de := l.events[id]
		if de == nil {
			de = &docEvents{}
		}
		w, exists := l.rows[id]
		var final document.Status // the status now, or when deleted; "" if purged
		switch {
		case exists:
			final = w.status
		case len(de.deleted) > 0:
			final = de.deleted[0].Data.Status
		}
		if exists && len(de.deleted) > 0 {
			r.fail("document %s has a row and a document.deleted event", id)
		}
		if len(de.deleted) > 1 {
			r.fail("document %s has %d document.deleted events", id, len(de.deleted))
		}
		// Found infected: charged at its confirm, then rejected by the
		// scanner, its charge released.
		infected := slices.ContainsFunc(de.rejected, func(e document.Event) bool { return e.Data.Reason == document.ReasonInfected })
		wantUploaded, wantRejected := 0, 0
		if charged(final) || final == document.StatusRejected && infected {
			wantUploaded = 1
		}
		if final == document.StatusRejected {
			wantRejected = 1
		}
		if exists && charged(w.status) && w.scan != document.ScanClean {
			r.fail("document %s ended %s with its scan %q, want clean", id, w.status, w.scan)
		}
		if n, distinct := len(de.uploaded), distinctIDs(de.uploaded); n != wantUploaded || distinct != n {
			r.fail("invariant 4: document %s (%q now or when deleted): %d document.uploaded messages (%d distinct event ids), want %d",
				id, final, n, distinct, wantUploaded)
		}
		if n, distinct := len(de.rejected), distinctIDs(de.rejected); n != wantRejected || distinct != n {
			r.fail("document %s (%q now or when deleted): %d document.rejected messages (%d distinct event ids), want %d",
				id, final, n, distinct, wantRejected)
		}
		d := r.docs[id]
		for _, e := range de.uploaded {
			if d != nil && (e.Data.SizeBytes != d.size || e.Data.UserID != d.user.id) || exists && e.Data.SizeBytes != w.size {
				r.fail("document.uploaded %s of document %s: %+v", e.ID, id, e.Data)
			}
			ledger[e.Data.UserID] += e.Data.SizeBytes
		}
		for _, e := range de.deleted {
			if charged(e.Data.Status) {
				ledger[e.Data.UserID] -= e.Data.SizeBytes
			}
		}
		if infected {
			ledger[de.rejected[0].Data.UserID] -= de.rejected[0].Data.SizeBytes
		}
		if d == nil {
			continue
		}
		// What the workers saw must agree with the end state.
		d.user.mu.Lock()
		seen := *d
		d.user.mu.Unlock()
		switch {
		case infected && !seen.infected:
			r.fail("document %s of its user's bytes was found infected: %+v", id, de.rejected)
		case seen.infected && exists && charged(final):
			r.fail("document %s: EICAR ended %q (scan %q, etag %s, EICAR's %s)", id, final, w.scan, w.etag, eicarETag)
		case seen.infected && len(de.deleted) > 0 && de.deleted[0].Data.ScanStatus == document.ScanClean:
			// Deleted while charged is fine (before its verdict, or
			// rejected already), but never once found clean.
			r.fail("document %s: EICAR was found clean before its delete: %+v", id, de.deleted[0].Data)
		case seen.deleted && (exists || len(de.deleted) != 1):
			r.fail("document %s: DELETE answered 204, but row kept %v, %d document.deleted events", id, exists, len(de.deleted))
		case seen.confirmed && !charged(final) && !infected:
			r.fail("document %s: confirm answered 200, but it ended %q", id, final)
		case seen.rejected && final != document.StatusRejected:
			r.fail("document %s: confirm answered 413, but it ended %q", id, final)
		case seen.put == putOK && !seen.deleted && !charged(final) && final != document.StatusRejected:
			r.fail("document %s: its PUT succeeded, but it ended %q (purged?)", id, final)
		case seen.missing && final != document.StatusRejected && len(de.deleted) == 0:
			r.fail("document %s: its PUT succeeded, a confirm said the upload was missing, and it ended %q", id, final)
		case seen.goneYoung != "" && len(de.deleted) == 0:
			r.fail("document %s: %s, too young for a sweep, yet no DELETE removed it (it ended %q)", id, seen.goneYoung, final)
		case seen.declared && final == document.StatusRejected && !infected:
			// Its declared size was reserved with it: the charge had room.
			r.fail("document %s of %d declared bytes (reserved) was rejected: %+v", id, seen.size, de.rejected)
		}
	}

	// 7. No multipart upload outlives its document: none is left under the
	// exact key of a document that is gone or no longer pending, and no
	// object under the key of one that is gone.
	for id, key := range r.multipartKeys {
		w, exists := l.rows[id]
		if exists && w.status == document.StatusPending {
			continue // none is left after the final sweep: see invariant 1
		}
		r.uploadsLeft++
		if open := r.s.OpenUploads(t, key); len(open) != 0 {
			how := "the workers had its plan"
			if r.docs[id] == nil {
				// Seen only by the sampler: its upload-url answered 503,
				// and the API removed the row, taking MinIO's upload for
				// never made.
				how = "its upload-url failed: the API removed the row, taking the upload for never made"
			}
			r.fail("invariant 7: multipart document %s (%s; %s): MinIO still holds uploads %v under %s",
				id, finalState(w.status, exists), how, open, key)
		}
		if !exists && l.objects[key] {
			r.fail("invariant 7: multipart document %s is gone, but its object %s is stored", id, key)
		}
	}
	// The event stream is a ledger too: what it charged minus what it
	// released is what each quota says.
	for _, u := range r.users {
		if got := l.quotas[u.id][0]; ledger[u.id] != got {
			r.fail("user %s: the document events charge %d bytes net, used_bytes is %d", u.id, ledger[u.id], got)
		}
	}
	for _, x := range r.listed {
		d := r.docs[x.id]
		if d == nil && x.answer.Status == string(document.StatusPending) && x.answer.DeclaredSize != nil {
			// A multipart document whose upload MinIO failed to make,
			// listed before the API removed it: one of the user's if one
			// of their failed requests has its size and type.
			a := x.answer
			if slices.ContainsFunc(r.unissued, func(f *doc) bool {
				return f.user == x.user && f.size == *a.DeclaredSize && f.contentType == a.ContentType
			}) {
				r.ghosts++
				continue
			}
		}
		if d == nil || d.user != x.user {
			r.fail("list of %s showed document %s, not one of the user's: %+v", x.user.id, x.id, x.answer)
		}
	}
	r.final = l
}

// sinceFaults says when at was, from the first fault's start.
func (r *rig) sinceFaults(at time.Time) string {
	if len(r.faults) == 0 {
		return at.Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%+.3fs from the first fault", at.Sub(r.faults[0].start).Seconds())
}

// storedWhen says when MinIO last took document id's bytes, as far as the
// workers know.
func (r *rig) storedWhen(id uuid.UUID) string {
	d := r.docs[id]
	if d == nil {
		return ""
	}
	d.user.mu.Lock()
	defer d.user.mu.Unlock()
	if d.storedAt.IsZero() {
		return ""
	}
	return "; its bytes were last PUT (200) at " + r.sinceFaults(d.storedAt)
}

// finalState names a document's end: its status, or gone.
func finalState(s document.Status, exists bool) string {
	if !exists {
		return "gone"
	}
	return string(s)
}

// distinctIDs counts the distinct event ids of es.
func distinctIDs(es []document.Event) int {
	ids := map[uuid.UUID]bool{}
	for _, e := range es {
		ids[e.ID] = true
	}
	return len(ids)
}

// report logs the run's counts.
func (r *rig) report(t *testing.T, final sweeper.Completed, settled, workload, total time.Duration) {
	t.Helper()
	l := r.final
	r.addConfirmerStats()
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Logf("operations: %d in %s (%.0f/s): %s", r.total.Load(), workload.Round(time.Millisecond),
		float64(r.total.Load())/workload.Seconds(), formatCounts(r.ops))
	var lat []string
	for _, k := range slices.Sorted(maps.Keys(r.ops)) {
		lat = append(lat, fmt.Sprintf("%s %s (max %s)", k, (r.latency[k]/time.Duration(r.ops[k])).Round(100*time.Microsecond), r.slowest[k].Round(time.Millisecond)))
	}
	t.Logf("mean latency: %s", strings.Join(lat, ", "))
	t.Logf("answers (%d checked against the OpenAPI document): %s", r.validated.Load(), formatCounts(r.outcomes))
	var faults []string
	for _, f := range r.faults {
		faults = append(faults, fmt.Sprintf("%s at +%s for %s", f.name, f.start.Sub(r.faults[0].start).Round(time.Millisecond), f.end.Sub(f.start).Round(time.Millisecond)))
	}
	t.Logf("faults injected: %d: %s", len(r.faults), strings.Join(faults, "; "))
	t.Logf("confirmer (summed over restarts): %s", formatCounts(r.confirmer))
	attacks := map[string]int{}
	for k, n := range r.outcomes {
		if what, ok := strings.CutPrefix(k, "attack "); ok {
			attacks[what] = n
		}
	}
	t.Logf("attacks, by MinIO's answer (a 200 is a PUT again after a rejection or a delete, whose bytes the confirmer removed: "+
		"invariants 5 and 6 held): %s", formatCounts(attacks))
	statuses := map[document.Status]int{}
	scans := map[string]int{}
	charged, rejectedKept := 0, 0
	for _, w := range l.rows {
		statuses[w.status]++
		scans[cmp.Or(string(w.scan), "none")]++
		if w.status.Charged() {
			charged++
		}
		if w.status == document.StatusRejected && l.objects[w.key] {
			rejectedKept++ // a failure of invariant 5
		}
	}
	purged := 0
	for id := range r.docs {
		if _, ok := l.rows[id]; !ok && (l.events[id] == nil || len(l.events[id].deleted) == 0) {
			purged++
		}
	}
	t.Logf("documents: %d issued an upload URL; %d rows left: %s; %d deleted, %d purged by sweeps; "+
		"%d listed while their multipart upload-url was failing (of %d that answered 503)",
		len(r.docs), len(l.rows), formatCounts(statuses), l.byType[document.EventDeleted], purged, r.ghosts, len(r.unissued))
	t.Logf("scans of the rows left: %s; document.scanned events %d", formatCounts(scans), l.byType[document.EventScanned])
	var used int64
	for _, q := range l.quotas {
		used += q[0]
	}
	t.Logf("users: %d, %d bytes charged in all; objects in the bucket: %d, of %d charged and %d rejected documents "+
		"(none may be left: invariant 5); orphans made on purpose: %d",
		len(l.quotas), used, len(l.objects), charged, rejectedKept, r.orphans)
	multipart := map[string]int{}
	for k, n := range r.outcomes {
		if what, ok := strings.CutPrefix(k, "multipart "); ok {
			multipart[what] = n
		}
	}
	t.Logf("multipart uploads: %s", formatCounts(multipart))
	t.Logf("quota samples: %d, one every %s from the first operation to the last sweep, each one snapshot of every quota and "+
		"its documents (%d with bytes reserved): used + reserved <= limit, used = the charged sizes, reserved = the pending "+
		"reservations; peak (used + reserved) / limit %.3f, peak reserved by one user %d bytes",
		r.sampled.samples, sampleEvery, r.sampled.reserving, r.sampled.peakShare, r.sampled.peakReserved)
	t.Logf("multipart keys checked at the end for incomplete uploads (invariant 7): %d of %d seen", r.uploadsLeft, len(r.multipartKeys))
	t.Logf("document events: %d: %s", l.total, formatCounts(l.byType))
	t.Logf("final sweep: %+v in %d ms; settling took %s", final.SweepResult, final.DurationMS, settled.Round(time.Millisecond))
	t.Logf("failures: %d; total duration %s", r.failures, total.Round(time.Millisecond))
	// Repeated last, where a truncated log still shows them.
	for i, f := range r.failed {
		t.Logf("failure %d: %s", i+1, f)
	}
}

// formatCounts formats a map of counts in key order.
func formatCounts[K ~string, V int | int64](m map[K]V) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
