// Package isolation holds the pure parts of keeping ComfyUI users apart behind the proxy: which
// prompt ids a ComfyUI answer names, and the answer with only the entries a user may see. The
// JSON is filtered as it is, in its order, without decoding what is kept.
package isolation

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
)

// errShape: the answer is not shaped as this ComfyUI route answers.
var errShape = errors.New("unexpected ComfyUI answer")

// HistoryIDs lists the prompt ids of a GET /history (or /history/{id}) answer: an object keyed
// by prompt id.
func HistoryIDs(body []byte) ([]string, error) {
	var ids []string
	err := eachMember(body, func(key string, _ json.RawMessage) { ids = append(ids, key) })
	return ids, err
}

// FilterHistory keeps the members of a history answer whose prompt id keep accepts.
func FilterHistory(body []byte, keep func(id string) bool) ([]byte, error) {
	return rewriteObject(body, func(id string, v json.RawMessage) (json.RawMessage, error) {
		if keep(id) {
			return v, nil
		}
		return nil, nil
	})
}

// queueItemID is the prompt id of a queue entry: [number, prompt_id, prompt, extra_data, outputs].
// Only the first two elements are read: the prompt graph after them can be large.
func queueItemID(item json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(item))
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return ""
	}
	var number json.RawMessage
	if dec.Decode(&number) != nil {
		return ""
	}
	var id string
	if dec.Decode(&id) != nil {
		return ""
	}
	return id
}

// Queue is a GET /queue answer ({"queue_running": [...], "queue_pending": [...]}), split once
// into its entries and their prompt ids. Other members, which ComfyUI does not send, are dropped.
type Queue struct {
	lists [2]queueList
}

type queueList struct {
	key   string
	items []json.RawMessage
	ids   []string
}

