package authserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// comfyUsers maps mss-login usernames to ComfyUI's --multi-user ids. In that mode ComfyUI
// trusts the comfy-user header but only for ids it knows (users.json: "<name>_<uuid>"), and
// answers any other with an error; so the auth server looks the user up, or creates it, through
// ComfyUI's own /users API the first time it forwards a request for that user. When ComfyUI runs
// without --multi-user, the header is ignored by ComfyUI and the username is sent as is.
type comfyUsers struct {
	upstream string
	client   *http.Client
	ids      sync.Map // username → id
	failed   sync.Map // username → time of the last failed lookup
	mu       sync.Mutex
}

// retryAfter is how long a failed lookup is not repeated: requests meanwhile carry the
// username, without an extra call to ComfyUI each.
const retryAfter = 30 * time.Second

// errRecentFailure says that the lookup failed a moment ago and was not repeated.
var errRecentFailure = fmt.Errorf("lookup failed less than %s ago", retryAfter)

func newComfyUsers(upstream string, transport http.RoundTripper) *comfyUsers {
	return &comfyUsers{upstream: strings.TrimSuffix(upstream, "/"),
		client: &http.Client{Transport: transport, Timeout: 5 * time.Second}}
}

type usersReply struct {
	Users map[string]string `json:"users"` // id → name; absent without --multi-user
}

// id returns the comfy-user value for username (from memory after the first time).
func (c *comfyUsers) id(ctx context.Context, username string) (string, error) {
	if v, ok := c.ids.Load(username); ok {
		return v.(string), nil
	}
	if t, ok := c.failed.Load(username); ok && time.Since(t.(time.Time)) < retryAfter {
		return username, errRecentFailure
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Requests that waited for the lock find the outcome of the lookup they waited for.
	if v, ok := c.ids.Load(username); ok {
		return v.(string), nil
	}
	if t, ok := c.failed.Load(username); ok && time.Since(t.(time.Time)) < retryAfter {
		return username, errRecentFailure
	}
	id, err := c.lookup(ctx, username)
	if err != nil {
		c.failed.Store(username, time.Now())
		return username, err
	}
	c.failed.Delete(username)
	c.ids.Store(username, id)
	return id, nil
}

// comfyUserID is the comfy-user value for username; a failed lookup is logged (once per
// retryAfter) and the username sent meanwhile.
func (s *Server) comfyUserID(ctx context.Context, username string) string {
	id, err := s.comfyUsers.id(ctx, username)
	if err != nil && err != errRecentFailure {
		s.log.Warn("finding the ComfyUI --multi-user id failed; sending the username for 30 s", "user", username, "error", err)
	}
	return id
}

// lookup finds or creates username's id (the username itself without --multi-user).
func (c *comfyUsers) lookup(ctx context.Context, username string) (string, error) {
	users, multi, err := c.list(ctx)
	if err != nil {
		return username, err
	}
	if !multi {
		return username, nil
	}
	if id, ok := find(users, username); ok {
		return id, nil
	}
	id, err := c.create(ctx, username)
	if err != nil {
		// Another replica may have created it a moment ago: look again before giving up.
		if users, _, lerr := c.list(ctx); lerr == nil {
			if id, ok := find(users, username); ok {
				return id, nil
			}
		}
		return username, err
	}
	return id, nil
}

func find(users map[string]string, username string) (string, bool) {
	for id, name := range users {
		if name == username {
			return id, true
		}
	}
	return "", false
}

func (c *comfyUsers) list(ctx context.Context) (map[string]string, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.upstream+"/users", nil)
	if err != nil {
		return nil, false, err
	}
	res, err := c.client.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, false, fmt.Errorf("ComfyUI GET /users: %s", res.Status)
	}
	var reply usersReply
	if err := json.NewDecoder(res.Body).Decode(&reply); err != nil {
		return nil, false, fmt.Errorf("ComfyUI GET /users: %w", err)
	}
	return reply.Users, reply.Users != nil, nil
}

func (c *comfyUsers) create(ctx context.Context, username string) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": username})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.upstream+"/users", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("ComfyUI POST /users: %s", res.Status)
	}
	var id string
	if err := json.NewDecoder(res.Body).Decode(&id); err != nil || id == "" {
		return "", fmt.Errorf("ComfyUI POST /users: no user id in the answer")
	}
	return id, nil
}
