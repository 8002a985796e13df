package document_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

func TestExtension(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"report.PDF":            ".pdf",
		"archive.tar.gz":        ".gz",
		"noext":                 "",
		".bashrc":               "",
		"trailing.":             "",
		"dir.d/file":            "",
		`C:\docs\scan.JPEG`:     ".jpeg",
		"evil.p$f":              "",
		"space. pdf":            "",
		"unicode.pdé":           "",
		"long.abcdefghijklmnop": "",
		"ok.abcdefghijklmno":    ".abcdefghijklmno",
	} {
		if got := document.Extension(name); got != want {
			t.Errorf("Extension(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestObjectKeyRoundTrip(t *testing.T) {
	t.Parallel()
	user, doc := uuid.New(), uuid.New()
	key := document.ObjectKey(user, doc, "../../etc/passwd.TXT")
	if !strings.HasPrefix(key, user.String()+"/"+doc.String()+"/") || !strings.HasSuffix(key, ".txt") || strings.Contains(key, "..") {
		t.Fatalf("ObjectKey = %q", key)
	}
	gotUser, gotDoc, ok := document.ParseObjectKey(key)
	if !ok || gotUser != user || gotDoc != doc {
		t.Fatalf("ParseObjectKey(%q) = %v %v %v", key, gotUser, gotDoc, ok)
	}
	for _, bad := range []string{"", "a/b/c", user.String() + "/" + doc.String(), user.String() + "/x/" + doc.String(), "{" + user.String() + "}/" + doc.String() + "/x"} {
		if _, _, ok := document.ParseObjectKey(bad); ok {
			t.Errorf("ParseObjectKey(%q) accepted", bad)
		}
	}
}

func TestUploadRequestValidate(t *testing.T) {
	t.Parallel()
	size := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		name string
		req  document.UploadRequest
		code document.Code
	}{
		{"ok", document.UploadRequest{Filename: "a.pdf", ContentType: "application/pdf", SizeBytes: size(10)}, ""},
		{"ok without size", document.UploadRequest{Filename: "a.pdf", ContentType: "text/plain; charset=utf-8"}, ""},
		{"no filename", document.UploadRequest{ContentType: "application/pdf"}, document.Invalid},
		{"tab in filename", document.UploadRequest{Filename: "a\tb", ContentType: "application/pdf"}, document.Invalid},
		{"invalid utf-8", document.UploadRequest{Filename: "a\xffb", ContentType: "application/pdf"}, document.Invalid},
		{"right-to-left override", document.UploadRequest{Filename: "invoice\u202efdp.exe", ContentType: "application/pdf"}, document.Invalid},
		{"left-to-right embedding", document.UploadRequest{Filename: "\u202aa.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"pop directional formatting", document.UploadRequest{Filename: "a\u202c.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"right-to-left isolate", document.UploadRequest{Filename: "a\u2067b\u2069.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"first strong isolate", document.UploadRequest{Filename: "a\u2068.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"left-to-right isolate", document.UploadRequest{Filename: "a\u2066.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"right-to-left mark", document.UploadRequest{Filename: "a\u200f.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"arabic letter mark", document.UploadRequest{Filename: "\u0627\u061c.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"zero width space", document.UploadRequest{Filename: "in\u200bvoice.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"byte order mark", document.UploadRequest{Filename: "\ufeffa.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"word joiner", document.UploadRequest{Filename: "a\u2060.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"soft hyphen", document.UploadRequest{Filename: "in\u00advoice.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"tag character", document.UploadRequest{Filename: "a\U000e0041.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"format character in the content type", document.UploadRequest{Filename: "a.pdf", ContentType: "text/plain; charset=\"utf\u200b-8\""}, document.Invalid},
		{"joiner beside ASCII", document.UploadRequest{Filename: "invoice\u200d.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"non-joiner at the start", document.UploadRequest{Filename: "\u200c\u0645\u06cc.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"two joiners", document.UploadRequest{Filename: "\u0645\u06cc\u200c\u200c\u062e.pdf", ContentType: "application/pdf"}, document.Invalid},
		{"persian non-joiner", document.UploadRequest{Filename: "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.pdf", ContentType: "application/pdf"}, ""},
		{"emoji joiner sequence", document.UploadRequest{Filename: "\U0001f468\u200d\U0001f469\u200d\U0001f467.png", ContentType: "image/png"}, ""},
		{"right-to-left text", document.UploadRequest{Filename: "\u05d7\u05e9\u05d1\u05d5\u05e0\u05d9\u05ea.pdf", ContentType: "application/pdf"}, ""},
		{"256 bytes", document.UploadRequest{Filename: strings.Repeat("a", 256), ContentType: "application/pdf"}, document.Invalid},
		{"bad media type", document.UploadRequest{Filename: "a", ContentType: "application/"}, document.Invalid},
		{"zero size", document.UploadRequest{Filename: "a", ContentType: "application/pdf", SizeBytes: size(0)}, document.Invalid},
		{"too large", document.UploadRequest{Filename: "a", ContentType: "application/pdf", SizeBytes: size(101)}, document.TooLarge},
	} {
		if got := document.ErrorCode(tc.req.Validate(100)); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	c := document.Cursor{CreatedAt: time.Date(2026, 11, 27, 9, 0, 0, 123456000, time.UTC), ID: uuid.New()}
	got, err := document.ParseCursor(c.String())
	if err != nil || !got.CreatedAt.Equal(c.CreatedAt) || got.ID != c.ID {
		t.Fatalf("ParseCursor(String()) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "!!", "bm9wZQ", strings.Repeat("A", 200)} {
		if _, err := document.ParseCursor(bad); document.ErrorCode(err) != document.Invalid {
			t.Errorf("ParseCursor(%q) err = %v", bad, err)
		}
	}
}

func TestEventIsCloudEvent(t *testing.T) {
	t.Parallel()
	d := &document.Document{ID: uuid.New(), UserID: uuid.New(), Filename: "a.pdf", ContentType: "application/pdf", SizeBytes: 3, Status: document.StatusUploaded, ObjectKey: "k"}
	e := document.NewEvent(document.EventUploaded, d, time.Now())
	if e.Subject() != "document.uploaded."+d.UserID.String() {
		t.Fatalf("Subject = %s", e.Subject())
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, k := range []string{"specversion", "id", "type", "source", "subject", "time", "datacontenttype", "data"} {
		if _, ok := m[k]; !ok {
			t.Errorf("CloudEvent lacks %q: %s", k, b)
		}
	}
	var back document.Event
	if err := json.Unmarshal(b, &back); err != nil || back.ID != e.ID || back.Data != e.Data {
		t.Fatalf("round trip: %v %+v", err, back)
	}
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	wrapped := errors.Join(errors.New("context"), document.Errorf(document.NotFound, "gone"))
	if document.ErrorCode(wrapped) != document.NotFound {
		t.Fatal("code lost through wrapping")
	}
	if document.ErrorCode(errors.New("boom")) != document.Internal || document.ErrorCode(nil) != "" {
		t.Fatal("plain errors are internal, nil has no code")
	}
	if document.ErrorMessage(errors.New("secret detail")) != "internal error" {
		t.Fatal("an uncoded error's text must not reach a client")
	}
}

// FuzzUploadRequest checks the filename sanitiser and the request rules on
// arbitrary input: no panic, a valid request is within every limit, and an
// extension is always safe to put in an object key.
func FuzzUploadRequest(f *testing.F) {
	f.Add("report.PDF", "application/pdf", int64(10))
	f.Add("../../etc/passwd", "text/plain; charset=utf-8", int64(1))
	f.Add("a\x00b.exe", "application/", int64(-1))
	f.Add(strings.Repeat("é", 200)+".tar.gz", "image/png", int64(1<<40))
	f.Fuzz(func(t *testing.T, filename, contentType string, size int64) {
		ext := document.Extension(filename)
		if len(ext) > 16 || (ext != "" && (ext[0] != '.' || strings.ContainsAny(ext[1:], "./\\ \x00"))) {
			t.Fatalf("Extension(%q) = %q", filename, ext)
		}
		for _, c := range ext {
			if c != '.' && (c < 'a' || c > 'z') && (c < '0' || c > '9') {
				t.Fatalf("Extension(%q) = %q holds %q", filename, ext, c)
			}
		}
		key := document.ObjectKey(uuid.New(), uuid.New(), filename)
		if _, _, ok := document.ParseObjectKey(key); !ok {
			t.Fatalf("ObjectKey for %q = %q does not parse back", filename, key)
		}
		req := document.UploadRequest{Filename: filename, ContentType: contentType, SizeBytes: &size}
		err := req.Validate(100 << 20)
		if err == nil && (filename == "" || len(filename) > 255 || len(contentType) > 255 || size <= 0 || size > 100<<20) {
			t.Fatalf("accepted %q %q %d", filename, contentType, size)
		}
		if err != nil && document.ErrorCode(err) != document.Invalid && document.ErrorCode(err) != document.TooLarge {
			t.Fatalf("error %v has code %q", err, document.ErrorCode(err))
		}
	})
}

func TestStatusUploadSplitsClassification(t *testing.T) {
	for _, tc := range []struct {
		s                      document.Status
		upload, classification document.Status
	}{
		{document.StatusPending, document.StatusPending, ""},
		{document.StatusUploaded, document.StatusUploaded, ""},
		{document.StatusClassified, document.StatusUploaded, document.StatusClassified},
		{document.StatusClassificationFailed, document.StatusUploaded, document.StatusClassificationFailed},
		{document.StatusRejected, document.StatusRejected, ""},
	} {
		if u, c := tc.s.Upload(); u != tc.upload || c != tc.classification {
			t.Errorf("%s.Upload() = %s, %q; want %s, %q", tc.s, u, c, tc.upload, tc.classification)
		}
	}
}
