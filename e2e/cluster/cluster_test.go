package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/services/confirmer"
	"github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/services/sweeper"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	numNodes   = 3
	numUsers   = 6
	numWorkers = 6
	// pace is each client's pause between two uploads.
	pace = 20 * time.Millisecond
	// abandonEvery: every tenth upload URL is asked for and never used,
	// so that the sweeper has stale pending rows to purge throughout.
	abandonEvery = 10
	maxDocBytes  = 8 << 10

	sweepInterval = time.Second
	uploadURLTTL  = 4 * time.Second
	pendingTTL    = 6 * time.Second // must exceed uploadURLTTL

	warmup = 4 * time.Second // uploads before the first fault
	outage = 8 * time.Second // how long a stopped node stays away while uploads go on
	steady = 4 * time.Second // uploads between the faults, and after the last

	// minioClientName is the client name MinIO's NATS targets connect with.
	minioClientName = "Minio Notification"
	maxFailures     = 20
)

// The doors an honest client takes.
const (
	doorConfirm = "confirm" // PUT, then POST /confirm
	doorEvent   = "event"   // PUT, then rely on MinIO's notification
	doorAbandon = "abandon" // ask for an upload URL and never use it
)

// A group is a stream, or a durable consumer on one, with its own leader.
type group struct{ stream, consumer string }

func (g group) String() string {
	if g.consumer == "" {
		return g.stream
	}
	return g.stream + "/" + g.consumer
}

// groups are the replicated groups whose leader a fault takes away.
var groups = []group{
	{stream: events.StreamMinIO},
	{stream: events.StreamDocuments},
	{stream: events.StreamSweeper},
	{stream: events.StreamMinIO, consumer: confirmer.ConsumerName},
	{stream: events.StreamSweeper, consumer: sweeper.ConsumerName},
}

