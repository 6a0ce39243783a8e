package authserver

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mss-login/mss-login/authserver/isolation"
	"github.com/mss-login/mss-login/authserver/policy"
	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// Model grants (docs/authserver.md, "Models"): a user sees and uses only the models granted to
// them (by their role, their ComfyUser, or through the admin API), and S3 models only with
// can_access_s3_storage. Admins and can_view_all_comfyui_items see every model (S3 ones with
// can_access_s3_storage).

// modelView is what one user may see of ComfyUI's models.
type modelView struct {
	all bool // every model of every folder (S3 ones still need s3)
	s3  bool
	set *modelgrant.Set
	sn  *snapshot
}

// modelViewOf is nil for a user who sees every model.
func (s *Server) modelViewOf(id *identity) *modelView {
	v := &modelView{all: seesAll(id), s3: id.isAdmin() || id.can(roles.CanAccessS3Storage), sn: s.cache.get()}
	if v.all && (v.s3 || len(v.sn.s3Models) == 0) {
		return nil
	}
	if !v.all {
		v.set = v.sn.grantSet(id.user)
	}
	return v
}

// visible reports whether the user may see and use the model name of folder. Folders that no
// grant can name (outside modelgrant.Folders) are not restricted.
func (v *modelView) visible(folder, name string) bool {
	folder = modelgrant.Canonical(folder)
	if !modelgrant.KnownFolder(folder) {
		return true
	}
	if !v.s3 && v.sn.s3Models[s3Key{folder, name}] {
		return false
	}
	return v.all || v.set.Allows(folder, name)
}

// key is the same for two users who see the same models.
func (v *modelView) key() string {
	k := "all"
	if !v.all {
		k = v.set.Key()
	}
	return fmt.Sprintf("s3=%t\n%s", v.s3, k)
}

// name tells, for a value of an option list or a prompt input, whether it is a model ComfyUI
// lists (in inv) and whether the user may see it in one of the folders that list it.
func (v *modelView) name(inv *inventory) func(string) (bool, bool) {
	return func(n string) (bool, bool) {
		folders, known := inv.byName[n]
		for _, f := range folders {
			if v.visible(f, n) {
				return true, true
			}
		}
		return known, false
	}
}

// inventory is which models ComfyUI lists in each folder a grant can name, as read from its
// /models listings.
type inventory struct {
	at      time.Time
	byName  map[string][]string // model name → the folders that list it
	version uint64              // moves only when the listings change: filtered answers are cached by it
}

// models keeps the inventory fresh: read at first use, again in the background when older than
// inventoryMaxAge, and at once (at most every inventoryMinAge) when a prompt names what looks
// like a model file that the last reading did not have.
type models struct {
	mu       sync.Mutex // one reading at a time
	cur      atomic.Pointer[inventory]
	busy     atomic.Bool
	versions atomic.Uint64

	// Filtered /object_info answers, by upstream body and model view.
	seed     maphash.Seed
	cacheMu  sync.Mutex
	filtered map[objectInfoKey][]byte
}

type objectInfoKey struct {
	body    uint64
	size    int
	view    string
	folder  string // the user's input folder ("" when their inputs are not filtered)
	comfyUI string // the route: /object_info or /object_info/{node}
}

const (
	inventoryMaxAge  = 5 * time.Second
	inventoryMinAge  = time.Second
	maxFilteredInfos = 64
	inventoryRecord  = 30 * time.Second
)

func (s *Server) inventory(ctx context.Context, fresh bool) (*inventory, error) {
	m := &s.models
	inv := m.cur.Load()
	switch {
	case inv == nil || fresh && time.Since(inv.at) > inventoryMinAge:
		m.mu.Lock()
		defer m.mu.Unlock()
		if now := m.cur.Load(); now != inv {
			return now, nil // read by another request meanwhile
		}
		return s.readInventory(ctx)
	case time.Since(inv.at) > inventoryMaxAge && m.busy.CompareAndSwap(false, true):
		go func() {
			defer m.busy.Store(false)
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			m.mu.Lock()
			defer m.mu.Unlock()
			if _, err := s.readInventory(ctx); err != nil {
				s.log.Warn("reading ComfyUI's model listings failed; the last reading stays", "error", err)
			}
		}()
	}
	return inv, nil
}

