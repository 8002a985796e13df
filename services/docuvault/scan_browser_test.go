package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/internal/devstack"
	"github.com/docuvault/docuvault/internal/testenv"
)

// shownRow is what the page shows of a document's row: its status badge,
// its scan line and signature line (empty when hidden) and whether its
// Download button is shown.
type shownRow struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Scan      string `json:"scan"`
	Signature string `json:"signature"`
	Download  bool   `json:"download"`
}

// rowOf is a JavaScript expression: the shownRow of the file named name,
// or null while the page has no row with a document for it.
func rowOf(name string) string {
	return fmt.Sprintf(`(() => {
		const tr = Array.from(document.querySelectorAll('#documents tr[data-document-id]'))
			.find((tr) => tr.querySelector('.filename').textContent === %s);
		if (!tr) return null;
		const shown = (sel) => { const e = tr.querySelector(sel); return e && !e.hidden ? e.textContent : ""; };
		return {
			id: tr.dataset.documentId,
			status: tr.querySelector('.status').dataset.status,
			scan: shown('.scan'),
			signature: shown('.signature'),
			download: !tr.querySelector('button.download').hidden,
		};
	})()`, strconv.Quote(name))
}

// rowShows is a predicate: the row of the file named name exists and
// cond, an expression of r (its shownRow), holds.
func rowShows(name, cond string) string {
	return fmt.Sprintf(`((r) => r !== null && (%s))(%s)`, cond, rowOf(name))
}

// scannedDocument is what GET /api/documents/{id} says of a scan.
type scannedDocument struct {
	Status       string `json:"status"`
	RejectReason string `json:"reject_reason"`
	ScanStatus   string `json:"scan_status"`
	ScanDetail   string `json:"scan_detail"`
	DownloadURL  string `json:"download_url"`
}

// TestBrowserScanStates drives the page in headless Chromium against a
// stack that scans every upload with a real clamd. With clamd stopped, a
// clean file and EICAR uploaded through the page both show "Scanning…" and
// no Download button, as the API gives neither a download URL. Once clamd
// is back, live events turn EICAR's row "Infected — removed", naming the
// signature clamd found, with no download, its object gone and its charge
// off the quota bar, and give the clean file's row its Download button, as
// the API now gives its URL.
func TestBrowserScanStates(t *testing.T) {
	clamd := testenv.StartClamAV(t, 1<<20)
	s := apitest.Start(t, apitest.Options{Clamd: clamd, Scanners: 1})
	_, tok := s.NewUser(t)
	// Stopped before the uploads: every scan waits for it (fail-closed), so
	// the page shows "Scanning…" for as long as the test looks.
	clamd.Stop()

	files := t.TempDir()
	const (
		cleanName, eicarName = "notes.txt", "eicar.com"
		cleanText            = "Minutes of the DocuVault scan review: nothing to see.\n"
	)
	for name, data := range map[string]string{cleanName: cleanText, eicarName: devstack.EICAR} {
		if err := os.WriteFile(filepath.Join(files, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ctx := newBrowser(t)
	tab := browserTab{t: t, ctx: ctx, shot: "scan-failed.png"}
	signInWithToken(tab, s.URL, tok)
	tab.do("upload a clean file and EICAR", chromedp.SetUploadFiles(chromedp.CSS("#file-input"),
		[]string{filepath.Join(files, cleanName), filepath.Join(files, eicarName)}))

	ids := map[string]uuid.UUID{}
	for _, name := range []string{cleanName, eicarName} {
		tab.wait(name+" scanning", rowShows(name, `r.status === "uploaded" && r.scan === "Scanning…" && !r.download`), 30*time.Second)
		var row shownRow
		tab.eval(rowOf(name), &row)
		id, err := uuid.Parse(row.ID)
		if err != nil {
			t.Fatalf("%s: row for document %q: %v", name, row.ID, err)
		}
		ids[name] = id
		if d := mustScanned(t, s, tok, id); d.Status != "uploaded" || d.ScanStatus != "pending" || d.DownloadURL != "" {
			t.Fatalf("%s while clamd is away: %+v, want uploaded, scan pending, no download URL", name, d)
		}
	}

	clamd.Restart(t)
	// The scanner retries with back-off (up to 30 s apart by now).
	tab.wait("EICAR infected", rowShows(eicarName, `r.status === "rejected" && r.scan === "Infected — removed" && r.signature !== "" && !r.download`), 2*time.Minute)
	tab.wait("the clean file downloadable", rowShows(cleanName, `r.status === "uploaded" && r.scan === "Scanned" && r.download`), 2*time.Minute)
	// EICAR's charge is released: the quota bar holds the clean file alone.
	tab.wait("the quota bar to drop EICAR", fmt.Sprintf(`document.querySelector('#quota-bar').dataset.used === '%d'`, len(cleanText)), 10*time.Second)
	shot(t, ctx, "scan.png")

	var infected shownRow
	tab.eval(rowOf(eicarName), &infected)
	d := mustScanned(t, s, tok, ids[eicarName])
	if d.Status != "rejected" || d.RejectReason != "infected" || d.ScanStatus != "infected" || d.DownloadURL != "" {
		t.Errorf("EICAR: %+v, want rejected as infected, no download URL", d)
	}
	if infected.Signature != d.ScanDetail {
		t.Errorf("EICAR's row names the signature %q, the API %q", infected.Signature, d.ScanDetail)
	}
	if s.ObjectExists(t, ids[eicarName]) {
		t.Errorf("EICAR's object is still in the bucket")
	}
	if d := mustScanned(t, s, tok, ids[cleanName]); d.ScanStatus != "clean" || d.DownloadURL == "" {
		t.Errorf("clean file: %+v, want clean with a download URL", d)
	}
}

// TestBrowserUnscannedDownload: where nothing is scanned (no clamd), a
// file uploaded through the page gets its Download button and no scan line,
// as the API gives its download URL as soon as it is stored.
func TestBrowserUnscannedDownload(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	file := filepath.Join(t.TempDir(), "plain.txt")
	if err := os.WriteFile(file, []byte("Stored while scanning is off.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tab := browserTab{t: t, ctx: newBrowser(t), shot: "unscanned-failed.png"}
	signInWithToken(tab, s.URL, tok)
	tab.do("upload a file", chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{file}))
	tab.wait("the file downloadable", rowShows("plain.txt", `r.status === "uploaded" && r.scan === "" && r.download`), 30*time.Second)
	var row shownRow
	tab.eval(rowOf("plain.txt"), &row)
	if d := mustScanned(t, s, tok, uuid.MustParse(row.ID)); d.ScanStatus != "" || d.DownloadURL == "" {
		t.Errorf("document stored while scanning is off: %+v, want no scan state and a download URL", d)
	}
}

// signInWithToken opens the page at pageURL and signs in with tok.
func signInWithToken(tab browserTab, pageURL, tok string) {
	tab.t.Helper()
	tab.do("sign in with a token",
		chromedp.Navigate(pageURL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token-input")),
		chromedp.SetValue(chromedp.CSS("#token-input"), tok),
		chromedp.Click(chromedp.CSS("#signin-button")),
		chromedp.WaitVisible(chromedp.CSS("#app")),
	)
}

// mustScanned returns GET /api/documents/{id}.
func mustScanned(t *testing.T, s *apitest.Stack, tok string, id uuid.UUID) scannedDocument {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/api/documents/"+id.String(), tok, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET document %s: %d %s", id, r.Status, r.Body)
	}
	var d scannedDocument
	r.Decode(t, &d)
	return d
}