// TestLosingANATSNodeLosesNothing runs DocuVault on a three-node NATS
// JetStream cluster (NATS_STREAM_REPLICAS=3), with MinIO's PRIMARY target
// (JetStream, queued on disk) pointed at node 0 and its LIVE target at
// node 1, and every role (the api, two confirmers, a sweeper, a relay in
// each) connected to all three nodes. While honest clients upload (half
// confirm through POST /confirm, half rely on MinIO's notification; one in
// ten abandons its upload URL), it moves the leaders of MINIO_EVENTS,
// DOCUMENTS, SWEEPER and their durable consumers to node 0 and stops it,
// brings it back, then does the same to node 1 and leaves it stopped. At
// the end:
//
//  1. every upload is confirmed and charged exactly once: each document is
//     uploaded with its size, each user's used_bytes is the sum of their
//     uploads' sizes, the ledger (bucket against table) agrees, nothing is
//     reserved, and the abandoned uploads were purged;
//  2. MINIO_EVENTS holds a notification of every upload (PRIMARY's,
//     whichever node its client had to move to);
//  3. DOCUMENTS holds exactly one document.uploaded per charged document
//     and none for any other;
//  4. the sweep schedule fired at most once per interval (no slot twice,
//     read from the Nats-Schedule-Next each tick carries) and kept firing
//     after each loss; each sweep run completed once, and runs went on;
//  5. nothing is left pending (none past its TTL), and both confirmers
//     handled notifications after the last loss;
//  6. every stream and durable consumer has 3 replicas configured and 3
//     peers, as read back from the cluster.
//
// It logs the longest pause in confirmations during each leader change
// (between consecutive notification-door confirmations, and between
// consecutive document.uploaded events stored in DOCUMENTS), how long
// notification-door uploads waited, the counts, and where MinIO's NATS
// connections went. Timings are logged, not asserted.
func TestLosingANATSNodeLosesNothing(t *testing.T) {
	began := time.Now()
	nodes, urls := testenv.NATSCluster(t, numNodes)
	s := apitest.Start(t, apitest.Options{
		Events:       true,
		Sweepers:     1,
		NATS:         nodes,
		MinIOTargets: [2]int{0, 1}, // PRIMARY to node 0, LIVE to node 1
		Edit: func(c *config.Config) {
			c.NATSStreamReplicas = numNodes
			c.SweepInterval = sweepInterval
			c.UploadURLTTL = uploadURLTTL
			c.PendingTTL = pendingTTL
			// The cluster is under test, not the abuse limits.
			c.UploadsPerMinute = 0
			c.MaxPendingUploads = 0
			c.DeletesPerMinute, c.StoragePerMinute = 0, 0
		},
	})
	if s.NATSURL != urls {
		t.Fatalf("the stack connects to %q, want every node: %q", s.NATSURL, urls)
	}
	confirmer2, _ := s.StartRole(t, stack.Confirmer)
	r := newRig(t, s, nodes)
	r.confirmers = []*stack.Stack{s.Confirmer, confirmer2}
	t.Logf("cluster %s and stack ready in %s", urls, time.Since(began).Round(time.Millisecond))

	// The clients, and a watch on the oldest pending row.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range numWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(i, stop)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.watchPending(stop)
	}()
	var once sync.Once
	halt := func() {
		once.Do(func() { close(stop) })
		wg.Wait()
	}
	t.Cleanup(halt) // before the stack's clean-up, should the test end early
	r.runStart = time.Now()

	r.setPhase("warmup")
	time.Sleep(warmup)
	r.logMinIOConns("before the faults")

	// Fault 1: node 0 leads everything (and is MinIO PRIMARY's node); it
	// stops, stays away, comes back.
	f1 := r.fault(nodes[0], fault1)
	r.waitMinIOConnected(f1)
	time.Sleep(time.Until(f1.stopped.Add(outage)))
	f1.end = time.Now()
	nodes[0].Restart(t)
	r.waitCaughtUp(nodes[0])
	r.setPhase("between")
	r.logMinIOConns("after node 0 came back")
	time.Sleep(steady)

	// Fault 2: another node, node 1 (MinIO LIVE's node), leads everything
	// and stops, for the rest of the run.
	f2 := r.fault(nodes[1], fault2)
	time.Sleep(time.Until(f2.stopped.Add(outage)))
	r.setPhase("tail")
	r.waitMinIOConnected(f2)
	time.Sleep(steady)
	halt()
	f2.end = time.Now()
	workload := time.Since(r.runStart)
	r.setPhase("settle")

	settleStart := time.Now()
	r.settle(90 * time.Second)
	s.WaitConfirmerIdle(t, 4*time.Second, 60*time.Second)
	settled := time.Since(settleStart)

	faults := []*fault{f1, f2}
	uploadedAt, keys := r.checkLedger()
	r.checkNotifications(keys)
	docEvents := r.checkEvents()
	r.checkSweeps(faults)
	r.checkReplicas()
	r.reportPauses(faults, uploadedAt, docEvents)

	counts := func(st *stack.Stack) string {
		c := apitest.ConfirmerCounts(st)
		keys := make([]string, 0, len(c))
		for k := range c {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s %d, ", k, c[k])
		}
		return strings.TrimSuffix(b.String(), ", ")
	}
	t.Logf("confirmer 1: %s", counts(s.Confirmer))
	t.Logf("confirmer 2: %s", counts(confirmer2))
	t.Logf("api: /confirm answered uploaded %d, already %d; sweeper confirmed %d",
		apitest.Count(s.API.Metrics.Confirms.WithLabelValues("endpoint", "uploaded")),
		apitest.Count(s.API.Metrics.Confirms.WithLabelValues("endpoint", "already")),
		apitest.Count(s.Sweepers[0].Metrics.Confirms.WithLabelValues("sweeper", "uploaded")))
	t.Logf("oldest pending row seen, by phase: %s", r.pendingAges())
	t.Logf("notifications handled by confirmer 1/2, by phase: %s", r.handledByPhase())
	r.checkConfirmersWork()
	t.Logf("workload %s, settled in %s, test %s", workload.Round(time.Millisecond),
		settled.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// user is a client's account.
type user struct {
	id    uuid.UUID
	token string
}

// upload is what one client did, as the client saw it.
type upload struct {
	id      uuid.UUID
	user    uuid.UUID
	size    int64
	door    string
	put     bool          // MinIO answered 200 to the PUT
	putDone time.Time     // when it did
	answer  time.Duration // the /confirm door: how long the answer took
}

// fault is one node's loss.
type fault struct {
	name    string
	node    *testenv.NATSServer
	stopped time.Time // when the node stopped
	elected time.Time // when every group had a leader again
	end     time.Time // when it came back, or the uploads ended
}

type rig struct {
	t        *testing.T
	s        *apitest.Stack
	nodes    []*testenv.NATSServer
	nc       *nats.Conn
	js       jetstream.JetStream
	client   *http.Client
	users    []user
	runStart time.Time

	mu      sync.Mutex
	uploads []*upload
	phase   string
	pending map[string]time.Duration // the oldest pending row seen, by phase
	handled map[string][]int64       // notifications each confirmer handled, by phase
	notes   map[string]int           // notifications published, by object key

	confirmers []*stack.Stack
	failures   atomic.Int64
}

func newRig(t *testing.T, s *apitest.Stack, nodes []*testenv.NATSServer) *rig {
	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATSURL, Name: "cluster-test"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r := &rig{
		t: t, s: s, nodes: nodes, nc: nc, js: js,
		client:  &http.Client{Timeout: 30 * time.Second},
		pending: map[string]time.Duration{},
		handled: map[string][]int64{},
		notes:   map[string]int{},
	}
	r.watchNotes()
	for range numUsers {
		id, token := s.NewUser(t)
		r.users = append(r.users, user{id: id, token: token})
	}
	return r
}

// fail reports a failure of a client, the first maxFailures one by one.
func (r *rig) fail(format string, args ...any) {
	if r.failures.Add(1) <= maxFailures {
		r.t.Errorf(format, args...)
	}
}

func (r *rig) setPhase(p string) {
	r.mu.Lock()
	r.phase = p
	r.mu.Unlock()
}

// work uploads as user i%numUsers until stop closes, taking the doors in
// turn.
func (r *rig) work(i int, stop <-chan struct{}) {
	u := r.users[i%numUsers]
	rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		door := doorConfirm
		switch {
		case n%abandonEvery == abandonEvery-1:
			door = doorAbandon
		case n%2 == 1:
			door = doorEvent
		}
		r.upload(rng, u, door)
		time.Sleep(pace)
	}
}

