package scanner_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/internal/devstack"
	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/classify/samples"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/document"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// scanned is a document as GET /api/documents/{id} answers it.
type scanned struct {
	Status         string `json:"status"`
	RejectReason   string `json:"reject_reason"`
	ScanStatus     string `json:"scan_status"`
	ScanDetail     string `json:"scan_detail"`
	Classification string `json:"classification"`
	DownloadURL    string `json:"download_url"`
}

func get(t *testing.T, s *apitest.Stack, tok string, id uuid.UUID) scanned {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/api/documents/"+id.String(), tok, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", id, r.Status, r.Body)
	}
	var d scanned
	r.Decode(t, &d)
	return d
}

// waitFor polls document id until done says it is there, and returns it
// with the time that took; it fails after limit.
func waitFor(t *testing.T, s *apitest.Stack, tok string, id uuid.UUID, limit time.Duration, done func(scanned) bool) (scanned, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		d := get(t, s, tok, id)
		if done(d) {
			return d, time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("document %s after %v: %+v", id, limit, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func verdict(d scanned) bool { return d.ScanStatus != string(document.ScanPending) }

// eicarZip is a zip holding EICAR.
func eicarZip(t *testing.T) []byte { return zipOf(t, "readme.txt", []byte(devstack.EICAR)) }

// zipOf is a zip holding data as name.
func zipOf(t *testing.T, name string, data []byte) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, err := w.Create(name)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func checkLedger(t *testing.T, s *apitest.Stack) {
	t.Helper()
	for _, p := range s.ReadLedger(t).Problems() {
		t.Error(p)
	}
}

// TestInfectedUploadsAreRemovedAndUncharged: EICAR, a zip holding it and
// every clamav-testfiles sample end rejected as infected, naming the
// signature, never with a download URL, uncharged, their objects gone; a
// clean PDF ends clean, downloadable and classified. It logs each
// sample's time from PUT to verdict.
func TestInfectedUploadsAreRemovedAndUncharged(t *testing.T) {
	clamd := testenv.StartClamAV(t, 32<<20)
	s := apitest.Start(t, apitest.Options{Clamd: clamd, Scanners: 1, Classifiers: 1})
	user, tok := s.NewUser(t)
	s.SetLimit(t, user, 1<<30)

	type sample struct {
		name string
		data []byte
	}
	all := []sample{{"eicar.com", []byte(devstack.EICAR)}, {"eicar.zip", eicarZip(t)}}
	files, err := os.ReadDir(devstack.ClamdPaths.TestFiles)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(devstack.ClamdPaths.TestFiles, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, sample{f.Name(), data})
	}
	if len(all) < 40 {
		t.Fatalf("%d samples: is clamav-testfiles installed whole?", len(all))
	}
	for _, smp := range all {
		start := time.Now()
		id := s.UploadAndConfirm(t, tok, smp.name, "application/octet-stream", smp.data)
		// Until the verdict: no download URL.
		if d := get(t, s, tok, id); d.ScanStatus == string(document.ScanPending) && d.DownloadURL != "" {
			t.Errorf("%s: a download URL while its scan is pending", smp.name)
		}
		d, _ := waitFor(t, s, tok, id, 30*time.Second, verdict)
		t.Logf("%-22s %7d bytes  %-9s %-40s PUT to verdict %v", smp.name, len(smp.data), d.ScanStatus, d.ScanDetail, time.Since(start).Round(time.Millisecond))
		if d.Status != string(document.StatusRejected) || d.RejectReason != document.ReasonInfected ||
			d.ScanStatus != string(document.ScanInfected) || d.ScanDetail == "" || d.DownloadURL != "" {
			t.Errorf("%s: %+v, want rejected, infected, the signature named, no download URL", smp.name, d)
		}
		if s.ObjectExists(t, id) {
			t.Errorf("%s: its object is still in the bucket", smp.name)
		}
		if n := s.CountEvents(t, id, string(document.EventRejected)); n != 1 {
			t.Errorf("%s: %d document.rejected events, want 1", smp.name, n)
		}
	}
	if used, _ := s.Quota(t, tok); used != 0 {
		t.Errorf("used_bytes %d after infected uploads only, want 0", used)
	}

	pdf := samples.PDF(samples.Texts()["invoice"])
	start := time.Now()
	id := s.UploadAndConfirm(t, tok, "invoice.pdf", "application/pdf", pdf)
	d, _ := waitFor(t, s, tok, id, 30*time.Second, verdict)
	t.Logf("%-22s %7d bytes  %-9s PUT to verdict %v", "invoice.pdf", len(pdf), d.ScanStatus, time.Since(start).Round(time.Millisecond))
	d, _ = waitFor(t, s, tok, id, 30*time.Second, func(d scanned) bool { return d.Classification != "" })
	if d.ScanStatus != string(document.ScanClean) || d.Status != string(document.StatusClassified) || d.Classification != "invoice" {
		t.Errorf("clean PDF: %+v, want clean and classified as an invoice", d)
	}
	resp, err := http.Get(d.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(pdf)) {
		t.Errorf("download of the clean PDF: %d, %d bytes", resp.StatusCode, resp.ContentLength)
	}
	// Its events tell the scan state: pending when stored, clean when
	// scanned, then classified.
	var seen []string
	for _, e := range s.DocumentEvents(t, id) {
		var data struct {
			ScanStatus string `json:"scan_status"`
		}
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, e.Type+" "+data.ScanStatus)
	}
	if want := []string{"document.uploaded pending", "document.scanned clean", "document.classified clean"}; !slices.Equal(seen, want) {
		t.Errorf("events of the clean PDF: %q, want %q", seen, want)
	}
	if used, _ := s.Quota(t, tok); used != int64(len(pdf)) {
		t.Errorf("used_bytes %d, want the clean PDF's %d", used, len(pdf))
	}
	checkLedger(t, s)
}

// TestNothingIsCleanWhileClamdIsAway: with clamd stopped, uploads wait
// pending, never downloadable nor classified; once it is back, every one
// is scanned (retried with back-off), the clean ones clean and the
// infected one rejected.
func TestNothingIsCleanWhileClamdIsAway(t *testing.T) {
	clamd := testenv.StartClamAV(t, 1<<20)
	s := apitest.Start(t, apitest.Options{Clamd: clamd, Scanners: 1, Classifiers: 1})
	user, tok := s.NewUser(t)
	s.SetLimit(t, user, 1<<30)
	clamd.Stop()

	var clean []uuid.UUID
	for i := range 6 {
		clean = append(clean, s.UploadAndConfirm(t, tok, "letter.pdf", "application/pdf", samples.PDF(samples.Texts()["letter"]+string(rune('a'+i)))))
	}
	infected := s.UploadAndConfirm(t, tok, "eicar.txt", "text/plain", []byte(devstack.EICAR))
	all := append(slices.Clone(clean), infected)
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		for _, id := range all {
			if d := get(t, s, tok, id); d.ScanStatus != string(document.ScanPending) || d.DownloadURL != "" || d.Status != string(document.StatusUploaded) {
				t.Fatalf("while clamd is away: %+v, want uploaded, pending, no download URL", d)
			}
		}
	}
	clamd.Restart(t)
	back := time.Now()
	for _, id := range clean {
		d, _ := waitFor(t, s, tok, id, time.Minute, func(d scanned) bool { return d.Classification != "" })
		if d.ScanStatus != string(document.ScanClean) || d.DownloadURL == "" {
			t.Errorf("after clamd came back: %+v, want clean and downloadable", d)
		}
	}
	d, _ := waitFor(t, s, tok, infected, time.Minute, verdict)
	if d.ScanStatus != string(document.ScanInfected) || d.Status != string(document.StatusRejected) {
		t.Errorf("the EICAR upload after clamd came back: %+v", d)
	}
	t.Logf("every document scanned %v after clamd came back", time.Since(back).Round(time.Millisecond))
	checkLedger(t, s)
}

