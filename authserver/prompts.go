package authserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/mss-login/mss-login/authserver/isolation"
	"github.com/mss-login/mss-login/authserver/policy"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// Keeping ComfyUI users apart (docs/authserver.md, "What each user sees"): every prompt is
// owned by the user who queued it, recorded before ComfyUI sees it; queue, history and job
// answers are filtered to the caller's prompts; deletes, clears and interrupts act on the
// caller's prompts only. Admins and can_view_all_comfyui_items see and act on everyone's.

// comfyRoute is a ComfyUI route whose request or answer isolation rewrites.
type comfyRoute int

const (
	routeOther comfyRoute = iota
	routePostPrompt
	routeGetQueue
	routePostQueue
	routeGetHistory
	routePostHistory
	routeGetJobs
	routeGetJob
	routeInterrupt
	routeWS
	routeGetUsers
	routePostUsers
	routeView
	routeUpload
	routeObjectInfo
	routeExtensions
	routeCancelJobs
	routeModelList    // GET /models/{folder}
	routeModelItems   // GET /experiment/models/{folder}
	routeEmbeddings   // GET /embeddings
	routeViewMetadata // GET /view_metadata/{folder}?filename=
	routeModelPreview // GET /experiment/models/preview/{folder}/{i}/{file}
)

// classify names the isolated route of a request (any /api or version prefix stripped).
func classify(method string, p policy.Path) comfyRoute {
	r, _ := policy.Route(p.Match)
	get, post := method == http.MethodGet || method == http.MethodHead, method == http.MethodPost
	switch {
	case r == "/prompt" && post:
		return routePostPrompt
	case r == "/queue" && get:
		return routeGetQueue
	case r == "/queue" && post:
		return routePostQueue
	case (r == "/history" || strings.HasPrefix(r, "/history/")) && get:
		return routeGetHistory
	case r == "/history" && post:
		return routePostHistory
	case r == "/jobs" && get:
		return routeGetJobs
	case strings.HasPrefix(r, "/jobs/") && get:
		return routeGetJob
	case r == "/interrupt" && post:
		return routeInterrupt
	case r == "/ws" && get:
		return routeWS
	case r == "/users" && get:
		return routeGetUsers
	case r == "/users" && post:
		return routePostUsers
	case r == "/view" && get:
		return routeView
	case (r == "/upload/image" || r == "/upload/mask") && post:
		return routeUpload
	case (r == "/object_info" || strings.HasPrefix(r, "/object_info/")) && get:
		return routeObjectInfo
	case r == "/extensions" && get:
		return routeExtensions
	case get && strings.HasPrefix(r, "/models/") && strings.Count(r, "/") == 2:
		return routeModelList
	case get && strings.HasPrefix(r, "/experiment/models/preview/"):
		return routeModelPreview
	case get && strings.HasPrefix(r, "/experiment/models/") && strings.Count(r, "/") == 3:
		return routeModelItems
	case get && r == "/embeddings":
		return routeEmbeddings
	case get && strings.HasPrefix(r, "/view_metadata/"):
		return routeViewMetadata
	case post && (r == "/jobs/cancel" || strings.HasPrefix(r, "/jobs/") && strings.HasSuffix(r, "/cancel")):
		return routeCancelJobs // newer ComfyUI: POST /api/jobs/{id}/cancel, /api/jobs/cancel {"job_ids"}
	}
	return routeOther
}

// seesAll: admins and can_view_all_comfyui_items see and act on everyone's prompts.
func seesAll(id *identity) bool { return id.isAdmin() || id.can(roles.CanViewAllComfyUIItems) }

// promptOwners caches the owners of prompt ids (a prompt's owner never changes) over the
// database, which every replica shares.
type promptOwners struct {
	db    *store.Store
	known sync.Map // prompt id → user id
	size  atomic.Int64
}

const maxKnownPrompts = 100000

func (po *promptOwners) remember(id, user string) {
	if po.size.Add(1) > maxKnownPrompts {
		po.known.Clear() // bounded: start over rather than track age
		po.size.Store(1)
	}
	po.known.Store(id, user)
}

