package main

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	docstatus "github.com/docuvault/docuvault/shared/document"
)

// sentRequest is a request of the page that an upload test follows: a part
// PUT to storage (one with a partNumber query parameter) or a call to
// /api/documents/{id}/parts.
type sentRequest struct {
	method string
	part   int          // a part PUT's part number; 0 for an API call
	loader cdp.LoaderID // the page load that sent it
	status int64
	ok     bool // answered 2xx and finished
}

// uploadRequests records the sentRequests of a tab from Chromium's network
// events; note is its chromedp.Listen func.
type uploadRequests struct {
	mu   sync.Mutex
	reqs map[network.RequestID]*sentRequest
	all  []*sentRequest
}

func newUploadRequests() *uploadRequests {
	return &uploadRequests{reqs: map[network.RequestID]*sentRequest{}}
}

func (r *uploadRequests) note(ev any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Request == nil {
			return
		}
		u, err := url.Parse(ev.Request.URL)
		if err != nil {
			return
		}
		req := &sentRequest{method: ev.Request.Method, loader: ev.LoaderID}
		n, err := strconv.Atoi(u.Query().Get("partNumber"))
		switch {
		case ev.Request.Method == http.MethodPut && err == nil:
			req.part = n
		case strings.HasPrefix(u.Path, "/api/documents/") && strings.HasSuffix(u.Path, "/parts"):
		default:
			return
		}
		r.reqs[ev.RequestID] = req
		r.all = append(r.all, req)
	case *network.EventResponseReceived:
		if req := r.reqs[ev.RequestID]; req != nil && ev.Response != nil {
			req.status = ev.Response.Status
		}
	case *network.EventLoadingFinished:
		if req := r.reqs[ev.RequestID]; req != nil && req.status >= 200 && req.status < 300 {
			req.ok = true
		}
	}
}

// storedParts counts the part PUTs storage answered 2xx so far.
func (r *uploadRequests) storedParts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, req := range r.all {
		if req.part > 0 && req.ok {
			n++
		}
	}
	return n
}

// byLoad returns the requests grouped by the page load that sent them, in
// the order of the loads.
func (r *uploadRequests) byLoad() [][]sentRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var loads []cdp.LoaderID
	groups := map[cdp.LoaderID][]sentRequest{}
	for _, req := range r.all {
		if _, ok := groups[req.loader]; !ok {
			loads = append(loads, req.loader)
		}
		groups[req.loader] = append(groups[req.loader], *req)
	}
	var out [][]sentRequest
	for _, l := range loads {
		out = append(out, groups[l])
	}
	return out
}

// count returns how many of reqs are method calls to /parts (part 0) or
// PUTs of part.
func count(reqs []sentRequest, method string, part int) (n int) {
	for _, req := range reqs {
		if req.method == method && req.part == part {
			n++
		}
	}
	return n
}

// throttleUploads limits the tab's uploads to bytesPerSecond, all requests
// together, so that parts take long enough to act between them.
func throttleUploads(bytesPerSecond float64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{UploadThroughput: bytesPerSecond, DownloadThroughput: -1}},
		})
		return err
	})
}

