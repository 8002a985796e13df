package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/docuvault/docuvault/internal/testenv"
)

// chromium returns Debian's Chromium, which `make test` installs.
func chromium(t *testing.T) string {
	t.Helper()
	testenv.SkipShort(t, "a real Chromium")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium not found: apt-get install chromium (make test installs it, .ci/prepare says how)")
	return ""
}

// newBrowser starts headless Chromium for the test, with the flags this
// machine's closed network needs, and returns its context; it is stopped
// when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// browserTab drives the page of a browser context in a test: a step that
// fails saves a screenshot named shot and fails the test.
type browserTab struct {
	t    *testing.T
	ctx  context.Context
	shot string
}

// do runs the steps.
func (b browserTab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		shot(b.t, b.ctx, b.shot)
		b.t.Fatalf("%s: %v", what, err)
	}
}

// wait polls a JavaScript predicate until it holds.
func (b browserTab) wait(what, predicate string, timeout time.Duration) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(timeout))); err != nil {
		shot(b.t, b.ctx, b.shot)
		b.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression into out (through JSON).
func (b browserTab) eval(expr string, out any) {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	raw, _ := json.Marshal(v)
	if err := json.Unmarshal(raw, out); err != nil {
		b.t.Fatal(err)
	}
}

// artifactDir is where the browser test leaves its screenshot:
// $TEST_ARTIFACTS, or .artifacts at the repository root.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", ".artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowserUploads drives the page in headless Chromium against the dev
// stack: sign in as the dev user, upload two files through the real file
// input, see both reach "uploaded" (or, the classifier being quick,
// "classified") on screen and in the API, the quota bar
// move, the 413 message for a file over quota, and a delete.
func TestBrowserUploads(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("JWT_SECRET", "")
	t.Setenv("QUOTA_DEFAULT_BYTES", "1000000") // 1 MB, so a 2 MB file is over quota
	ports := mustFreePorts(t)
	dev := mustStartDev(t, ports.args(t, mustDataDir(t)))

	files := t.TempDir()
	write := func(name string, size int) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(strings.Repeat("DocuVault browser test. ", size/24+1)[:size]), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first, second, big := write("first.txt", 20000), write("second.txt", 30000), write("big.txt", 2000000)

	ctx := newBrowser(t)
	tab := browserTab{t: t, ctx: ctx, shot: "failed.png"}
	do, wait, eval := tab.do, tab.wait, tab.eval
	quotaUsed := func() int64 {
		t.Helper()
		var used string
		eval(`document.querySelector('#quota-bar').dataset.used`, &used)
		n, _ := strconv.ParseInt(used, 10, 64)
		return n
	}

	do("sign in as the dev user",
		chromedp.Navigate(dev.PageURL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#dev-signin")),
		chromedp.Click(chromedp.CSS("#dev-signin")),
		chromedp.WaitVisible(chromedp.CSS("#app")),
	)
	wait("the quota bar", `document.querySelector('#quota-bar').dataset.limit === '1000000'`, 10*time.Second)
	before := quotaUsed()

	do("upload two files", chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{first, second}))
	wait("both rows to be uploaded", `document.querySelectorAll('#documents tr[data-document-id] .status:is([data-status="uploaded"], [data-status="classified"])').length === 2`, 30*time.Second)
	var ids []string
	eval(`Array.from(document.querySelectorAll('#documents tr[data-document-id]')).map(r => r.dataset.documentId)`, &ids)
	if len(ids) != 2 {
		t.Fatalf("documents on the page: %v", ids)
	}
	for _, id := range ids {
		var doc document
		mustStatus(t, http.StatusOK, "GET", dev.PageURL+"/api/documents/"+id, dev.Token, nil, &doc)
		if doc.Status != "uploaded" && doc.Status != "classified" {
			t.Fatalf("document %s (%s) is %s in the API", id, doc.Filename, doc.Status)
		}
		// The page hashed each file with WebCrypto and MinIO took the
		// bytes under that checksum.
		data, err := os.ReadFile(filepath.Join(files, doc.Filename))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if want := base64.StdEncoding.EncodeToString(sum[:]); doc.Checksum == nil || doc.Checksum.Algorithm != "sha256" || doc.Checksum.Value != want {
			t.Fatalf("document %s (%s) has checksum %+v, want sha256 %s", id, doc.Filename, doc.Checksum, want)
		}
	}
	wait("the quota bar to move", fmt.Sprintf(`Number(document.querySelector('#quota-bar').dataset.used) === %d`, before+50000), 10*time.Second)

	// The same bytes again, under another name: nothing is sent.
	again := filepath.Join(files, "first again.txt")
	if data, err := os.ReadFile(first); err != nil || os.WriteFile(again, data, 0o644) != nil {
		t.Fatalf("copy %s: %v", first, err)
	}
	do("upload the first file again", chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{again}))
	wait("the already-uploaded note", `Array.from(document.querySelectorAll('#documents .note')).some(e => !e.hidden && e.textContent.includes('Already uploaded as first.txt'))`, 15*time.Second)
	var count struct {
		Items []document `json:"items"`
	}
	mustStatus(t, http.StatusOK, "GET", dev.PageURL+"/api/documents", dev.Token, nil, &count)
	if len(count.Items) != 2 {
		t.Fatalf("%d documents after the same file again, want 2: %+v", len(count.Items), count.Items)
	}
	if got := quotaUsed(); got != before+50000 {
		t.Fatalf("quota used %d after the same file again, want %d", got, before+50000)
	}

	do("upload a file over quota", chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{big}))
	wait("the 413 message", `Array.from(document.querySelectorAll('#documents .error')).some(e => e.textContent.includes('quota exceeded'))`, 15*time.Second)
	var message string
	eval(`Array.from(document.querySelectorAll('#documents .error')).map(e => e.textContent).find(s => s.includes('quota exceeded'))`, &message)
	if !strings.Contains(message, "of 1 MB used, this file needs 2 MB") {
		t.Fatalf("413 message on the page: %q", message)
	}
	shot(t, ctx, "page.png")

	do("delete the first document", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#documents tr[data-document-id="%s"] button.delete`, ids[0]))))
	wait("the row to go", fmt.Sprintf(`document.querySelector('#documents tr[data-document-id="%s"]') === null`, ids[0]), 10*time.Second)
	if code, _ := call(t, "GET", dev.PageURL+"/api/documents/"+ids[0], dev.Token, nil); code != http.StatusNotFound {
		t.Fatalf("deleted document answers %d", code)
	}
	wait("the quota bar to go down", fmt.Sprintf(`Number(document.querySelector('#quota-bar').dataset.used) < %d`, before+50000), 10*time.Second)
}

// shot saves a screenshot of the page in the artifact directory.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	t.Logf("screenshot saved to %s", path)
}
