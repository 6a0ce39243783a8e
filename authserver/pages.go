package authserver

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
)

//go:embed web/*.html web/static/*
var webFS embed.FS

// pageCSP allows nothing but this server's own stylesheet and forms: no script at all, so an
// injected <script> cannot run.
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

var pages = template.Must(template.New("pages").Funcs(template.FuncMap{
	"managedBy": managedBy,
	"deref":     func(n *int) int { return *n },
}).ParseFS(webFS, "web/*.html"))

func staticHandler() http.Handler {
	sub, _ := fs.Sub(webFS, "web/static")
	return http.StripPrefix("/mss-login/static/", http.FileServer(http.FS(sub)))
}

// serveFavicon answers /favicon.ico, which browsers ask for on every page (the login page's
// included), with the auth server's icon.
func serveFavicon(w http.ResponseWriter, _ *http.Request) {
	icon, _ := webFS.ReadFile("web/static/favicon.svg")
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(icon)
}

func renderPage(w http.ResponseWriter, code int, name string, data map[string]any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(code)
	_ = pages.ExecuteTemplate(w, name, data)
}
