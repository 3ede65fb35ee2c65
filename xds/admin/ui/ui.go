// Package ui is the admin UI: static HTML, CSS and JavaScript modules,
// embedded in the binary and served under /ui/ on the admin listener. The
// pages read and change state only through the admin API (/v1/admin/...),
// with the bearer token the operator types in, so the UI is no second path
// to state and serving it needs no identity.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// csp allows the page only its own scripts, styles and API: no inline
// script, no CDN, nothing a stored value could inject.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the UI's files; mount it with the /ui prefix stripped.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic("ui: embedded assets: " + err.Error()) // the embed pattern guarantees the directory
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the UI is read-only files; the API is under /v1/admin/", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change with the binary; revalidate so an upgrade shows.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