// SplitQueue reads a queue answer: one pass of the JSON parser over the entries, then only the
// first two elements of each.
func SplitQueue(body []byte) (*Queue, error) {
	var raw struct {
		Running *[]json.RawMessage `json:"queue_running"`
		Pending *[]json.RawMessage `json:"queue_pending"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || raw.Running == nil || raw.Pending == nil {
		return nil, errShape
	}
	q := &Queue{lists: [2]queueList{{key: "queue_running", items: *raw.Running}, {key: "queue_pending", items: *raw.Pending}}}
	for i := range q.lists {
		for _, it := range q.lists[i].items {
			q.lists[i].ids = append(q.lists[i].ids, queueItemID(it))
		}
	}
	return q, nil
}

// IDs lists the prompt ids of the entries.
func (q *Queue) IDs() []string {
	return append(append([]string{}, q.lists[0].ids...), q.lists[1].ids...)
}

// Running lists the prompt ids of the running entries.
func (q *Queue) Running() []string { return q.lists[0].ids }

// Filter writes the answer with the entries whose prompt id keep accepts.
func (q *Queue) Filter(keep func(id string) bool) []byte {
	var out bytes.Buffer
	out.WriteByte('{')
	for i, l := range q.lists {
		if i > 0 {
			out.WriteByte(',')
		}
		out.WriteString(`"` + l.key + `":`)
		out.Write(keptArray(l.items, func(j int) bool { return keep(l.ids[j]) }))
	}
	out.WriteByte('}')
	return out.Bytes()
}

// QueueIDs lists the prompt ids of a GET /queue answer.
func QueueIDs(body []byte) ([]string, error) {
	q, err := SplitQueue(body)
	if err != nil {
		return nil, err
	}
	return q.IDs(), nil
}

// FilterQueue keeps the queue entries whose prompt id keep accepts; other members stay as they are.
func FilterQueue(body []byte, keep func(id string) bool) ([]byte, error) {
	q, err := SplitQueue(body)
	if err != nil {
		return nil, err
	}
	return q.Filter(keep), nil
}

// jobID is the id of a job of GET /api/jobs: {"id": …}.
func jobID(item json.RawMessage) string {
	var j struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(item, &j)
	return j.ID
}

// JobsIDs lists the job (prompt) ids of a GET /api/jobs answer ({"jobs": [...], "pagination": …}).
func JobsIDs(body []byte) ([]string, error) {
	var ids []string
	err := eachMember(body, func(key string, v json.RawMessage) {
		var items []json.RawMessage
		if key == "jobs" && json.Unmarshal(v, &items) == nil {
			for _, it := range items {
				ids = append(ids, jobID(it))
			}
		}
	})
	return ids, err
}

// FilterJobs keeps the jobs whose id keep accepts (pagination is ComfyUI's, over everyone's).
func FilterJobs(body []byte, keep func(id string) bool) ([]byte, error) {
	return rewriteObject(body, func(key string, v json.RawMessage) (json.RawMessage, error) {
		if key != "jobs" {
			return v, nil
		}
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, errShape
		}
		return keptArray(items, func(i int) bool { return keep(jobID(items[i])) }), nil
	})
}

// rewriteObject writes the JSON object body anew, in its order, each member's value as f
// returns it (nil drops the member); an error from f fails the whole.
func rewriteObject(body []byte, f func(key string, v json.RawMessage) (json.RawMessage, error)) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(body))
	out.WriteByte('{')
	n := 0
	var bad error
	err := eachMember(body, func(key string, v json.RawMessage) {
		nv, err := f(key, v)
		if err != nil {
			bad = err
		}
		if err != nil || nv == nil {
			return
		}
		if n > 0 {
			out.WriteByte(',')
		}
		n++
		k, _ := json.Marshal(key)
		out.Write(k)
		out.WriteByte(':')
		out.Write(nv)
	})
	out.WriteByte('}')
	if err == nil {
		err = bad
	}
	return out.Bytes(), err
}

// keptArray is the JSON array of the items whose index keep accepts.
func keptArray(items []json.RawMessage, keep func(i int) bool) json.RawMessage {
	var out bytes.Buffer
	out.WriteByte('[')
	n := 0
	for i, it := range items {
		if !keep(i) {
			continue
		}
		if n > 0 {
			out.WriteByte(',')
		}
		n++
		out.Write(it)
	}
	out.WriteByte(']')
	return out.Bytes()
}

// eachMember calls f with every member of the JSON object body, in order; each value is a
// slice of body. One validating pass, then one pass of the byte reader (scan.go): a 5 MB answer
// is split without decoding its members.
func eachMember(body []byte, f func(key string, v json.RawMessage)) error {
	if !json.Valid(body) {
		return errShape
	}
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return errShape
	}
	i = skipSpace(body, i+1)
	for i < len(body) && body[i] != '}' {
		end, esc := stringEnd(body, i) // valid JSON: a key
		key := stringValue(body, i, end, esc)
		i = skipSpace(body, skipSpace(body, end)+1) // past the colon
		vend := valueEnd(body, i)
		f(key, body[i:vend:vend])
		i = skipSpace(body, vend)
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
	}
	return nil
}

// ClientIDPrefix is the part of every ComfyUI client id that names its user: ComfyUI sends a
// prompt's progress, previews and results to the socket whose clientId the prompt names, and
// trusts whatever id a browser picks. The proxy puts the caller's prefix on every id it
// forwards, so no user's id can equal another's.
func ClientIDPrefix(userID string) string {
	h := sha256.Sum256([]byte("mss-login-client-id\x00" + userID))
	return "mssl" + hex.EncodeToString(h[:8]) + "-"
}

// ClientID is the id forwarded for the one a user's client gave: kept when it already carries
// the user's prefix (ComfyUI sent it back), prefixed otherwise, a new one when there is none.
func ClientID(userID, given, fresh string) string {
	p := ClientIDPrefix(userID)
	switch {
	case strings.HasPrefix(given, p):
		return truncate(given, 128)
	case given == "":
		return p + fresh
	}
	return truncate(p+given, 128)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