// mustRandomFile writes size random bytes to a file named name.
func mustRandomFile(t *testing.T, name string, size int) string {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// signInAsDev opens the page and signs in as the dev user.
func signInAsDev(tab browserTab, dev *devRun) {
	tab.t.Helper()
	tab.do("sign in as the dev user",
		chromedp.Navigate(dev.PageURL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#dev-signin")),
		chromedp.Click(chromedp.CSS("#dev-signin")),
		chromedp.WaitVisible(chromedp.CSS("#app")),
	)
}

// uploadedRow is a predicate: a row of the table shows a charged document.
const uploadedRow = `document.querySelector('#documents tr[data-document-id] .status:is([data-status="uploaded"], [data-status="classified"], [data-status="classification_failed"])') !== null`

// mustCharged checks that document id is charged with size bytes, its
// parts sent under their signed SHA-256s (the page asks for part_checksum),
// and that the dev user's used_bytes grew by size from before.
func mustCharged(t *testing.T, dev *devRun, id string, size, before int64) {
	t.Helper()
	var doc document
	mustStatus(t, http.StatusOK, "GET", dev.PageURL+"/api/documents/"+id, dev.Token, nil, &doc)
	if !docstatus.Status(doc.Status).Charged() || doc.SizeBytes != size {
		t.Errorf("document %s is %s with %d bytes, want uploaded with %d", id, doc.Status, doc.SizeBytes, size)
	}
	if doc.Checksum == nil || doc.Checksum.Algorithm != "sha256_composite" || !regexp.MustCompile(`^[A-Za-z0-9+/]{43}=-[0-9]+$`).MatchString(doc.Checksum.Value) {
		t.Errorf("document %s has checksum %+v, want the sha256_composite of its parts", id, doc.Checksum)
	}
	if used := mustUsedBytes(t, dev); used != before+size {
		t.Errorf("used_bytes %d after the upload, want %d + %d", used, before, size)
	}
}

// startMultipartPage starts `docuvault dev` taking files over 6 MiB in
// parts of partSize, a file of size bytes named name, and a Chromium tab
// whose upload requests are noted (shot: its screenshot on failure); it
// returns them with the dev user's used_bytes before the upload.
func startMultipartPage(t *testing.T, partSize, size int, name, shot string) (*devRun, string, int64, browserTab, *uploadRequests) {
	t.Helper()
	t.Setenv("DATABASE_URL", "")
	t.Setenv("JWT_SECRET", "")
	t.Setenv("MULTIPART_THRESHOLD", strconv.Itoa(6<<20))
	t.Setenv("MULTIPART_PART_SIZE", strconv.Itoa(partSize))
	t.Setenv("QUOTA_DEFAULT_BYTES", strconv.Itoa(200<<20))
	ports := mustFreePorts(t)
	dev := mustStartDev(t, ports.args(t, mustDataDir(t)))
	file := mustRandomFile(t, name, size)
	before := mustUsedBytes(t, dev)
	ctx := newBrowser(t)
	sent := newUploadRequests()
	if err := chromedp.Listen(ctx, sent.note); err != nil {
		t.Fatal(err)
	}
	return dev, file, before, browserTab{t: t, ctx: ctx, shot: shot}, sent
}

// TestBrowserMultipartResume uploads a file the server takes in parts
// through the page in headless Chromium, four parts at a time, with the
// upload throttled so that the page can be reloaded while parts are in
// flight: the reloaded page names the unfinished upload, the same file
// chosen again sends only the parts storage lacks (their URLs in one batch)
// and completes, the document is charged its exact size, and no part is
// sent twice but those in flight at the reload.
func TestBrowserMultipartResume(t *testing.T) {
	const (
		partSize = 5 << 20
		parts    = 12 // more than the 10 part URLs the first answer holds
		size     = (parts-1)*partSize + 3<<20
	)
	dev, file, before, tab, sent := startMultipartPage(t, partSize, size, "scan.bin", "multipart-failed.png")
	// A batch of four parts takes about 1.3 s: time to reload between two.
	tab.do("throttle uploads", throttleUploads(16<<20))
	signInAsDev(tab, dev)
	tab.do("choose the file", chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{file}))
	for deadline := time.Now().Add(time.Minute); sent.storedParts() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			shot(t, tab.ctx, tab.shot)
			t.Fatalf("%d parts stored after a minute, want 2", sent.storedParts())
		}
	}
	tab.do("reload the page", chromedp.Reload())

	tab.wait("the page to name the unfinished upload", `!document.querySelector('#app').hidden &&
		document.querySelector('#status').textContent.includes('Unfinished upload of scan.bin')`, 10*time.Second)
	tab.do("choose the file again", chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{file}))
	tab.wait("the upload to finish", uploadedRow, time.Minute)
	var id, saved string
	tab.eval(`document.querySelector('#documents tr[data-document-id]').dataset.documentId`, &id)
	tab.eval(`String(sessionStorage.getItem('docuvault.multipart'))`, &saved)
	shot(t, tab.ctx, "multipart.png")
	if saved != "null" {
		t.Errorf("sessionStorage keeps %s after the upload, want it removed", saved)
	}
	mustCharged(t, dev, id, size, before)

	// Each part once, but those in flight at the reload: sent before it,
	// not stored, and sent once more after it.
	loads := sent.byLoad()
	if len(loads) != 2 {
		t.Fatalf("upload requests from %d page loads, want 2 (before and after the reload)", len(loads))
	}
	early, late := loads[0], loads[1]
	partBytes := func(n int) int64 {
		if n < parts {
			return partSize
		}
		return size - (parts-1)*partSize
	}
	stored := func(reqs []sentRequest, n int) bool {
		for _, req := range reqs {
			if req.part == n && req.ok {
				return true
			}
		}
		return false
	}
	var storedBefore, resent []int
	var resentBytes int64
	for n := 1; n <= parts; n++ {
		before, after := count(early, http.MethodPut, n), count(late, http.MethodPut, n)
		switch {
		case before > 1 || after > 1:
			t.Errorf("part %d sent %d times before the reload and %d after", n, before, after)
		case stored(early, n) && after > 0:
			t.Errorf("part %d, stored before the reload, sent again after it", n)
		case before == 1 && after == 1:
			resent = append(resent, n)
			resentBytes += partBytes(n)
		case before+after == 0:
			t.Errorf("part %d never sent", n)
		}
		if stored(early, n) {
			storedBefore = append(storedBefore, n)
		}
	}
	if len(storedBefore) == parts {
		t.Fatalf("all %d parts were stored before the reload: nothing was resumed", parts)
	}
	if len(resent) > 4 {
		t.Errorf("parts %v sent again: more than the 4 in flight at a time", resent)
	}
	// After the reload: one listing (the ETags of the new parts come from
	// storage's answers) and the missing parts' URLs in one batch.
	if g, p := count(late, http.MethodGet, 0), count(late, http.MethodPost, 0); g != 1 || p != 1 {
		t.Errorf("after the reload the page listed the parts %d times and asked for part URLs %d times, want 1 and 1", g, p)
	}
	t.Logf("reload re-sent %d bytes in %d parts %v; parts %v (%d of %d) were stored before it",
		resentBytes, len(resent), resent, storedBefore, len(storedBefore), parts)
}

