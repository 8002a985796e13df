package soak_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The soak's sizes. A notification is about 1.3 KB; one PUT with padded
// headers makes two of about 90 KB (MinIO copies X-Forwarded-For into each
// twice and User-Agent once, "<" written as 6 bytes).
const (
	// MINIO_EVENTS at 1 MiB: ten padded notifications. At its smallest
	// (config.MinMinIOEventsBytes, two of the largest) padded bursts fill
	// it so often that MinIO's 3 s retries add up to 20 s for a few
	// uploads: correct, but not "within seconds".
	minioEventsBytes = 1 << 20
	documentsBytes   = config.MinDocumentsBytes
	// reproBytes is the MINIO_EVENTS of the reproduction: filled
	// by padded PUTs, then 30 uploads that only a notification settles.
	reproBytes   = 2 << 20
	reproUploads = 30

	users      = 40
	perUser    = 20 // uploads per user: well under UPLOAD_RATE_PER_MINUTE
	workers    = 8
	paddedEach = 6 // every paddedEach-th upload pads its PUT's headers
	strayEach  = 12
	padLen     = 7000
	// settleIn bounds the time from an upload's PUT to its settling by its
	// notification (here: under a second, with -race on two shared cores).
	settleIn   = 15 * time.Second
	capacities = 20 // bytes through each stream, in multiples of its limit
)

// meter counts what is published on a subject, with a core subscription.
type meter struct {
	msgs, bytes atomic.Int64
}

