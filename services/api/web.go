package api

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
)

//go:embed web
var webFiles embed.FS

// OpenAPI is the OpenAPI 3.1 document of the HTTP API, served on
// /openapi.json; the end-to-end tests validate every exchange against it.
//
//go:embed openapi.json
var OpenAPI []byte

// webRoot is the page's files: index.html, app.js, style.css, favicon.svg.
var webRoot, _ = fs.Sub(webFiles, "web")

// pageSecurity returns the headers every page file is served with. The
// page talks to the API (same origin) and PUTs bytes to MinIO's public
// endpoint, nothing else.
func pageSecurity(minioOrigin string) http.Header {
	h := http.Header{}
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' "+minioOrigin+"; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	// Presigned URLs must not leak to other sites through Referer.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	return h
}

// mountPage serves the embedded web page at / and its files beside it; any
// other path is answered with the API's JSON 404.
func mountPage(r chi.Router, minioOrigin string) {
	headers := pageSecurity(minioOrigin)
	serve := func(w http.ResponseWriter, req *http.Request, name string) {
		data, err := fs.ReadFile(webRoot, name)
		if err != nil || strings.Contains(name, "/") {
			writeDetail(w, http.StatusNotFound, "not found")
			return
		}
		for k, v := range headers {
			w.Header()[k] = v
		}
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, req, name, time.Time{}, bytes.NewReader(data))
	}
	r.Get("/", func(w http.ResponseWriter, req *http.Request) { serve(w, req, "index.html") })
	r.Get("/{file}", func(w http.ResponseWriter, req *http.Request) {
		serve(w, req, path.Clean(chi.URLParam(req, "file")))
	})
}