// owners returns the owner of each of ids that has one.
func (po *promptOwners) owners(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	var missing []string
	for _, id := range ids {
		if u, ok := po.known.Load(id); ok {
			out[id] = u.(string)
		} else if id != "" {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	found, err := po.db.PromptOwners(ctx, missing)
	if err != nil {
		return nil, err
	}
	for id, u := range found {
		out[id] = u
		po.remember(id, u)
	}
	return out, nil
}

// ownedBy keeps, in order, the ids of ids that user owns (never nil: a JSON list).
func (po *promptOwners) ownedBy(ctx context.Context, ids []string, user string) ([]string, error) {
	owners, err := po.owners(ctx, ids)
	if err != nil {
		return nil, err
	}
	own := []string{}
	for _, id := range ids {
		if owners[id] == user {
			own = append(own, id)
		}
	}
	return own, nil
}

// maxPromptBody bounds a prompt (its workflow is embedded for the PNG metadata) and a filtered
// answer read into memory.
const (
	maxPromptBody   = 32 << 20
	maxFilteredBody = 256 << 20
)

// isolate rewrites the request of an isolated route before it is forwarded, and marks the ones
// whose answer is filtered. It returns false when it has answered the request itself.
func (s *Server) isolate(w http.ResponseWriter, r *http.Request, rq *request) bool {
	if rq.id == nil || s.noIsolation {
		return true
	}
	kind := classify(r.Method, rq.path)
	switch kind { // for everyone, admins included
	case routePostPrompt:
		return s.ownPrompt(w, r, rq)
	case routeWS:
		q := make(url.Values, len(rq.query)+1)
		for k, v := range rq.query {
			q[k] = v
		}
		q.Set("clientId", isolation.ClientID(rq.id.user.ID, q.Get("clientId"), uuid.NewString()))
		rq.query, rq.queryDirty = q, true
		return true
	case routePostUsers:
		writeError(w, r, http.StatusForbidden, "USERS_MANAGED", "Accounts come from mss-login: ask an admin, or see the account page.")
		return false
	case routeUpload:
		return s.ownUpload(w, r, rq)
	case routeExtensions:
		rq.filter = kind // the auth server's own frontend extension is announced with ComfyUI's
		r.Header.Del("Accept-Encoding")
		return true
	case routeGetUsers:
		// ComfyUI's answer without --multi-user: the frontend then opens straight on the graph,
		// with no account list and no "New user" (the proxy names the user to ComfyUI on every
		// request). Nobody's name is given away.
		writeJSON(w, http.StatusOK, map[string]any{"storage": "server", "migrated": true})
		return false
	}
	switch kind { // model grants, for everyone who does not see every model
	case routeModelList, routeModelItems, routeEmbeddings, routeViewMetadata, routeModelPreview, routeObjectInfo:
		if rq.models = s.modelViewOf(rq.id); rq.models == nil {
			break
		}
		if kind == routeViewMetadata || kind == routeModelPreview {
			if folder, name := modelFile(kind, rq); !rq.models.visible(folder, name) {
				writeError(w, r, http.StatusForbidden, "MODEL_NOT_ALLOWED", "That model is not granted to you.")
				return false
			}
			return true
		}
		rq.filter = kind
		r.Header.Del("Accept-Encoding") // the answer is read and rewritten
		return true
	}
	if kind == routeOther || seesAll(rq.id) {
		return true
	}
	switch kind {
	case routeView:
		access, key := isolation.View(isolation.UserFolder(rq.id.user.Username, rq.id.user.ID), rq.query)
		if access == isolation.Preview {
			mine, err := s.previews.madeBy(r.Context(), s, key, rq.id.user.ID)
			if err != nil {
				writeError(w, r, http.StatusBadGateway, "UPSTREAM_UNAVAILABLE", "Could not read whose preview that is.")
				return false
			}
			if mine {
				access = isolation.Yours
			}
		}
		if access != isolation.Yours {
			writeError(w, r, http.StatusForbidden, "FILE_NOT_YOURS", "That file is another user's.")
			return false
		}
		return true
	case routePostQueue, routePostHistory:
		return s.ownDeletes(w, r, rq, kind)
	case routeInterrupt:
		return s.ownInterrupt(w, r, rq)
	case routeCancelJobs:
		return s.ownCancel(w, r, rq)
	}
	rq.filter = kind
	r.Header.Del("Accept-Encoding") // the answer is read and rewritten
	return true
}

// ownPrompt gives the prompt an id the caller owns — its own when it brought one nobody else
// owns (409 otherwise), else a new one — and records it before ComfyUI sees the prompt.
func (s *Server) ownPrompt(w http.ResponseWriter, r *http.Request, rq *request) bool {
	_, doc, ok := readJSONObject(w, r, maxPromptBody)
	if !ok {
		return false
	}
	id := ""
	if raw, set := doc["prompt_id"]; set && json.Unmarshal(raw, &id) != nil {
		writeError(w, r, http.StatusBadRequest, "BAD_PROMPT", "prompt_id: a string")
		return false
	}
	if id == "" {
		id = uuid.NewString()
	}
	// ComfyUI sends the prompt's progress, previews and results to the socket of this client id
	// (to every socket when there is none): always one of the caller's.
	var client string
	_ = json.Unmarshal(doc["client_id"], &client)
	doc["client_id"], _ = json.Marshal(isolation.ClientID(rq.id.user.ID, client, uuid.NewString()))
	if graph, ok := doc["prompt"]; ok {
		if v := s.modelViewOf(rq.id); v != nil && !s.checkPromptModels(w, r, v, graph) {
			return false
		}
		owned, err := ownOutputs(graph, isolation.UserFolder(rq.id.user.Username, rq.id.user.ID))
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "BAD_PROMPT", err.Error())
			return false
		}
		doc["prompt"] = owned
	}
	switch err := s.db.ClaimPrompt(r.Context(), id, rq.id.user.ID, s.now()); {
	case errors.Is(err, store.ErrPromptTaken):
		writeError(w, r, http.StatusConflict, "PROMPT_ID_TAKEN", "prompt_id: in use by another user's prompt")
		return false
	case err != nil:
		s.log.Error("recording a prompt's owner failed", "error", err)
		dbUnavailable(w, r)
		return false
	}
	s.prompts.remember(id, rq.id.user.ID)
	doc["prompt_id"], _ = json.Marshal(id)
	setJSONBody(r, doc)
	return true
}