// upload asks for an upload URL, PUTs the bytes and, by the confirm door,
// confirms; the abandon door stops after the URL.
func (r *rig) upload(rng *rand.Rand, u user, door string) {
	size := 1 + rng.IntN(maxDocBytes)
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	status, body, err := r.api(http.MethodPost, "/api/documents/upload-url", u.token, map[string]any{
		"filename": fmt.Sprintf("doc-%d.pdf", size), "content_type": "application/pdf", "size_bytes": size,
	})
	if err != nil || status != http.StatusCreated {
		r.fail("upload-url: %d %s %v", status, body, err)
		return
	}
	var tk apitest.Ticket
	if err := json.Unmarshal(body, &tk); err != nil {
		r.fail("upload-url answer %s: %v", body, err)
		return
	}
	up := &upload{id: tk.DocumentID, user: u.id, size: int64(size), door: door}
	r.mu.Lock()
	r.uploads = append(r.uploads, up)
	r.mu.Unlock()
	if door == doorAbandon {
		return
	}

	req, err := http.NewRequest(http.MethodPut, tk.UploadURL, bytes.NewReader(data))
	if err != nil {
		r.fail("PUT request: %v", err)
		return
	}
	for k, v := range tk.Headers {
		if k != "Content-Length" {
			req.Header.Set(k, v)
		}
	}
	resp, err := r.client.Do(req)
	if err != nil {
		r.fail("PUT %s: %v", up.id, err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		r.fail("PUT %s: MinIO answered %d", up.id, resp.StatusCode)
		return
	}
	up.put, up.putDone = true, time.Now()
	if door != doorConfirm {
		return
	}

	status, body, err = r.api(http.MethodPost, "/api/documents/"+up.id.String()+"/confirm", u.token, nil)
	up.answer = time.Since(up.putDone)
	if err != nil || status != http.StatusOK {
		r.fail("confirm %s: %d %s %v", up.id, status, body, err)
		return
	}
	var c apitest.Confirmation
	if err := json.Unmarshal(body, &c); err != nil {
		r.fail("confirm answer %s: %v", body, err)
		return
	}
	if c.ID != up.id || c.Status != string(document.StatusUploaded) || c.SizeBytes != up.size {
		r.fail("confirm %s (%d bytes) answered %+v", up.id, up.size, c)
	}
}

// api sends a request to the api and returns its status and body.
func (r *rig) api(method, path, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.s.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// watchPending records, twice a second until stop closes, the age of the
// oldest pending row, by phase of the run.
func (r *rig) watchPending(stop <-chan struct{}) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		r.countHandled()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var oldest *time.Time
		err := r.s.DB.QueryRow(ctx, `SELECT min(created_at) FROM documents WHERE status = 'pending'`).Scan(&oldest)
		cancel()
		if err != nil || oldest == nil {
			continue
		}
		age := time.Since(*oldest)
		r.mu.Lock()
		r.pending[r.phase] = max(r.pending[r.phase], age)
		r.mu.Unlock()
	}
}

// countHandled records how many notifications each confirmer handled so
// far, under the current phase.
func (r *rig) countHandled() {
	var n []int64
	for _, c := range r.confirmers {
		var sum int64
		for _, v := range apitest.ConfirmerCounts(c) {
			sum += v
		}
		n = append(n, sum)
	}
	r.mu.Lock()
	r.handled[r.phase] = n
	r.mu.Unlock()
}

func (r *rig) pendingAges() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for _, p := range phases {
		if age, ok := r.pending[p]; ok {
			parts = append(parts, fmt.Sprintf("%s %s", p, age.Round(100*time.Millisecond)))
		}
	}
	return strings.Join(parts, ", ")
}

// handledByPhase says how many notifications each confirmer handled in
// each phase of the run.
func (r *rig) handledByPhase() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	prev := make([]int64, len(r.confirmers))
	for _, p := range phases {
		n, ok := r.handled[p]
		if !ok {
			continue
		}
		var d []string
		for i := range n {
			d = append(d, fmt.Sprint(n[i]-prev[i]))
		}
		prev = n
		parts = append(parts, fmt.Sprintf("%s %s", p, strings.Join(d, "/")))
	}
	return strings.Join(parts, ", ")
}

// checkConfirmersWork checks that both confirmers handled notifications in
// the last phase, after both losses: each pulls again after a leader change
// instead of leaving the work to the other (or to the sweeper).
func (r *rig) checkConfirmersWork() {
	r.mu.Lock()
	defer r.mu.Unlock()
	before, last := r.handled[fault2], r.handled["tail"]
	if before == nil || last == nil {
		r.t.Errorf("no count of the confirmers' work before and after the last loss: %v, %v", before, last)
		return
	}
	for i := range last {
		if last[i] == before[i] {
			r.t.Errorf("confirmer %d handled no notification in the last %s of uploads, after the loss of both nodes", i+1, steady)
		}
	}
}

// phases are the phases of the run, in order.
var phases = []string{"warmup", fault1, "between", fault2, "tail"}

const (
	fault1 = "node 0 (leader, MinIO PRIMARY's node)"
	fault2 = "node 1 (leader, MinIO LIVE's node)"
)

// leader returns the name of g's leader ("" while it has none).
func (r *rig) leader(g group) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var cl *jetstream.ClusterInfo
	if g.consumer == "" {
		st, err := r.js.Stream(ctx, g.stream)
		if err != nil {
			return "", err
		}
		info := st.CachedInfo()
		cl = info.Cluster
	} else {
		c, err := r.js.Consumer(ctx, g.stream, g.consumer)
		if err != nil {
			return "", err
		}
		cl = c.CachedInfo().Cluster
	}
	if cl == nil {
		return "", nil
	}
	return cl.Leader, nil
}