func watch(t *testing.T, nc *nats.Conn, subject string, fn func(*nats.Msg)) *meter {
	t.Helper()
	m := &meter{}
	if _, err := nc.Subscribe(subject, func(msg *nats.Msg) {
		m.msgs.Add(1)
		m.bytes.Add(int64(len(msg.Data)))
		if fn != nil {
			fn(msg)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return m
}

// settled records when each document's document.uploaded (or rejection)
// was published.
type settled struct {
	mu sync.Mutex
	at map[uuid.UUID]time.Time
}

func (s *settled) get(id uuid.UUID) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.at[id]
	return at, ok
}

// upload is one upload of the soak, as its client saw it.
type upload struct {
	id      uuid.UUID
	user    string // token
	key     string
	ticket  apitest.Ticket
	putDone time.Time
	confirm bool // the client confirms it; otherwise only the notification does
	padded  bool
	stray   bool // deleted after it settled, then PUT again
}

func TestEventPlaneOutlivesManyTimesItsStreams(t *testing.T) {
	s := apitest.Start(t, apitest.Options{Events: true, Classifiers: 1, Edit: func(c *config.Config) {
		c.QuotaDefaultBytes = 1 << 30
		// The smallest each may be.
		c.NATSMinIOEventsMaxBytes = minioEventsBytes
		c.NATSDocumentsMaxBytes = documentsBytes
	}})
	ctx := context.Background()
	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATS.URL, Name: "soak"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	done := &settled{at: map[uuid.UUID]time.Time{}}
	notes := watch(t, nc, events.SubjectMinIO, nil)
	docEvents := watch(t, nc, events.SubjectDocument, func(m *nats.Msg) {
		typ := document.TypeOfSubject(m.Subject)
		if typ != document.EventUploaded && typ != document.EventRejected {
			return
		}
		var e document.Event
		if json.Unmarshal(m.Data, &e) != nil {
			return
		}
		done.mu.Lock()
		if _, ok := done.at[e.Data.DocumentID]; !ok {
			done.at[e.Data.DocumentID] = time.Now()
		}
		done.mu.Unlock()
	})

	// resize sets a stream's bytes, as an operator could.
	resize := func(name string, maxBytes int64) {
		t.Helper()
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		cfg.MaxBytes = maxBytes
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatalf("resize %s: %v", name, err)
		}
	}
	// over records the largest size each stream reached, sampled every
	// 100 ms, against its limit.
	var overMu sync.Mutex
	peak := map[string][2]int64{}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for sampleCtx.Err() == nil {
			for _, name := range []string{events.StreamMinIO, events.StreamDocuments} {
				st, err := js.Stream(sampleCtx, name)
				if err != nil {
					continue
				}
				info := st.CachedInfo()
				overMu.Lock()
				if p := peak[name]; int64(info.State.Bytes) > p[0] || info.Config.MaxBytes != p[1] {
					peak[name] = [2]int64{max(p[0], int64(info.State.Bytes)), info.Config.MaxBytes}
				}
				overMu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	client := &http.Client{Timeout: 30 * time.Second}
	put := func(u *upload) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, u.ticket.UploadURL, strings.NewReader(strings.Repeat("%", 512)))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range u.ticket.Headers {
			if k != "Content-Length" {
				req.Header.Set(k, v)
			}
		}
		if u.padded {
			req.Header.Set("X-Forwarded-For", strings.Repeat("<", padLen))
			req.Header.Set("User-Agent", strings.Repeat("<", 1000))
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("PUT: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var tokens []string
	for range users {
		_, tok := s.NewUser(t)
		tokens = append(tokens, tok)
	}
	// run uploads n documents on workers goroutines, each PUT by its
	// client, confirmed by it when confirm says so, and returns them.
	run := func(n int, plan func(i int, u *upload)) []*upload {
		t.Helper()
		ups := make([]*upload, n)
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n || t.Failed() {
						return
					}
					u := &upload{user: tokens[i%len(tokens)]}
					plan(i, u)
					// A long file name (the longest allowed is 255 bytes):
					// document events of about 1 KB.
					name := fmt.Sprintf("%s-%04d.pdf", strings.Repeat("quarterly-report-", 14), i)
					u.ticket = s.RequestUpload(t, u.user, name, "application/pdf", 512)
					u.id = u.ticket.DocumentID
					u.key = s.ObjectKey(t, u.id)
					if st := put(u); st != http.StatusOK {
						t.Errorf("PUT %d: MinIO answered %d", i, st)
						return
					}
					u.putDone = time.Now()
					if u.confirm {
						if r := s.Confirm(t, u.user, u.id); r.Status != http.StatusOK {
							t.Errorf("confirm %d: %d %s", i, r.Status, r.Body)
						}
					}
					ups[i] = u
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		return ups
	}
	// waitSettled waits until every upload's document.uploaded was
	// published, and returns the slowest notification-only settle.
	waitSettled := func(ups []*upload) (slowest time.Duration) {
		t.Helper()
		var took []time.Duration
		defer func() {
			if len(took) > 0 {
				slices.Sort(took)
				t.Logf("%d uploads settled by notifications only: PUT to document.uploaded median %s, 90th percentile %s, slowest %s",
					len(took), took[len(took)/2].Round(time.Millisecond), took[len(took)*9/10].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
			}
		}()
		deadline := time.Now().Add(settleIn + 30*time.Second)
		for _, u := range ups {
			for {
				at, ok := done.get(u.id)
				if ok {
					if !u.confirm {
						slowest = max(slowest, at.Sub(u.putDone))
						took = append(took, at.Sub(u.putDone))
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("document %s (PUT at %s, confirmed by the client %v) never settled", u.id, u.putDone.Format(time.TimeOnly), u.confirm)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		return slowest
	}

	// The reproduction: MINIO_EVENTS of 2 MiB, more than filled
	// with padded notifications, then 30 uploads nobody confirms.
	resize(events.StreamMinIO, reproBytes)
	began := time.Now()
	fill := run(int(reproBytes/(170<<10))+2, func(_ int, u *upload) { u.padded, u.confirm = true, true })
	waitSettled(fill)
	// The client's confirm came first: wait for both notifications of
	// every padded PUT (targets PRIMARY and LIVE).
	deadline := time.Now().Add(settleIn)
	for notes.msgs.Load() < int64(2*len(fill)) {
		if time.Now().After(deadline) {
			t.Fatalf("%d notifications of %d padded PUTs", notes.msgs.Load(), len(fill))
		}
		time.Sleep(20 * time.Millisecond)
	}
	filled := notes.bytes.Load()
	repro := run(reproUploads, func(int, *upload) {})
	slowest := waitSettled(repro)
	t.Logf("reproduction: MINIO_EVENTS of %d bytes; %d padded uploads published %d bytes of notifications; then %d uploads without a client confirm all settled by notifications, the slowest %s after its PUT",
		reproBytes, len(fill), filled, len(repro), slowest.Round(time.Millisecond))
	if slowest > settleIn {
		t.Errorf("an upload settled %s after its PUT, want within %s", slowest, settleIn)
	}

	// The soak: both streams tiny, as configured.
	resize(events.StreamMinIO, minioEventsBytes)
	overMu.Lock()
	clear(peak) // the reproduction's MINIO_EVENTS was larger
	overMu.Unlock()
	notesBefore, docsBefore := notes.bytes.Load(), docEvents.bytes.Load()
	ups := run(users*perUser, func(i int, u *upload) {
		u.confirm = i%2 == 0
		u.padded = i%paddedEach == 1
		u.stray = i%strayEach == 3
	})
	loadEnded := time.Now()
	slowest = waitSettled(ups)
	afterLoad := time.Since(loadEnded)

	// Strays: each settled upload's document deleted, its URL PUT again.
	var strays []*upload
	for _, u := range ups {
		if !u.stray {
			continue
		}
		if r := s.Do(t, http.MethodDelete, "/api/documents/"+u.id.String(), u.user, nil); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		if st := put(u); st != http.StatusOK {
			t.Fatalf("stray PUT of a deleted document's URL: %d", st)
		}
		strays = append(strays, u)
	}
	straysPut := time.Now()
	deadline = time.Now().Add(settleIn)
	for _, u := range strays {
		for s.KeyExists(t, u.key) {
			if time.Now().After(deadline) {
				t.Fatalf("the stray object %s is still stored %s after its PUT", u.key, settleIn)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	straysGone := time.Since(straysPut)

	// Live events and the classifier at the end.
	final := s.Upload(t, tokens[0], "final.pdf", apitest.BytesOf(512))
	checkLive(t, s, tokens[1])
	waitClassified(t, s, tokens[0], final)

	// The outbox drains.
	deadline = time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still in the outbox", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopSampling()
	<-sampled
	// The gauge an operator alerts on shows the backlog gone.
	waitGauge(t, s.URL+"/metrics", "docuvault_notifications_waiting 0")

	through := map[string]int64{
		events.StreamMinIO:     notes.bytes.Load() - notesBefore,
		events.StreamDocuments: docEvents.bytes.Load() - docsBefore,
	}
	limits := map[string]int64{events.StreamMinIO: minioEventsBytes, events.StreamDocuments: documentsBytes}
	for _, name := range []string{events.StreamMinIO, events.StreamDocuments} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		overMu.Lock()
		p := peak[name]
		overMu.Unlock()
		t.Logf("%s: %d bytes through a limit of %d (%.1f times); peak held %d bytes; at the end %d messages, %d bytes",
			name, through[name], limits[name], float64(through[name])/float64(limits[name]), p[0], info.State.Msgs, info.State.Bytes)
		if through[name] < capacities*limits[name] {
			t.Errorf("%s: only %d bytes through, want at least %d times its %d", name, through[name], capacities, limits[name])
		}
		if p[0] > limits[name] && p[1] <= limits[name] || int64(info.State.Bytes) > limits[name] {
			t.Errorf("%s held %d bytes, over its limit %d", name, max(p[0], int64(info.State.Bytes)), limits[name])
		}
	}
	// MinIO replays the notifications JetStream refused while full from its
	// queue directory on its own timer, so one may still arrive after the
	// gauge read 0; the confirmer takes it and the stream empties again.
	deadline = time.Now().Add(20 * time.Second)
	for {
		st, err := js.Stream(ctx, events.StreamMinIO)
		if err != nil {
			t.Fatal(err)
		}
		if st.CachedInfo().State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("MINIO_EVENTS still holds %d notifications 20s after everything settled", st.CachedInfo().State.Msgs)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var padded, byNote int
	for _, u := range ups {
		if u.padded {
			padded++
		}
		if !u.confirm {
			byNote++
		}
	}
	t.Logf("soak: %d uploads (%d settled by notifications only, the slowest %s after its PUT; %d with padded headers), all settled %s after the load ended; %d strays PUT, all removed %s after the last; %s in all",
		len(ups), byNote, slowest.Round(time.Millisecond), padded, afterLoad.Round(time.Millisecond), len(strays), straysGone.Round(time.Millisecond), time.Since(began).Round(time.Second))
	if slowest > settleIn {
		t.Errorf("an upload settled %s after its PUT, want within %s", slowest, settleIn)
	}
}

// checkLive opens the caller's live event stream, uploads a document, and
// waits for its document.uploaded on the stream.
func checkLive(t *testing.T, s *apitest.Stack, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("live events: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("live events: %d", resp.StatusCode)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	// The first line says the stream is open.
	select {
	case <-lines:
	case <-ctx.Done():
		t.Fatal("live events: nothing within 30 s")
	}
	id := s.Upload(t, token, "live.pdf", apitest.BytesOf(256))
	if r := s.Confirm(t, token, id); r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("live events: the stream ended before the upload's event")
			}
			if strings.HasPrefix(line, "data: ") && strings.Contains(line, id.String()) {
				return
			}
		case <-ctx.Done():
			t.Fatal("live events: no event of the new upload within 30 s")
		}
	}
}

// waitClassified waits until the classifier has classified the document.
func waitClassified(t *testing.T, s *apitest.Stack, token string, id uuid.UUID) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := s.Do(t, http.MethodGet, "/api/documents/"+id.String(), token, nil)
		var d struct {
			Status string `json:"status"`
		}
		r.Decode(t, &d)
		if slices.Contains([]string{"classified", "classification_failed"}, d.Status) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("document %s is %s 30 s on: the classifier stopped", id, d.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitGauge waits until the metrics at url show line (values are at most a
// second old).
func waitGauge(t *testing.T, url, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(strings.Split(string(body), "\n"), line) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %q", line)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
