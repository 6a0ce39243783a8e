package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mss-login/mss-login/internal/notify/events"
)

// Sink delivers one event somewhere.
type Sink interface {
	// Name identifies the sink's cursor and its metrics: "ntfy", "webhook:<name>".
	Name() string
	// Wants says whether the sink takes events of a kind.
	Wants(kind string) bool
	Send(ctx context.Context, ev Event) error
}

// kinds is a sink's event filter; empty means DefaultKinds.
type kinds map[string]bool

func newKinds(names []string) kinds {
	if len(names) == 0 {
		names = events.DefaultKinds()
	}
	k := kinds{}
	for _, n := range names {
		k[n] = true
	}
	return k
}

func (k kinds) Wants(kind string) bool { return k[kind] }

// Ntfy publishes to an ntfy server as JSON (POST to the server's root with the topic in the
// body, which carries any title without header encoding).
type Ntfy struct {
	BaseURL, Topic string
	Token          string // Bearer; from NTFY_API_KEY or the environment, never the file
	Client         *http.Client
	kinds
}

// NewNtfy makes the ntfy sink; events empty means DefaultKinds.
func NewNtfy(baseURL, topic, token string, events []string, client *http.Client) *Ntfy {
	return &Ntfy{BaseURL: baseURL, Topic: topic, Token: token, Client: client, kinds: newKinds(events)}
}

func (n *Ntfy) Name() string { return "ntfy" }

// ntfyMessage is ntfy's JSON publishing format.
type ntfyMessage struct {
	Topic    string   `json:"topic"`
	Title    string   `json:"title"`
	Message  string   `json:"message"`
	Priority int      `json:"priority,omitempty"`
	Tags     []string `json:"tags,omitempty"`
}

func (n *Ntfy) Send(ctx context.Context, ev Event) error {
	body, err := json.Marshal(ntfyMessage{Topic: n.Topic, Title: ev.Title, Message: ev.Message, Priority: ev.Priority, Tags: ev.Tags})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.BaseURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if n.Token != "" {
		req.Header.Set("Authorization", "Bearer "+n.Token)
	}
	return do(n.Client, req)
}

// Webhook posts the event as JSON (WebhookBody) to a URL, signed with HMAC-SHA256 when a secret
// is set: X-MSS-Login-Signature: sha256=hex(HMAC(secret, timestamp + "." + body)), the
// timestamp (Unix seconds) in X-MSS-Login-Timestamp, so that a receiver can refuse replays.
type Webhook struct {
	Label, URL string
	Secret     []byte
	Client     *http.Client
	kinds
}

// NewWebhook makes a webhook sink; events empty means DefaultKinds.
func NewWebhook(label, url string, secret []byte, events []string, client *http.Client) *Webhook {
	return &Webhook{Label: label, URL: url, Secret: secret, Client: client, kinds: newKinds(events)}
}

func (w *Webhook) Name() string { return "webhook:" + w.Label }

// WebhookVersion is the version of WebhookBody; a change that breaks receivers raises it.
const WebhookVersion = 1

// WebhookBody is the JSON a webhook receives.
type WebhookBody struct {
	Version int    `json:"version"`
	Source  string `json:"source"` // "mss-login"
	Event
}

// Signature is the value of X-MSS-Login-Signature for a body sent at ts.
func Signature(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (w *Webhook) Send(ctx context.Context, ev Event) error {
	body, err := json.Marshal(WebhookBody{Version: WebhookVersion, Source: "mss-login", Event: ev})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mss-login-webhook/1")
	req.Header.Set("X-MSS-Login-Event", ev.Kind)
	req.Header.Set("X-MSS-Login-Delivery", ev.ID)
	req.Header.Set("X-MSS-Login-Timestamp", strconv.FormatInt(ts, 10))
	if len(w.Secret) > 0 {
		req.Header.Set("X-MSS-Login-Signature", Signature(w.Secret, ts, body))
	}
	return do(w.Client, req)
}

// do sends req and wants a 2xx. Errors name the host only: a webhook URL's path or query is
// often its credential (Slack's, Teams').
func do(c *http.Client, req *http.Request) error {
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return &StatusError{Host: req.URL.Host, Code: resp.StatusCode}
	}
	return nil
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Host string
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s answered %d", e.Host, e.Code) }