// TestADocumentOverScanMaxBytesIsNeverDownloadable: a document larger than
// SCAN_MAX_BYTES is not sent to clamd; its scan fails (too_large), it stays
// charged but gets no download URL and is not classified. A smaller one
// is scanned; the throughput is logged.
func TestADocumentOverScanMaxBytesIsNeverDownloadable(t *testing.T) {
	clamd := testenv.StartClamAV(t, 32<<20)
	s := apitest.Start(t, apitest.Options{Clamd: clamd, Scanners: 1, Classifiers: 1,
		Edit: func(c *config.Config) { c.ScanMaxBytes = 16 << 20 }})
	user, tok := s.NewUser(t)
	s.SetLimit(t, user, 1<<30)

	big := apitest.BytesOf(16<<20 + 1)
	id := s.UploadAndConfirm(t, tok, "big.pdf", "application/pdf", big)
	d, _ := waitFor(t, s, tok, id, 30*time.Second, verdict)
	if d.ScanStatus != string(document.ScanFailed) || d.ScanDetail != document.ScanTooLarge || d.DownloadURL != "" || d.Status != string(document.StatusUploaded) {
		t.Errorf("over SCAN_MAX_BYTES: %+v, want uploaded, failed, too_large, no download URL", d)
	}
	time.Sleep(time.Second)
	if d := get(t, s, tok, id); d.Status != string(document.StatusUploaded) || d.Classification != "" {
		t.Errorf("a document that could not be scanned was classified: %+v", d)
	}
	// An administrator may release it; its owner may not, and nothing
	// else can be released.
	release := "/api/admin/documents/" + id.String() + "/release"
	if r := s.Do(t, http.MethodPost, release, tok, nil); r.Status != http.StatusForbidden {
		t.Errorf("its owner's release: %d %s, want 403", r.Status, r.Body)
	}
	admin := s.Token(t, uuid.New(), auth.RoleAdmin)
	if r := s.Do(t, http.MethodPost, release, admin, nil); r.Status != http.StatusOK {
		t.Fatalf("admin release: %d %s", r.Status, r.Body)
	}
	d, _ = waitFor(t, s, tok, id, 30*time.Second, func(d scanned) bool { return d.Status != string(document.StatusUploaded) })
	if d.ScanStatus != string(document.ScanReleased) || d.ScanDetail != document.ScanTooLarge || d.DownloadURL == "" {
		t.Errorf("released: %+v, want released (too_large), downloadable, then classified", d)
	}
	if r := s.Do(t, http.MethodPost, release, admin, nil); r.Status != http.StatusConflict {
		t.Errorf("a second release: %d %s, want 409", r.Status, r.Body)
	}

	// EICAR nested deeper than clamd unpacks is not scanned whole: failed,
	// never infected nor clean.
	nested := []byte(devstack.EICAR)
	for i := range 20 {
		nested = zipOf(t, fmt.Sprintf("level%d.zip", i), nested)
	}
	id = s.UploadAndConfirm(t, tok, "nested.zip", "application/zip", nested)
	d, _ = waitFor(t, s, tok, id, 30*time.Second, verdict)
	if d.ScanStatus != string(document.ScanFailed) || d.ScanDetail != document.ScanLimitsExceeded || d.DownloadURL != "" {
		t.Errorf("EICAR 20 zips deep: %+v, want failed, limits_exceeded, no download URL", d)
	}

	// Throughput: the largest document scanned, from PUT to verdict.
	data := apitest.BytesOf(16 << 20)
	start := time.Now()
	id = s.UploadAndConfirm(t, tok, "large.bin", "application/octet-stream", data)
	d, took := waitFor(t, s, tok, id, time.Minute, verdict)
	if d.ScanStatus != string(document.ScanClean) || d.DownloadURL == "" {
		t.Errorf("at SCAN_MAX_BYTES: %+v, want clean and downloadable", d)
	}
	t.Logf("16 MiB: PUT to verdict %v (confirm to verdict %v): %.1f MB/s", time.Since(start).Round(time.Millisecond),
		took.Round(time.Millisecond), float64(len(data))/1e6/time.Since(start).Seconds())
	checkLedger(t, s)
}

