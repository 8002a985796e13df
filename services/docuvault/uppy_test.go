package main

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/docuvault/docuvault/internal/testenv"
	docstatus "github.com/docuvault/docuvault/shared/document"
)

// uppyExample returns examples/uppy, built (npm ci && npm run build).
func uppyExample(t *testing.T) string {
	t.Helper()
	testenv.SkipShort(t, "a real npm build of examples/uppy (make examples)")
	dir, err := filepath.Abs(filepath.Join("..", "..", "examples", "uppy"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dist", "bundle.js")); err != nil {
		t.Fatalf("examples/uppy is not built: run `npm ci && npm run build` in %s (make examples, which make test runs, does): %v", dir, err)
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
// of its own: with that origin in CORS_ORIGINS (dev's --cors-origin) four
// files of different sizes upload, each uploaded with its exact size and
// the quota grown by their sum with nothing left reserved. Three go in one
// PUT each and are confirmed; the fourth, over MULTIPART_THRESHOLD, goes in
// parts of the server's MULTIPART_PART_SIZE (which the page is not told),
// is paused after its first part and resumed from the parts the server
// lists, and is completed. The same page on an origin not in the list is
// refused by the API and by MinIO.
func TestUppyFromAnotherOrigin(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("JWT_SECRET", "")
	// Parts of 5 MiB, not the default 16 MiB: a file of 16 MiB and a bit
	// goes in four parts only if the page cuts it as the server planned.
	t.Setenv("MULTIPART_THRESHOLD", strconv.Itoa(6<<20))
	t.Setenv("MULTIPART_PART_SIZE", strconv.Itoa(5<<20))
	example := uppyExample(t)
	allowed, refused := servePage(t, example), servePage(t, example)
	ports := mustFreePorts(t)
	dev := mustStartDev(t, append(ports.args(t, mustDataDir(t)), "--cors-origin", allowed))

	files := t.TempDir()
	const huge = 16<<20 + 4321 // 5 + 5 + 5 MiB + 1 MiB and 4321 bytes
	sizes := map[string]int64{"small.txt": 1_000, "medium.pdf": 70_000, "large.bin": 900_000, "huge.bin": huge}
	var paths []string
	for name, size := range sizes {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(strings.Repeat("U", int(size))), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	quota := func() (used, reserved int64) {
		t.Helper()
		var q struct {
			UsedBytes     int64 `json:"used_bytes"`
			ReservedBytes int64 `json:"reserved_bytes"`
		}
		mustStatus(t, http.StatusOK, "GET", dev.PageURL+"/api/auth/me/quota", dev.Token, nil, &q)
		return q.UsedBytes, q.ReservedBytes
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
	before, _ := quota()

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
	run("add four files", chromedp.SetUploadFiles(chromedp.CSS("input.uppy-Dashboard-input"), paths))
	wait("four files in Uppy", `window.docuvaultUppy.getFiles().length === 4`)
	// Pause the multipart upload twice, resuming each time half a second
	// later: once its first part is stored (Uppy then lists the stored parts,
	// GET /api/documents/{id}/parts, counted here, and sends only the
	// others), and as its complete leaves (the server completes it, Uppy
	// does not hear it: on resume the listing answers 409 and the page
	// completes again, which answers the stored document).
	run("pause after the first part and at complete", chromedp.Evaluate[chromedp.Void](`(() => {
		const uppy = window.docuvaultUppy, fetch = window.fetch;
		const pause = (file) => {
			uppy.pauseResume(file.id);
			setTimeout(() => uppy.pauseResume(file.id), 500);
			return uppy.getFile(file.id).isPaused;
		};
		window.partsListed = 0;
		window.fetch = (url, init) => {
			if (/\/api\/documents\/[^/]+\/parts$/.test(url) && (init?.method ?? "GET") === "GET") window.partsListed++;
			const answer = fetch(url, init);
			if (/\/complete$/.test(url) && window.pausedAtComplete === undefined) {
				window.pausedAtComplete = false;
				// Once the request is out (Uppy misses a pause inside the call).
				setTimeout(() => (window.pausedAtComplete = pause(uppy.getFiles().find((f) => f.name === "huge.bin"))));
			}
			return answer;
		};
		let parts = 0;
		uppy.on("s3-multipart:part-uploaded", (file) => {
			// Uppy says so of a single PUT too.
			if (file.name === "huge.bin" && ++parts === 1) window.pausedAfterOnePart = pause(file);
		});
	})()`))
	run("upload", chromedp.Evaluate[chromedp.Void](`window.docuvaultUppy.upload(); undefined`))
	wait("the upload to complete", `document.body.dataset.complete === "4/0"`)
	wait("the four confirms", `document.body.dataset.confirmed === "4"`)
	shot(t, ctx, "uppy.png")
	lines, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#status').innerText`))
	if err != nil {
		t.Fatal(err)
	}
	// The page says how each file went: huge.bin in the server's 4 parts.
	if want := regexp.MustCompile(`huge\.bin: \w+, ` + strconv.Itoa(huge) + ` bytes in 4 parts`); !want.MatchString(lines) {
		t.Errorf("the page does not say huge.bin went in 4 parts of 5 MiB; it says:\n%s", lines)
	}
	for _, name := range []string{"small.txt", "medium.pdf", "large.bin"} {
		if !regexp.MustCompile(regexp.QuoteMeta(name) + `: \w+, \d+ bytes in one PUT`).MatchString(lines) {
			t.Errorf("the page does not say %s went in one PUT; it says:\n%s", name, lines)
		}
	}
	paused, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.pausedAfterOnePart === true && window.pausedAtComplete === true`))
	if err != nil {
		t.Fatal(err)
	}
	listedParts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.partsListed`))
	if err != nil {
		t.Fatal(err)
	}
	if !paused || listedParts < 2 {
		t.Errorf("paused after the first part and at complete: %v; GET parts asked %d times, want at least twice (the resumes)", paused, listedParts)
	}
	var total int64
	for name, size := range sizes {
		total += size
		found := false
		for _, d := range listed() {
			if d.Filename == name {
				if found {
					t.Errorf("%s was uploaded twice", name)
				}
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
	if used, reserved := quota(); used != before+total || reserved != 0 {
		t.Errorf("used_bytes %d, reserved_bytes %d after the upload, want %d + %d and 0", used, reserved, before, total)
	}
	// The page hashed each file it sent in one PUT, and MinIO took the
	// bytes under that checksum; huge.bin went in parts, each part hashed.
	var stored struct {
		Items []document `json:"items"`
	}
	mustStatus(t, http.StatusOK, "GET", dev.PageURL+"/api/documents?limit=100", dev.Token, nil, &stored)
	for _, d := range stored.Items {
		size, ok := sizes[d.Filename]
		switch {
		case !ok:
		case d.Filename == "huge.bin":
			// Sent in parts of 5 MiB, each under its signed SHA-256: the
			// composite of the parts' digests, as S3 computes it.
			h := sha256.New()
			parts := 0
			for left := size; left > 0; left -= 5 << 20 {
				sum := sha256.Sum256([]byte(strings.Repeat("U", int(min(left, 5<<20)))))
				h.Write(sum[:])
				parts++
			}
			want := fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(h.Sum(nil)), parts)
			if d.Checksum == nil || d.Checksum.Algorithm != "sha256_composite" || d.Checksum.Value != want {
				t.Errorf("huge.bin, sent in parts, has checksum %+v, want sha256_composite %s", d.Checksum, want)
			}
		default:
			sum := sha256.Sum256([]byte(strings.Repeat("U", int(size))))
			if want := base64.StdEncoding.EncodeToString(sum[:]); d.Checksum == nil || d.Checksum.Value != want {
				t.Errorf("%s has checksum %+v, want sha256 %s", d.Filename, d.Checksum, want)
			}
		}
	}

	// The same bytes again under another name (added as a script would:
	// the Dashboard shows its finished upload, not its file input): Uppy
	// sends nothing.
	docs := len(listed())
	run("add the small file's bytes again and upload them", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const uppy = window.docuvaultUppy;
		uppy.addFile({ name: "small again.txt", type: "text/plain", data: new Blob(["U".repeat(%d)], { type: "text/plain" }) });
		uppy.upload();
	})()`, sizes["small.txt"])))
	wait("the page to say it is uploaded already", `document.querySelector('#status').innerText.includes('small again.txt: already uploaded as small.txt')`)
	if n := len(listed()); n != docs {
		t.Errorf("%d documents after the same bytes again, want %d", n, docs)
	}

	// The same page on an origin not in CORS_ORIGINS.
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
