package authserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/mss-login/mss-login/internal/store"
)

// How the auth server answers: JSON to API clients, a page (or a redirect) to browsers.

// browser: the request is a browser's form, answered with a page (API clients get JSON).
func browser(r *http.Request, isJSON bool) bool { return !isJSON && isNavigation(r) }

// answer answers a form's request in its shape: a browser's form (browser) with page — a page
// rendered or a redirect — and an API client (a JSON body, or no navigation) with code and
// body as JSON.
func answer(w http.ResponseWriter, r *http.Request, isJSON bool, code int, body any, page func()) {
	if browser(r, isJSON) {
		page()
		return
	}
	writeJSON(w, code, body)
}

// isNavigation: a browser loading a page (Sec-Fetch-Mode: navigate, or HTML wanted over JSON).
func isNavigation(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	a := r.Header.Get("Accept")
	return strings.Contains(a, "text/html") && !strings.Contains(a, "application/json")
}

// writeError answers an error as JSON, or as a small HTML page to a browser.
func writeError(w http.ResponseWriter, r *http.Request, code int, errCode, msg string) {
	if isNavigation(r) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", pageCSP)
		w.WriteHeader(code)
		rq, _ := r.Context().Value(ctxKey{}).(*request)
		_ = pages.ExecuteTemplate(w, "error.html", map[string]any{"Code": code, "Message": msg,
			"SignedIn": rq != nil && rq.id != nil}) // signed in: the account page and sign-out too
		return
	}
	writeJSON(w, code, map[string]any{"error": msg, "code": errCode})
}

// dbUnavailable answers a request whose database work failed.
func dbUnavailable(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, http.StatusServiceUnavailable, "DB_UNAVAILABLE", "The users database is not reachable.")
}

// storeFailed answers a failed store call — 404 with notFound for store.ErrNotFound, else
// dbUnavailable — and reports whether err was set.
func storeFailed(w http.ResponseWriter, r *http.Request, err error, notFound string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		writeError(w, r, http.StatusNotFound, "NOT_FOUND", notFound)
	default:
		dbUnavailable(w, r)
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
