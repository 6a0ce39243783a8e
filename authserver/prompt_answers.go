package authserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mss-login/mss-login/authserver/isolation"
)

// ComfyUI's answers kept to the caller's prompts: temporary previews, and the queue, history
// and job answers the proxy filters (see prompts.go).

// previews knows which prompt made each temporary preview and which prompt runs, from
// ComfyUI's history and queue, read again when a preview is asked for that the last reading
// did not name (at most every previewsRefresh) and at least every previewsMaxAge.
type previews struct {
	mu      sync.Mutex // one reading at a time; the others wait for it
	at      time.Time
	files   map[string][]string // preview key → prompt ids
	running []string
}

const (
	previewsRefresh = 250 * time.Millisecond
	previewsMaxAge  = 5 * time.Second
)

// madeBy reports whether the preview key is the user's: named in the outputs of one of their
// prompts or, not yet in the history, made while one of their prompts runs. That last case is
// the known limit (docs/authserver.md): while a user's prompt runs, a preview of another's that
// they guessed the random name of would be served.
func (p *previews) madeBy(ctx context.Context, s *Server, key, user string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, named := p.files[key]
	if age := time.Since(p.at); age > previewsMaxAge || !named && age > previewsRefresh {
		history, err := s.upstreamJSON(ctx, "/api/history", "")
		if err != nil {
			return false, err
		}
		queue, err := s.upstreamJSON(ctx, "/api/queue", "")
		if err != nil {
			return false, err
		}
		files, err := isolation.TempFiles(history)
		if err != nil {
			return false, err
		}
		q, err := isolation.SplitQueue(queue)
		if err != nil {
			return false, err
		}
		p.files, p.running, p.at = files, q.Running(), time.Now()
	}
	ids := p.running
	if made, ok := p.files[key]; ok {
		ids = made
	}
	own, err := s.prompts.ownedBy(ctx, ids, user)
	return len(own) > 0, err
}

// errFilter fails a filtered answer closed: nothing of it reaches the client.
var errFilter = errors.New("filtering the ComfyUI answer failed")

// filterAnswer is the proxy's ModifyResponse: a queue, history or job answer keeps only the
// caller's prompts.
func (s *Server) filterAnswer(resp *http.Response) error {
	rq, ok := resp.Request.Context().Value(ctxKey{}).(*request)
	if !ok || rq.filter == routeOther || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFilteredBody+1))
	resp.Body.Close()
	if err != nil || len(body) > maxFilteredBody {
		return fmt.Errorf("%w: reading it: %v", errFilter, err)
	}
	if rq.filter == routeExtensions {
		var list []string
		if err := json.Unmarshal(body, &list); err != nil {
			return fmt.Errorf("%w: %v", errFilter, err)
		}
		out, _ := json.Marshal(append(list, frontendExtension))
		setBody(resp, out)
		return nil
	}
	switch rq.filter {
	case routeObjectInfo:
		// Loader nodes list the input directory's files (only the caller's) and the models.
		out, err := s.filterObjectInfo(resp.Request.Context(), rq, body)
		if err != nil {
			return fmt.Errorf("%w: %v", errFilter, err)
		}
		setBody(resp, out)
		return nil
	case routeModelList, routeModelItems, routeEmbeddings:
		out, err := s.filterModelList(rq, body)
		if err != nil {
			return fmt.Errorf("%w: %v", errFilter, err)
		}
		setBody(resp, out)
		return nil
	}
	var ids []string
	filter := isolation.FilterHistory
	switch rq.filter {
	case routeGetQueue:
		var q *isolation.Queue
		if q, err = isolation.SplitQueue(body); err == nil {
			ids = q.IDs()
			filter = func(_ []byte, keep func(string) bool) ([]byte, error) { return q.Filter(keep), nil } // split once
		}
	case routeGetHistory:
		ids, err = isolation.HistoryIDs(body)
	case routeGetJobs:
		ids, err = isolation.JobsIDs(body)
		filter = isolation.FilterJobs
	case routeGetJob:
		var j struct {
			ID string `json:"id"`
		}
		err = json.Unmarshal(body, &j)
		ids = []string{j.ID}
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errFilter, err)
	}
	owners, err := s.prompts.owners(resp.Request.Context(), ids)
	if err != nil {
		return fmt.Errorf("%w: %v", errFilter, err)
	}
	keep := func(id string) bool { return id != "" && owners[id] == rq.id.user.ID }
	var out []byte
	if rq.filter == routeGetJob {
		out = body
		if !keep(ids[0]) {
			resp.StatusCode, resp.Status = http.StatusNotFound, "404 Not Found"
			out = []byte(`{"error": "Job not found"}`)
		}
	} else if out, err = filter(body, keep); err != nil {
		return fmt.Errorf("%w: %v", errFilter, err)
	}
	setBody(resp, out)
	return nil
}

// setBody replaces an answer's body.
func setBody(resp *http.Response, out []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.Header.Del("Content-Encoding")
}
