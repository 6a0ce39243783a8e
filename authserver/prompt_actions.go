package authserver

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/mss-login/mss-login/authserver/isolation"
	"github.com/mss-login/mss-login/authserver/policy"
)

// What a user may do to prompts, limited to their own: deletes and clears, interrupts,
// cancels (see prompts.go).

// ownDeletes limits POST /queue and POST /history to the caller's prompts: "delete" keeps the
// caller's ids, "clear" becomes a delete of the caller's entries.
func (s *Server) ownDeletes(w http.ResponseWriter, r *http.Request, rq *request, kind comfyRoute) bool {
	_, doc, ok := readJSONObject(w, r, 1<<20)
	if !ok {
		return false
	}
	var ids []string
	if raw, set := doc["delete"]; set && json.Unmarshal(raw, &ids) != nil {
		writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", "delete: a list of prompt ids")
		return false
	}
	var clear bool
	_ = json.Unmarshal(doc["clear"], &clear)
	if clear {
		path, list := "/api/queue", isolation.QueueIDs
		if kind == routePostHistory {
			path, list = "/api/history", isolation.HistoryIDs
		}
		current, err := s.upstreamJSON(r.Context(), path, rq.comfyUser)
		if err == nil {
			var all []string
			if all, err = list(current); err == nil {
				ids = append(ids, all...)
			}
		}
		if err != nil {
			writeError(w, r, http.StatusBadGateway, "UPSTREAM_UNAVAILABLE", "Could not read the list to clear your entries from ComfyUI.")
			return false
		}
	}
	own, err := s.prompts.ownedBy(r.Context(), ids, rq.id.user.ID)
	if err != nil {
		dbUnavailable(w, r)
		return false
	}
	delete(doc, "clear")
	doc["delete"], _ = json.Marshal(own)
	setJSONBody(r, doc)
	return true
}

// ownInterrupt lets a user stop their own running prompt only. ComfyUI interrupts a named
// prompt only while it is the one running, so naming it leaves no window in which another's
// prompt could be stopped instead.
func (s *Server) ownInterrupt(w http.ResponseWriter, r *http.Request, rq *request) bool {
	_, doc, ok := readJSONObject(w, r, 1<<20)
	if !ok {
		return false
	}
	var id string
	_ = json.Unmarshal(doc["prompt_id"], &id)
	if id == "" {
		current, err := s.upstreamJSON(r.Context(), "/api/queue", rq.comfyUser)
		if err != nil {
			writeError(w, r, http.StatusBadGateway, "UPSTREAM_UNAVAILABLE", "Could not read what ComfyUI is running.")
			return false
		}
		if q, err := isolation.SplitQueue(current); err == nil && len(q.Running()) > 0 {
			id = q.Running()[0]
		}
		if id == "" {
			writeJSON(w, http.StatusOK, map[string]any{}) // nothing runs: nothing to stop
			return false
		}
	}
	owners, err := s.prompts.owners(r.Context(), []string{id})
	if err != nil {
		dbUnavailable(w, r)
		return false
	}
	if owners[id] != rq.id.user.ID {
		writeError(w, r, http.StatusForbidden, "NOT_YOUR_PROMPT", "The running prompt is another user's: only they or an admin can stop it.")
		return false
	}
	doc["prompt_id"], _ = json.Marshal(id)
	setJSONBody(r, doc)
	return true
}

// ownCancel lets a user cancel their own jobs only: one named in the path must be theirs (403
// otherwise); a batch keeps the caller's ids.
func (s *Server) ownCancel(w http.ResponseWriter, r *http.Request, rq *request) bool {
	if route, _ := policy.Route(rq.path.Match); route != "/jobs/cancel" {
		// The id as sent (Match is lower-cased): the segment before "/cancel".
		segs := strings.Split(rq.path.Forward, "/")
		id, _ := url.PathUnescape(segs[len(segs)-2])
		owners, err := s.prompts.owners(r.Context(), []string{id})
		if err != nil {
			dbUnavailable(w, r)
			return false
		}
		if owners[id] != rq.id.user.ID {
			writeError(w, r, http.StatusForbidden, "NOT_YOUR_PROMPT", "That job is another user's: only they or an admin can cancel it.")
			return false
		}
		return true
	}
	_, doc, ok := readJSONObject(w, r, 1<<20)
	if !ok {
		return false
	}
	var ids []string
	if raw, set := doc["job_ids"]; set && json.Unmarshal(raw, &ids) != nil {
		writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", "job_ids: a list of job ids")
		return false
	}
	own, err := s.prompts.ownedBy(r.Context(), ids, rq.id.user.ID)
	if err != nil {
		dbUnavailable(w, r)
		return false
	}
	doc["job_ids"], _ = json.Marshal(own)
	setJSONBody(r, doc)
	return true
}