// readInventory reads every model listing of ComfyUI (one request per folder, in parallel).
func (s *Server) readInventory(ctx context.Context) (*inventory, error) {
	body, err := s.upstreamJSON(ctx, "/api/models", "")
	if err != nil {
		return nil, err
	}
	var folders []string
	if err := json.Unmarshal(body, &folders); err != nil {
		return nil, fmt.Errorf("GET /api/models: %w", err)
	}
	inv := &inventory{at: time.Now(), byName: map[string][]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed error
	for _, f := range folders {
		if !modelgrant.KnownFolder(modelgrant.Canonical(f)) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, err := s.upstreamJSON(ctx, "/api/models/"+url.PathEscape(f), "")
			var names []string
			if err == nil {
				err = json.Unmarshal(body, &names)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = fmt.Errorf("GET /api/models/%s: %w", f, err)
				return
			}
			for _, n := range names {
				inv.byName[n] = append(inv.byName[n], modelgrant.Canonical(f))
			}
		}()
	}
	wg.Wait()
	if failed != nil {
		return nil, failed
	}
	for _, fs := range inv.byName {
		slices.Sort(fs) // the readings finish in any order
	}
	prev := s.models.cur.Load()
	changed := prev == nil || !sameInventory(prev, inv)
	if changed {
		inv.version = s.models.versions.Add(1)
	} else {
		inv.version = prev.version // a reading every 5 s keeps the cached answers while nothing changed
	}
	s.models.cur.Store(inv)
	if changed {
		// For the operator, which counts what each grant matches (it cannot reach ComfyUI).
		var listed []store.ListedModel
		for n, folders := range inv.byName {
			for _, f := range folders {
				listed = append(listed, store.ListedModel{Folder: f, Name: n})
			}
		}
		if err := s.db.SetListedModels(context.WithoutCancel(ctx), store.SourceComfyUI, listed); err != nil {
			s.log.Warn("recording ComfyUI's model listings failed", "error", err)
		}
	}
	return inv, nil
}

func sameInventory(a, b *inventory) bool {
	if len(a.byName) != len(b.byName) {
		return false
	}
	for n, fs := range a.byName {
		if !slices.Equal(fs, b.byName[n]) {
			return false
		}
	}
	return true
}

// checkPromptModels refuses (403 MODEL_NOT_ALLOWED, naming the node, the input and the model)
// a prompt that names a model its user may not use. It returns false when it answered.
func (s *Server) checkPromptModels(w http.ResponseWriter, r *http.Request, v *modelView, graph json.RawMessage) bool {
	for _, fresh := range []bool{false, true} {
		inv, err := s.inventory(r.Context(), fresh)
		if err != nil {
			s.log.Warn("reading ComfyUI's model listings failed", "error", err)
			writeError(w, r, http.StatusBadGateway, "UPSTREAM_UNAVAILABLE", "Could not read ComfyUI's model listings to check the prompt.")
			return false
		}
		refused, unknown, err := isolation.PromptModels(graph, v.name(inv))
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "BAD_PROMPT", "prompt: an object of nodes")
			return false
		}
		if refused != nil {
			writeJSON(w, http.StatusForbidden, map[string]any{"code": "MODEL_NOT_ALLOWED",
				"error": fmt.Sprintf("Node %s (%s) input %q names the model %q, which is not granted to you.",
					refused.Node, refused.ClassType, refused.Input, refused.Model),
				"node": refused.Node, "class_type": refused.ClassType, "input": refused.Input, "model": refused.Model})
			return false
		}
		if !unknown {
			return true
		}
	}
	return true // still unknown after a fresh reading: not a model ComfyUI lists
}