// stepDown asks g's leader to hand over to the node named to.
func (r *rig) stepDown(g group, to string) error {
	subject := "$JS.API.STREAM.LEADER.STEPDOWN." + g.stream
	if g.consumer != "" {
		subject = "$JS.API.CONSUMER.LEADER.STEPDOWN." + g.stream + "." + g.consumer
	}
	req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": to}})
	msg, err := r.nc.Request(subject, req, 5*time.Second)
	if err != nil {
		return err
	}
	var resp struct {
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return err
	}
	if resp.Error != nil {
		return errors.New(resp.Error.Description)
	}
	return nil
}

// moveLeaders makes node lead every group, stepping the leaders down in
// its favour.
func (r *rig) moveLeaders(node *testenv.NATSServer) {
	r.t.Helper()
	to := node.Name()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var elsewhere []string
		for _, g := range groups {
			l, err := r.leader(g)
			if err == nil && l == to {
				continue
			}
			elsewhere = append(elsewhere, fmt.Sprintf("%s led by %q (%v)", g, l, err))
			if err == nil && l != "" {
				_ = r.stepDown(g, to) // an error shows as the leader staying
			}
		}
		if len(elsewhere) == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("could not move the leaders to %s: %s", to, strings.Join(elsewhere, "; "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// fault moves every group's leader to node, stops node and waits until
// every group has a leader again.
func (r *rig) fault(node *testenv.NATSServer, name string) *fault {
	r.t.Helper()
	r.moveLeaders(node)
	f := &fault{name: name, node: node}
	r.setPhase(name)
	f.stopped = time.Now()
	node.Stop()
	deadline := time.Now().Add(60 * time.Second)
	var waits []string
	for _, g := range groups {
		for {
			l, err := r.leader(g)
			if err == nil && l != "" && l != node.Name() {
				waits = append(waits, fmt.Sprintf("%s %s (%s)", g, time.Since(f.stopped).Round(100*time.Millisecond), l))
				break
			}
			if time.Now().After(deadline) {
				r.t.Fatalf("%s: %s has no leader 60 s after %s stopped (%q, %v)", name, g, node.Name(), l, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	f.elected = time.Now()
	r.t.Logf("%s stopped at +%s; new leaders after: %s", name, f.stopped.Sub(r.runStart).Round(time.Millisecond), strings.Join(waits, ", "))
	return f
}

// waitCaughtUp waits until the restarted node is a current replica of
// every group again.
func (r *rig) waitCaughtUp(node *testenv.NATSServer) {
	r.t.Helper()
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	for {
		behind := r.behind(node.Name())
		if len(behind) == 0 {
			r.t.Logf("%s back and current in every group after %s", node.Name(), time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s is not current 60 s after its restart: %s", node.Name(), strings.Join(behind, "; "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// behind lists the groups of which node is not (yet) a current member.
func (r *rig) behind(name string) []string {
	var out []string
	for _, g := range groups {
		cl, _, err := r.clusterInfo(g)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", g, err))
			continue
		}
		if cl == nil || cl.Leader == "" {
			out = append(out, fmt.Sprintf("%s: no leader", g))
			continue
		}
		if cl.Leader == name {
			continue
		}
		ok := false
		for _, p := range cl.Replicas {
			if p.Name == name && p.Current && !p.Offline {
				ok = true
			}
		}
		if !ok {
			out = append(out, fmt.Sprintf("%s: %s not current", g, name))
		}
	}
	return out
}

// clusterInfo reads g's cluster information and configured replicas.
func (r *rig) clusterInfo(g group) (*jetstream.ClusterInfo, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if g.consumer == "" {
		st, err := r.js.Stream(ctx, g.stream)
		if err != nil {
			return nil, 0, err
		}
		info := st.CachedInfo()
		return info.Cluster, info.Config.Replicas, nil
	}
	c, err := r.js.Consumer(ctx, g.stream, g.consumer)
	if err != nil {
		return nil, 0, err
	}
	info := c.CachedInfo()
	return info.Cluster, info.Config.Replicas, nil
}

// minioConns returns where MinIO's NATS targets are connected: PRIMARY
// publishes through JetStream and so holds a subscription (its reply
// inbox), LIVE holds none.
func (r *rig) minioConns() map[string]string {
	out := map[string]string{}
	for _, n := range r.nodes {
		srv := n.Server()
		if srv == nil {
			continue
		}
		cz, err := srv.Connz(&server.ConnzOptions{})
		if err != nil {
			continue
		}
		for _, c := range cz.Conns {
			if c.Name != minioClientName {
				continue
			}
			target := "LIVE"
			if c.NumSubs > 0 {
				target = "PRIMARY"
			}
			if out[target] != "" {
				target += "'"
			}
			out[target] = n.Name()
		}
	}
	return out
}

func (r *rig) logMinIOConns(when string) {
	r.t.Logf("MinIO's NATS connections %s: %v", when, r.minioConns())
}

// waitMinIOConnected waits until both of MinIO's targets are connected
// while f's node is stopped. A target is given one node's address; its NATS
// client learns the cluster's other URLs from that node and reconnects to
// one of them.
func (r *rig) waitMinIOConnected(f *fault) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conns := r.minioConns()
		if conns["PRIMARY"] != "" && conns["LIVE"] != "" {
			r.t.Logf("MinIO's NATS connections %s after %s stopped: %v", time.Since(f.stopped).Round(100*time.Millisecond), f.node.Name(), conns)
			return
		}
		if time.Now().After(deadline) {
			r.t.Errorf("MinIO's NATS targets are not both connected 30 s after %s stopped: %v", f.node.Name(), conns)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// settle waits until no row is pending (the uploads are confirmed, the
// abandoned ones purged) and the outbox is empty.
func (r *rig) settle(timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var pending, outbox int64
		err := r.s.DB.QueryRow(ctx, `SELECT (SELECT count(*) FROM documents WHERE status = 'pending'),
			(SELECT count(*) FROM outbox)`).Scan(&pending, &outbox)
		cancel()
		if err == nil && pending == 0 && outbox == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("not settled after %s: %d pending rows, %d outbox rows (%v)", timeout, pending, outbox, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkLedger checks that every upload is confirmed and charged exactly
// once and the abandoned ones are gone; it returns when each document was
// confirmed, and the documents by object key.
func (r *rig) checkLedger() (map[uuid.UUID]time.Time, map[string]uuid.UUID) {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type row struct {
		status    document.Status
		size      int64
		confirmed *time.Time
	}
	rows := map[uuid.UUID]row{}
	q, err := r.s.DB.Query(ctx, `SELECT id, status, coalesce(size_bytes, 0), confirmed_at FROM documents`)
	if err != nil {
		t.Fatal(err)
	}
	for q.Next() {
		var id uuid.UUID
		var w row
		if err := q.Scan(&id, &w.status, &w.size, &w.confirmed); err != nil {
			t.Fatal(err)
		}
		rows[id] = w
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	var reserved int64
	if err := r.s.DB.QueryRow(ctx, `SELECT coalesce(sum(reserved_bytes), 0) FROM quotas`).Scan(&reserved); err != nil {
		t.Fatal(err)
	}

	want := map[uuid.UUID]int64{} // used bytes, by user
	doors := map[string]int{}
	confirmedAt := map[uuid.UUID]time.Time{}
	bad := 0
	for _, up := range r.uploads {
		w, ok := rows[up.id]
		switch {
		case up.door == doorAbandon:
			doors[doorAbandon]++
			if ok {
				bad++
				t.Errorf("abandoned upload %s is still there, %s", up.id, w.status)
			}
			continue
		case !up.put:
			continue // failed already
		case !ok:
			bad++
			t.Errorf("upload %s (%s door) has no row", up.id, up.door)
		case w.status != document.StatusUploaded || w.size != up.size || w.confirmed == nil:
			bad++
			t.Errorf("upload %s (%s door, %d bytes) is %s, charged %d", up.id, up.door, up.size, w.status, w.size)
		default:
			confirmedAt[up.id] = *w.confirmed
		}
		doors[up.door]++
		want[up.user] += up.size
	}
	l := r.s.ReadLedger(t)
	keys := map[string]uuid.UUID{}
	for key, row := range l.Rows {
		keys[key] = row.ID
	}
	for _, p := range l.Problems() {
		t.Errorf("ledger: %s", p)
	}
	for _, u := range r.users {
		if l.Used[u.id] != want[u.id] {
			t.Errorf("user %s: used_bytes %d, the uploads add up to %d", u.id, l.Used[u.id], want[u.id])
		}
	}
	if reserved != 0 {
		t.Errorf("%d bytes still reserved after every upload settled", reserved)
	}
	if n := len(rows) - len(confirmedAt); n != 0 {
		t.Errorf("%d rows besides the confirmed uploads", n)
	}
	t.Logf("uploads: %d by /confirm, %d by notification only, %d abandoned; %d confirmed and charged once, %d objects, %d not as they should be, %d client failures",
		doors[doorConfirm], doors[doorEvent], doors[doorAbandon], len(confirmedAt), len(l.Objects), bad, r.failures.Load())
	return confirmedAt, keys
}

// watchNotes counts the notifications published on minio.events, by
// object key, with a subscriber on each node that stays with its node: a
// publish reaches the subscribers of every node that is up, and at most one
// is down at a time. A notification can be counted up to three times.
func (r *rig) watchNotes() {
	t := r.t
	for _, n := range r.nodes {
		nc, err := nats.Connect(n.URL, nats.IgnoreDiscoveredServers(), nats.MaxReconnects(-1),
			nats.ReconnectWait(200*time.Millisecond), nats.Name("cluster-test-notes"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		if _, err := nc.Subscribe(events.SubjectMinIO, func(m *nats.Msg) {
			var note struct {
				Key string `json:"Key"`
			}
			if json.Unmarshal(m.Data, &note) != nil {
				return
			}
			_, key, _ := strings.Cut(note.Key, "/") // bucket/key
			r.mu.Lock()
			r.notes[key]++
			r.mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// checkNotifications checks that MinIO published a notification of every
// upload: its PRIMARY target queues each on disk until JetStream has
// stored it, whichever node its client was connected to. LIVE's copy is
// the fast one, and is lost while LIVE's client or the stream has no node
// or leader to publish to. MINIO_EVENTS keeps a notification only until it
// is confirmed, so the rig counts them as they are published (watchNotes).
func (r *rig) checkNotifications(keys map[string]uuid.UUID) {
	t := r.t
	t.Helper()
	count := map[uuid.UUID]int{}
	r.mu.Lock()
	all := 0
	for key, n := range r.notes {
		all += n
		if id, ok := keys[key]; ok {
			count[id] += n
		}
	}
	r.mu.Unlock()
	copies := map[int]int{} // uploads by number of notifications
	for _, up := range r.uploads {
		if !up.put {
			continue
		}
		n := count[up.id]
		copies[min(n, 3)]++
		if n == 0 {
			t.Errorf("upload %s (%s door) has no notification in MINIO_EVENTS", up.id, up.door)
		}
	}
	t.Logf("minio.events: %d notifications seen by the nodes' subscribers (a copy may be seen by more than one); uploads with 1 of them %d, 2 %d, 3 or more %d, none %d",
		all, copies[1], copies[2], copies[3], copies[0])
}

// stored is a message read back from a stream.
type stored struct {
	seq     uint64
	subject string
	data    []byte
	header  nats.Header
	time    time.Time
}

// readStream reads every message of stream on subject (all with ""). A
// read that fails, as one can while the inspecting client reconnects to
// another node, starts again.
func (r *rig) readStream(stream, subject string) []stored {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := r.tryReadStream(stream, subject)
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("read %s: %v", stream, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (r *rig) tryReadStream(stream, subject string) ([]stored, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := jetstream.OrderedConsumerConfig{}
	if subject != "" {
		cfg.FilterSubjects = []string{subject}
	}
	cons, err := r.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, err
	}
	var out []stored
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			return nil, err
		}
		n, last := 0, false
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			out = append(out, stored{seq: meta.Sequence.Stream, subject: m.Subject(), data: m.Data(), header: m.Headers(), time: meta.Timestamp})
			last = meta.NumPending == 0
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		switch {
		case last, n == 0 && len(out) == 0: // all read, or nothing to read
			return out, nil
		case n == 0:
			return nil, fmt.Errorf("no message after %d, with more to come", len(out))
		}
	}
}

// checkEvents checks that DOCUMENTS holds exactly one document.uploaded
// per charged document and none for another; it returns the uploaded
// events.
func (r *rig) checkEvents() []stored {
	t := r.t
	t.Helper()
	all := r.readStream(events.StreamDocuments, "")
	charged := map[string]bool{}
	for _, up := range r.uploads {
		if up.put {
			charged[up.id.String()] = true
		}
	}
	byDoc := map[string]int{}
	byType := map[string]int{}
	var uploaded []stored
	for _, m := range all {
		var e apitest.Event
		if err := json.Unmarshal(m.data, &e); err != nil {
			t.Fatalf("DOCUMENTS message %d is not CloudEvents JSON: %v", m.seq, err)
		}
		byType[e.Type]++
		if e.Type == string(document.EventUploaded) {
			byDoc[e.Subject]++
			uploaded = append(uploaded, m)
		}
	}
	dups, missing, strays := 0, 0, 0
	for id := range charged {
		switch n := byDoc[id]; {
		case n == 0:
			missing++
			if missing <= maxFailures {
				t.Errorf("charged document %s has no document.uploaded in DOCUMENTS", id)
			}
		case n > 1:
			dups++
			if dups <= maxFailures {
				t.Errorf("charged document %s has %d document.uploaded in DOCUMENTS", id, n)
			}
		}
	}
	for id, n := range byDoc {
		if !charged[id] {
			strays++
			t.Errorf("document %s, not charged, has %d document.uploaded", id, n)
		}
	}
	t.Logf("DOCUMENTS: %d messages %v; %d charged documents, %d with one document.uploaded, %d with more, %d with none, %d strays",
		len(all), byType, len(charged), len(charged)-dups-missing, dups, missing, strays)
	return uploaded
}

// checkSweeps checks the sweep schedule: each slot fired at most once,
// ticks kept coming after each fault, and the sweeper ran each tick at most
// once and still ran after the last fault.
func (r *rig) checkSweeps(faults []*fault) {
	t := r.t
	t.Helper()
	type tick struct {
		seq  uint64
		at   time.Time // stored
		next time.Time // the slot after this tick's, from Nats-Schedule-Next
	}
	// The sweeper goes on meanwhile: its count of runs first, then the
	// results, then the ticks, so that every run read has its tick read.
	performed := apitest.Count(r.s.Sweepers[0].Metrics.SweepRuns)
	completed := r.readStream(events.StreamSweeper, sweeper.SubjectCompleted)
	var ticks []tick
	admin := 0
	for _, m := range r.readStream(events.StreamSweeper, sweeper.SubjectTick) {
		if m.header.Get("Nats-Scheduler") != sweeper.SubjectSchedule {
			admin++
			continue
		}
		next, err := time.Parse(time.RFC3339Nano, m.header.Get("Nats-Schedule-Next"))
		if err != nil {
			t.Errorf("scheduled tick %d: Nats-Schedule-Next %q: %v", m.seq, m.header.Get("Nats-Schedule-Next"), err)
			continue
		}
		ticks = append(ticks, tick{seq: m.seq, at: m.time, next: next})
	}
	if len(ticks) < 2 {
		t.Fatalf("the schedule fired %d times in the run", len(ticks))
	}
	// Exactly once per interval, read robustly: every tick names the next
	// slot; two ticks naming the same slot are one interval fired twice,
	// whatever the timing. Slots without a tick are intervals missed
	// (JetStream skips, rather than replays, slots it was late for).
	slots := map[time.Time]int{}
	missed := 0
	var gaps []string
	for i, tk := range ticks {
		slots[tk.next]++
		if i == 0 {
			continue
		}
		prev := ticks[i-1]
		step := tk.next.Sub(prev.next)
		if step <= 0 {
			t.Errorf("scheduled tick %d names slot %s, not after the previous tick's %s", tk.seq, tk.next, prev.next)
			continue
		}
		if n := int(step/sweepInterval) - 1; n > 0 {
			missed += n
			gaps = append(gaps, fmt.Sprintf("%d at +%s (%s)", n, prev.at.Sub(r.runStart).Round(100*time.Millisecond), r.during(faults, prev.at, tk.at)))
		}
	}
	for slot, n := range slots {
		if n > 1 {
			t.Errorf("the schedule fired %d ticks for the slot before %s: more than once in an interval", n, slot.Format(time.RFC3339Nano))
		}
	}
	last := faults[len(faults)-1]
	after := 0
	for _, tk := range ticks {
		if tk.at.After(last.elected) {
			after++
		}
	}
	if after == 0 {
		t.Errorf("no scheduled tick after %s lost its leader", last.node.Name())
	}
	span := ticks[len(ticks)-1].at.Sub(ticks[0].at)
	var spacing []time.Duration
	for i := 1; i < len(ticks); i++ {
		spacing = append(spacing, ticks[i].at.Sub(ticks[i-1].at))
	}
	slices.Sort(spacing)

	// The sweeper's runs: each tick's run at most once, and runs after the
	// last fault.
	runs := map[string]int{}
	var lastRun time.Time
	var longest time.Duration
	var runGaps []string
	var longestRunGap time.Duration
	for _, m := range completed {
		var c sweeper.Completed
		if err := json.Unmarshal(m.data, &c); err != nil {
			t.Fatalf("sweep result %d: %v", m.seq, err)
		}
		runs[c.RunID]++
		longest = max(longest, time.Duration(c.DurationMS)*time.Millisecond)
		if !lastRun.IsZero() {
			longestRunGap = max(longestRunGap, c.StartedAt.Sub(lastRun).Round(time.Millisecond))
		}
		if !lastRun.IsZero() && c.StartedAt.Sub(lastRun) > 3*sweepInterval {
			runGaps = append(runGaps, fmt.Sprintf("%s from +%s (%s)", c.StartedAt.Sub(lastRun).Round(100*time.Millisecond),
				lastRun.Sub(r.runStart).Round(100*time.Millisecond), r.during(faults, lastRun, c.StartedAt)))
		}
		if strings.HasPrefix(c.RunID, "scheduled-") && c.FinishedAt.After(lastRun) {
			lastRun = c.FinishedAt
		}
	}
	// Every run is of a tick read, and once. (A tick run again, after its
	// ack was lost, would publish its result under the same message id,
	// which JetStream drops: the metric, read first, counts such runs.)
	tickSeqs := map[string]bool{}
	for _, tk := range ticks {
		tickSeqs[fmt.Sprintf("scheduled-%d", tk.seq)] = true
	}
	var lastSeq uint64
	for id, n := range runs {
		if n > 1 {
			t.Errorf("sweep %s completed %d times", id, n)
		}
		seq, ok := strings.CutPrefix(id, "scheduled-")
		if !ok {
			continue
		}
		if !tickSeqs[id] {
			t.Errorf("sweep %s completed, but no scheduled tick has its sequence", id)
		}
		var n64 uint64
		_, _ = fmt.Sscan(seq, &n64)
		lastSeq = max(lastSeq, n64)
	}
	skipped := 0 // ticks up to the last run's that had no run: piled up behind another
	for _, tk := range ticks {
		if tk.seq <= lastSeq && runs[fmt.Sprintf("scheduled-%d", tk.seq)] == 0 {
			skipped++
		}
	}
	if !lastRun.After(last.elected) {
		t.Errorf("no scheduled sweep completed after %s lost its leader (last at %s)", last.node.Name(), lastRun)
	}
	t.Logf("sweep schedule (@every %s): %d scheduled ticks over %s (%d admin ticks), no slot twice; %d slots missed%s; tick spacing min %s, median %s, max %s",
		sweepInterval, len(ticks), span.Round(time.Millisecond), admin, missed, strings.TrimSuffix(": "+strings.Join(gaps, ", "), ": "),
		spacing[0].Round(time.Millisecond), spacing[len(spacing)/2].Round(time.Millisecond), spacing[len(spacing)-1].Round(time.Millisecond))
	t.Logf("sweeper: %d runs completed, each once (%d performed, by its metric read before them); %d ticks skipped as piled up; longest run %s; longest time without a run: %s",
		len(runs), performed, skipped, longest, longestRunGap)
	if len(runGaps) > 0 {
		t.Logf("sweeper: no run for more than %s: %s", 3*sweepInterval, strings.Join(runGaps, ", "))
	}
}

// during names the fault whose window [stopped, end] overlaps [from, to].
func (r *rig) during(faults []*fault, from, to time.Time) string {
	for _, f := range faults {
		if from.Before(f.end) && to.After(f.stopped) {
			return "during the loss of " + f.node.Name()
		}
	}
	return "outside the faults"
}

// checkReplicas reads back every stream's and durable consumer's replica
// count from the cluster.
func (r *rig) checkReplicas() {
	t := r.t
	t.Helper()
	for _, g := range groups {
		cl, configured, err := r.clusterInfo(g)
		for deadline := time.Now().Add(30 * time.Second); err != nil && time.Now().Before(deadline); {
			time.Sleep(500 * time.Millisecond) // the client may be moving to another node
			cl, configured, err = r.clusterInfo(g)
		}
		if err != nil {
			t.Errorf("%s: %v", g, err)
			continue
		}
		if cl == nil {
			t.Errorf("%s: no cluster information", g)
			continue
		}
		peers := []string{cl.Leader + " (leader)"}
		for _, p := range cl.Replicas {
			state := "current"
			switch {
			case p.Offline:
				state = "offline"
			case !p.Current:
				state = "behind"
			}
			peers = append(peers, fmt.Sprintf("%s (%s)", p.Name, state))
		}
		// A consumer's configured 0 means its stream's count.
		if g.consumer == "" && configured != numNodes || len(peers) != numNodes {
			t.Errorf("%s: %d replicas configured, %d peers %v; want %d and %d", g, configured, len(peers), peers, numNodes, numNodes)
		}
		t.Logf("%s: Config.Replicas %d, peers %d: %s", g, configured, len(peers), strings.Join(peers, ", "))
	}
}

// reportPauses logs, for each fault, the longest pause between consecutive
// confirmations of notification-door uploads, the longest wait of such an
// upload for its confirmation, the longest pause between document.uploaded
// events stored in DOCUMENTS, and the slowest /confirm answer; and the same
// outside the faults, for comparison.
func (r *rig) reportPauses(faults []*fault, confirmedAt map[uuid.UUID]time.Time, uploaded []stored) {
	var byEvent []time.Time
	for _, up := range r.uploads {
		if at, ok := confirmedAt[up.id]; ok && up.door == doorEvent {
			byEvent = append(byEvent, at)
		}
	}
	slices.SortFunc(byEvent, time.Time.Compare)
	var storedAt []time.Time
	for _, m := range uploaded {
		storedAt = append(storedAt, m.time)
	}
	slices.SortFunc(storedAt, time.Time.Compare)

	// longestGap is the longest time between consecutive times that
	// overlaps [from, to].
	longestGap := func(ts []time.Time, from, to time.Time) (time.Duration, time.Time) {
		var longest time.Duration
		var at time.Time
		for i := 1; i < len(ts); i++ {
			if ts[i].After(from) && ts[i-1].Before(to) {
				if d := ts[i].Sub(ts[i-1]); d > longest {
					longest, at = d, ts[i-1]
				}
			}
		}
		return longest, at
	}
	waits := func(from, to time.Time) (eventWait, answer time.Duration) {
		for _, up := range r.uploads {
			if !up.put || up.putDone.Before(from) || up.putDone.After(to) {
				continue
			}
			switch up.door {
			case doorEvent:
				if at, ok := confirmedAt[up.id]; ok {
					eventWait = max(eventWait, at.Sub(up.putDone))
				}
			case doorConfirm:
				answer = max(answer, up.answer)
			}
		}
		return eventWait, answer
	}
	for _, f := range faults {
		gap, gapAt := longestGap(byEvent, f.stopped, f.end)
		docGap, docAt := longestGap(storedAt, f.stopped, f.end)
		wait, answer := waits(f.stopped, f.end)
		r.t.Logf("loss of %s (+%s, leaders back after %s): longest pause in notification-door confirmations %s (from +%s), in document.uploaded stored %s (from +%s); longest wait of a notification-door upload %s; slowest /confirm %s",
			f.name, f.stopped.Sub(r.runStart).Round(time.Millisecond), f.elected.Sub(f.stopped).Round(time.Millisecond),
			gap.Round(time.Millisecond), gapAt.Sub(r.runStart).Round(time.Millisecond),
			docGap.Round(time.Millisecond), docAt.Sub(r.runStart).Round(time.Millisecond),
			wait.Round(time.Millisecond), answer.Round(time.Millisecond))
	}
	var all []time.Duration
	for _, up := range r.uploads {
		if at, ok := confirmedAt[up.id]; ok && up.door == doorEvent {
			all = append(all, at.Sub(up.putDone))
		}
	}
	slices.Sort(all)
	if n := len(all); n > 0 {
		r.t.Logf("notification-door uploads, PUT to confirmation: median %s, 90th %s, 99th %s, max %s",
			all[n/2].Round(time.Millisecond), all[n*9/10].Round(time.Millisecond), all[n*99/100].Round(time.Millisecond), all[n-1].Round(time.Millisecond))
	}
	gap, _ := longestGap(byEvent, r.runStart, faults[0].stopped)
	docGap, _ := longestGap(storedAt, r.runStart, faults[0].stopped)
	wait, answer := waits(r.runStart, faults[0].stopped)
	r.t.Logf("before the faults, for comparison: longest pause in notification-door confirmations %s, in document.uploaded stored %s; longest wait %s; slowest /confirm %s",
		gap.Round(time.Millisecond), docGap.Round(time.Millisecond), wait.Round(time.Millisecond), answer.Round(time.Millisecond))
}
