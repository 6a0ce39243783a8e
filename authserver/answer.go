package authserver

import "net/http"

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