// cutter is a TCP proxy in front of clamd that, while cutting, forwards
// the first bytes of each connection and then drops it, as a scanner that
// dies mid-stream (or a network that fails) would leave clamd.
type cutter struct {
	ln      net.Listener
	to      string
	cutting atomic.Bool
	cuts    atomic.Int64
}

func newCutter(t *testing.T, to string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, to: to}
	c.cutting.Store(true)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go c.serve(in)
		}
	}()
	return c
}

func (c *cutter) serve(in net.Conn) {
	defer in.Close()
	out, err := net.Dial("tcp", c.to)
	if err != nil {
		return
	}
	defer out.Close()
	go func() { _, _ = io.Copy(in, out) }()
	if c.cutting.Load() {
		_, _ = io.CopyN(out, in, 64<<10)
		c.cuts.Add(1)
		return
	}
	_, _ = io.Copy(out, in)
}

// TestAScanCutShortIsScannedAgain: a scan whose stream is cut mid-way is
// no verdict: the document stays pending and is retried; when its scanner
// goes away meanwhile, another replica's recovery takes the document up
// and scans it once clamd can be reached whole.
func TestAScanCutShortIsScannedAgain(t *testing.T) {
	clamd := testenv.StartClamAV(t, 4<<20)
	proxy := newCutter(t, clamd.Addr)
	s := apitest.Start(t, apitest.Options{Clamd: clamd, Classifiers: 1, Edit: func(c *config.Config) {
		c.ClamdAddress = proxy.ln.Addr().String()
		c.ClassifyRecoveryAfter = 2 * time.Second
	}})
	user, tok := s.NewUser(t)
	s.SetLimit(t, user, 1<<30)
	_, stopFirst := s.StartRole(t, stack.Scanner)

	id := s.UploadAndConfirm(t, tok, "letter.pdf", "application/pdf", append(samples.PDF(samples.Texts()["letter"]), apitest.BytesOf(1<<20)...))
	for proxy.cuts.Load() < 1 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := stopFirst(); err != nil { // the replica goes, its scan cut short
		t.Fatal(err)
	}
	if d := get(t, s, tok, id); d.ScanStatus != string(document.ScanPending) || d.DownloadURL != "" {
		t.Fatalf("after a cut scan: %+v, want pending, no download URL", d)
	}
	proxy.cutting.Store(false)
	s.StartRole(t, stack.Scanner)
	d, took := waitFor(t, s, tok, id, time.Minute, verdict)
	if d.ScanStatus != string(document.ScanClean) || d.DownloadURL == "" {
		t.Errorf("after another replica's recovery: %+v, want clean and downloadable", d)
	}
	if n := s.CountEvents(t, id, string(document.EventScanned)); n != 1 {
		t.Errorf("%d document.scanned events, want 1", n)
	}
	t.Logf("%d scans cut; scanned by the other replica %v after it started", proxy.cuts.Load(), took.Round(time.Millisecond))
}