// frontendExtension is the auth server's extension of the ComfyUI frontend (web/static).
const frontendExtension = "/mss-login/static/comfyui-extension.js"

// maxUpload bounds an image or mask upload, read whole before it is rewritten.
const maxUpload = 64 << 20

// ownUpload puts an upload in the user's folder (isolation.OwnUpload).
func (s *Server) ownUpload(w http.ResponseWriter, r *http.Request, rq *request) bool {
	body, err := readBody(r, maxUpload)
	if err != nil {
		writeError(w, r, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", "Uploads are limited to 64 MiB.")
		return false
	}
	out, ct, err := isolation.OwnUpload(body, r.Header.Get("Content-Type"), isolation.UserFolder(rq.id.user.Username, rq.id.user.ID))
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "BAD_UPLOAD", err.Error())
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(out))
	r.ContentLength = int64(len(out))
	r.Header.Set("Content-Length", strconv.Itoa(len(out)))
	r.Header.Set("Content-Type", ct)
	r.Header.Del("Content-Encoding")
	return true
}

// ownOutputs puts every saving node's filename_prefix (a string input of that name) under the
// user's folder of ComfyUI's output directory.
func ownOutputs(graph json.RawMessage, folder string) (json.RawMessage, error) {
	var nodes map[string]map[string]json.RawMessage
	if json.Unmarshal(graph, &nodes) != nil {
		return graph, nil // not a graph: ComfyUI refuses it
	}
	changed := false
	for id, node := range nodes {
		var inputs map[string]json.RawMessage
		if json.Unmarshal(node["inputs"], &inputs) != nil {
			continue
		}
		raw, set := inputs["filename_prefix"]
		if !set {
			continue
		}
		var prefix string
		if json.Unmarshal(raw, &prefix) != nil {
			// A link to another node's output is not known until it runs: refused, or it could
			// name another user's folder.
			return nil, fmt.Errorf("node %s: filename_prefix: a text value, not a link", id)
		}
		owned, err := isolation.OwnPrefix(folder, prefix)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", id, err)
		}
		inputs["filename_prefix"], _ = json.Marshal(owned)
		node["inputs"], _ = json.Marshal(inputs)
		changed = true
	}
	if !changed {
		return graph, nil
	}
	return json.Marshal(nodes)
}

// prunePrompts forgets the owners of prompts ComfyUI no longer holds (deleted from its history,
// or lost at its restart), older than an hour so that a prompt just queued on another replica is
// never caught between its record and ComfyUI's queue. Nothing is pruned unless both lists were
// read: a prompt whose owner is forgotten is hidden from everyone but admins.
func (s *Server) prunePrompts(ctx context.Context) {
	keep := map[string]bool{}
	for _, l := range []struct {
		path string
		ids  func([]byte) ([]string, error)
	}{{"/api/queue", isolation.QueueIDs}, {"/api/history", isolation.HistoryIDs}} {
		body, err := s.upstreamJSON(ctx, l.path, "")
		if err == nil {
			var ids []string
			if ids, err = l.ids(body); err == nil {
				for _, id := range ids {
					keep[id] = true
				}
			}
		}
		if err != nil {
			s.log.Debug("not pruning prompt owners: ComfyUI's list could not be read", "path", l.path, "error", err)
			return
		}
	}
	n, err := s.db.PrunePrompts(ctx, s.now().Add(-time.Hour), keep)
	if err != nil {
		s.log.Warn("pruning prompt owners failed", "error", err)
	} else if n > 0 {
		s.log.Info("forgot the owners of prompts ComfyUI no longer holds", "prompts", n)
	}
}

// upstreamJSON GETs a ComfyUI route as comfyUser (for a clear or an interrupt).
func (s *Server) upstreamJSON(ctx context.Context, path, comfyUser string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.upstream.String(), "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Comfy-User", comfyUser)
	res, err := s.comfyUsers.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", path, res.Status)
	}
	return io.ReadAll(io.LimitReader(res.Body, maxFilteredBody))
}

// readJSONObject reads a JSON object body (an empty body is an empty object); ok is false when
// it answered 400 or 413.
func readJSONObject(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, map[string]json.RawMessage, bool) {
	body, err := readBody(r, limit)
	if err != nil {
		writeError(w, r, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", "The request body is too large.")
		return nil, nil, false
	}
	doc := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(body)) > 0 && (json.Unmarshal(body, &doc) != nil || doc == nil) {
		writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", "The body must be a JSON object.")
		return nil, nil, false
	}
	return body, doc, true
}

// setJSONBody replaces the request body with doc.
func setJSONBody(r *http.Request, doc map[string]json.RawMessage) {
	b, _ := json.Marshal(doc)
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.Header.Set("Content-Length", strconv.Itoa(len(b)))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Del("Content-Encoding")
}
