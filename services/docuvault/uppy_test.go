package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	docstatus "github.com/docuvault/docuvault/shared/document"
)

// uppyExample returns examples/uppy, built (npm ci && npm run build).
func uppyExample(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "examples", "uppy"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dist", "bundle.js")); err != nil {
		t.Fatalf("examples/uppy is not built: run `npm ci && npm run build` in %s (.ci/run does): %v", dir, err)
	}
	return dir
}

// servePage serves dir on a port of its own: a frontend on its own origin.
func servePage(t *testing.T, dir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestUppyFromAnotherOrigin drives examples/uppy — Uppy's own Dashboard and
// S3 plugin, bundled from npm — in headless Chromium, served on an origin
// of its own: with that origin in CORS_ORIGINS (dev's --cors-origin) three
// files of different sizes upload and confirm, each uploaded with its exact
// size and the quota grown by their sum; the same page on an origin not in
// the list is refused by the API and by MinIO.
func TestUppyFromAnotherOrigin(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("JWT_SECRET", "")
	example := uppyExample(t)
	allowed, refused := servePage(t, example), servePage(t, example)
	ports := mustFreePorts(t)
	dev := mustStartDev(t, append(ports.args(t, mustDataDir(t)), "--cors-origin", allowed))

	files := t.TempDir()
	sizes := map[string]int64{"small.txt": 1_000, "medium.pdf": 70_000, "large.bin": 900_000}
	var paths []string
	for name, size := range sizes {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(strings.Repeat("U", int(size))), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	quota := func() (used int64) {
		t.Helper()
		var q struct {
			UsedBytes int64 `json:"used_bytes"`
		}
		mustStatus(t, http.StatusOK, "GET", dev.PageURL+"/api/auth/me/quota", dev.Token, nil, &q)
		return q.UsedBytes
	}
	listed := func() []struct {
		Filename  string `json:"filename"`
		SizeBytes int64  `json:"size_bytes"`
		Status    string `json:"status"`
	} {
		t.Helper()
		var page struct {
			Items []struct {
				Filename  string `json:"filename"`
				SizeBytes int64  `json:"size_bytes"`
				Status    string `json:"status"`
			} `json:"items"`
		}
		mustStatus(t, http.StatusOK, "GET", dev.PageURL+"/api/documents?limit=100", dev.Token, nil, &page)
		return page.Items
	}
	before := quota()

	ctx := newBrowser(t)
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			shot(t, ctx, "uppy-failed.png")
			t.Fatalf("%s: %v", what, err)
		}
	}
	wait := func(what, predicate string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			shot(t, ctx, "uppy-failed.png")
			lines, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#status').innerText`))
			t.Fatalf("waiting for %s: %v; the page says:\n%s", what, err, lines)
		}
	}
	open := func(origin string) {
		t.Helper()
		run("open the example on "+origin,
			chromedp.Navigate(origin+"/index.html?api="+dev.PageURL+"#token="+dev.Token),
			chromedp.WaitReady(chromedp.CSS("input.uppy-Dashboard-input")),
		)
	}

	open(allowed)
	run("add three files", chromedp.SetUploadFiles(chromedp.CSS("input.uppy-Dashboard-input"), paths))
	wait("three files in Uppy", `window.docuvaultUppy.getFiles().length === 3`)
	run("upload", chromedp.Evaluate[chromedp.Void](`window.docuvaultUppy.upload(); undefined`))
	wait("the upload to complete", `document.body.dataset.complete === "3/0"`)
	wait("the three confirms", `document.body.dataset.confirmed === "3"`)
	shot(t, ctx, "uppy.png")
	var total int64
	for name, size := range sizes {
		total += size
		found := false
		for _, d := range listed() {
			if d.Filename == name {
				found = true
				// Charged: uploaded, or already classified (medium.pdf holds no PDF: classification_failed).
				if d.SizeBytes != size || !docstatus.Status(d.Status).Charged() {
					t.Errorf("%s: %s, %d bytes, want uploaded with %d bytes", name, d.Status, d.SizeBytes, size)
				}
			}
		}
		if !found {
			t.Errorf("%s was not uploaded", name)
		}
	}
	if used := quota(); used != before+total {
		t.Errorf("used_bytes %d after the upload, want %d + %d", used, before, total)
	}

	// The same page on an origin not in CORS_ORIGINS.
	docs := len(listed())
	open(refused)
	run("add a file", chromedp.SetUploadFiles(chromedp.CSS("input.uppy-Dashboard-input"), paths[:1]))
	wait("one file in Uppy", `window.docuvaultUppy.getFiles().length === 1`)
	run("upload", chromedp.Evaluate[chromedp.Void](`window.docuvaultUppy.upload(); undefined`))
	wait("the upload to fail", `document.body.dataset.complete === "0/1"`)
	if n := len(listed()); n != docs {
		t.Errorf("%d documents after the refused origin's upload, want %d: the API answered it", n, docs)
	}
	// MinIO refuses that origin too: a presigned PUT from its page is
	// blocked at the preflight, and nothing is stored.
	var tk struct {
		UploadURL  string            `json:"upload_url"`
		DocumentID string            `json:"document_id"`
		Headers    map[string]string `json:"headers"`
	}
	mustStatus(t, http.StatusCreated, "POST", dev.PageURL+"/api/documents/upload-url", dev.Token,
		map[string]any{"filename": "direct.txt", "content_type": "text/plain", "size_bytes": 5}, &tk)
	outcome, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`fetch(%q, {method: "PUT", headers: {"Content-Type": "text/plain", "If-None-Match": "*"}, body: "hello"})
		.then(r => "answered " + r.status, e => "blocked: " + e.message)`, tk.UploadURL), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(outcome, "blocked") {
		t.Errorf("a PUT from %s (not in CORS_ORIGINS) to MinIO: %s", refused, outcome)
	}
	if code, body := call(t, "POST", dev.PageURL+"/api/documents/"+tk.DocumentID+"/confirm", dev.Token, nil); code != http.StatusUnprocessableEntity {
		t.Errorf("confirm after the blocked PUT: %d %s, want 422 (nothing stored)", code, body)
	}
}