// TestScannerThroughput uploads documents of several users, then starts
// one scanner replica (its Workers streams at a time) and logs the
// throughput, from its start to the last verdict, for the record: every
// document must end clean and downloadable.
func TestScannerThroughput(t *testing.T) {
	clamd := testenv.StartClamAV(t, 16<<20)
	s := apitest.Start(t, apitest.Options{Clamd: clamd})
	const users, perUser, size = 4, 4, 8 << 20
	type doc struct {
		tok string
		id  uuid.UUID
	}
	var docs []doc
	for range users {
		user, tok := s.NewUser(t)
		s.SetLimit(t, user, 1<<30)
		for range perUser {
			docs = append(docs, doc{tok, s.UploadAndConfirm(t, tok, "data.bin", "application/octet-stream", apitest.BytesOf(size))})
		}
	}
	start := time.Now()
	s.StartRole(t, stack.Scanner)
	for _, d := range docs {
		got, _ := waitFor(t, s, d.tok, d.id, time.Minute, verdict)
		if got.ScanStatus != string(document.ScanClean) || got.DownloadURL == "" {
			t.Errorf("%s: %+v, want clean and downloadable", d.id, got)
		}
	}
	took := time.Since(start)
	t.Logf("%d documents of %d MiB (%d users) scanned: the last verdict %v after the scanner started: %.0f MB/s",
		len(docs), size>>20, users, took.Round(time.Millisecond), float64(len(docs)*size)/1e6/took.Seconds())
}