// modelFile is the folder and the model of a request that reads one model's file
// (/view_metadata/{folder}?filename=, /experiment/models/preview/{folder}/{i}/{file}).
func modelFile(kind comfyRoute, rq *request) (folder, name string) {
	segs := strings.Split(strings.TrimPrefix(rq.path.Forward, "/"), "/")
	unescape := func(s string) string { u, _ := url.PathUnescape(s); return u }
	for i, seg := range segs {
		switch {
		case kind == routeViewMetadata && strings.EqualFold(seg, "view_metadata") && i+1 < len(segs):
			return unescape(segs[i+1]), cleanModelName(rq.query.Get("filename"))
		case kind == routeModelPreview && strings.EqualFold(seg, "preview") && i+3 < len(segs):
			return unescape(segs[i+1]), cleanModelName(unescape(strings.Join(segs[i+3:], "/")))
		}
	}
	return "", ""
}

// cleanModelName is the name ComfyUI finds a model file by (folder_paths.get_full_path:
// relative to the folder, "." and ".." resolved).
func cleanModelName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+strings.ReplaceAll(n, "\\", "/")), "/")
}

// filterModelList keeps the visible models of a /models/{folder}, /experiment/models/{folder}
// or /embeddings answer.
func (s *Server) filterModelList(rq *request, body []byte) ([]byte, error) {
	v := rq.models
	route, _ := policy.Route(rq.path.Match)
	if rq.filter == routeEmbeddings {
		// Names without their extension: visible when one of the files of that name is.
		inv, err := s.inventory(context.Background(), false)
		if err != nil {
			return nil, err
		}
		ok := map[string]bool{}
		for n, folders := range inv.byName {
			for _, f := range folders {
				if f == "embeddings" && v.visible(f, n) {
					ok[strings.TrimSuffix(n, path.Ext(n))] = true
				}
			}
		}
		var names []string
		if err := json.Unmarshal(body, &names); err != nil {
			return nil, err
		}
		out := []string{}
		for _, n := range names {
			if ok[n] {
				out = append(out, n)
			}
		}
		return json.Marshal(out)
	}
	folder := path.Base(route)
	if rq.filter == routeModelList {
		var names []string
		if err := json.Unmarshal(body, &names); err != nil {
			return nil, err
		}
		out := []string{}
		for _, n := range names {
			if v.visible(folder, n) {
				out = append(out, n)
			}
		}
		return json.Marshal(out)
	}
	var items []json.RawMessage // /experiment/models/{folder}: [{"name", "pathIndex"}]
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, err
	}
	out := []json.RawMessage{}
	for _, it := range items {
		var m struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(it, &m) == nil && v.visible(folder, m.Name) {
			out = append(out, it)
		}
	}
	return json.Marshal(out)
}

// filterObjectInfo rewrites an /object_info answer for one user: their own input files (unless
// they see everyone's) and the models they may see. Answers are cached by upstream body and
// model view, so a user whose grants did not change gets the answer that was built before.
func (s *Server) filterObjectInfo(ctx context.Context, rq *request, body []byte) ([]byte, error) {
	o := isolation.Options{}
	key := objectInfoKey{body: maphash.Bytes(s.models.seed, body), size: len(body), comfyUI: rq.path.Match}
	if !seesAll(rq.id) {
		key.folder = isolation.UserFolder(rq.id.user.Username, rq.id.user.ID)
		o.Inputs = isolation.InUserFolder(key.folder)
	}
	if rq.models != nil {
		inv, err := s.inventory(ctx, false)
		if err != nil {
			return nil, err
		}
		key.view = fmt.Sprintf("%d %p\n%s", inv.version, rq.models.sn.s3Models, rq.models.key()) // new listings build anew
		o.Models = rq.models.name(inv)
	}
	s.models.cacheMu.Lock()
	out, ok := s.models.filtered[key]
	s.models.cacheMu.Unlock()
	if ok {
		return out, nil
	}
	out, err := isolation.FilterObjectInfo(body, o)
	if err != nil {
		return nil, err
	}
	s.models.cacheMu.Lock()
	if len(s.models.filtered) >= maxFilteredInfos {
		clear(s.models.filtered) // bounded: start over rather than track age
	}
	s.models.filtered[key] = out
	s.models.cacheMu.Unlock()
	return out, nil
}