// TestBrowserMultipartExpiredURL uploads a file in parts with part URLs
// valid for 2 s and uploads slow enough that the URLs of the first answer
// expire before their parts start: storage refuses each such part once
// (403), the page has it signed again and sends it, and the upload
// completes with its exact size.
func TestBrowserMultipartExpiredURL(t *testing.T) {
	const (
		partSize = 5 << 20
		parts    = 8
		size     = (parts-1)*partSize + 3<<20
	)
	t.Setenv("UPLOAD_URL_TTL", "2s")
	dev, file, before, tab, sent := startMultipartPage(t, partSize, size, "slow.bin", "multipart-expired-failed.png")
	// The first four parts take about 3.3 s: the URLs of parts 5 to 8,
	// signed with them, have expired when those parts start.
	tab.do("throttle uploads", throttleUploads(6<<20))
	signInAsDev(tab, dev)
	tab.do("choose the file", chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{file}))
	tab.wait("the upload to finish", uploadedRow, 2*time.Minute)
	var id string
	tab.eval(`document.querySelector('#documents tr[data-document-id]').dataset.documentId`, &id)
	mustCharged(t, dev, id, size, before)

	reqs := sent.byLoad()[0]
	var refused []int
	for n := 1; n <= parts; n++ {
		var statuses []int64
		for _, req := range reqs {
			if req.part == n {
				statuses = append(statuses, req.status)
			}
		}
		switch {
		case len(statuses) == 2 && statuses[0] == http.StatusForbidden && statuses[1] == http.StatusOK:
			refused = append(refused, n)
		case len(statuses) != 1 || statuses[0] != http.StatusOK:
			t.Errorf("part %d answered %v, want 200, or 403 and then 200", n, statuses)
		}
	}
	if len(refused) == 0 {
		t.Fatalf("no part URL expired: the test did not test the page's signing again")
	}
	// The plan holds no part URLs (the page asks for checksummed parts:
	// each URL signs its part's SHA-256): one request for the first batch,
	// then one per refused part.
	if p := count(reqs, http.MethodPost, 0); p != 1+len(refused) {
		t.Errorf("the page asked for part URLs %d times, want once for the first parts and once per refused part (%v)", p, refused)
	}
	t.Logf("parts %v were refused with an expired URL and sent again", refused)
}
