package releasecheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v60/github"
)

const (
	// requestTimeout bounds every request, as the original's 10 s (Options.Timeout changes it).
	requestTimeout = 10 * time.Second
	// maxFeedBytes caps what is read of a feed: a tag list of thousands of tags fits.
	maxFeedBytes = 4 << 20
	// MaxChangelogBytes caps the changelog kept in the database and served to admins.
	MaxChangelogBytes = 64 << 10
)

// newHTTPClient returns the client for every request of a check. The token, when set, goes
// only to the hosts the operator configured (the feed and the raw changelog host); a redirect
// elsewhere gets no credentials because the transport, not the request, adds them.
func newHTTPClient(timeout time.Duration, token string, hosts ...string) *http.Client {
	if timeout <= 0 {
		timeout = requestTimeout
	}
	var rt http.RoundTripper = http.DefaultTransport.(*http.Transport).Clone() // keeps HTTPS_PROXY
	if token != "" {
		allowed := map[string]bool{}
		for _, h := range hosts {
			if u, err := url.Parse(h); err == nil && u.Host != "" {
				allowed[strings.ToLower(u.Host)] = true
			}
		}
		rt = &authTransport{base: rt, token: token, hosts: allowed}
	}
	return &http.Client{Timeout: timeout, Transport: rt}
}

type authTransport struct {
	base  http.RoundTripper
	token string
	hosts map[string]bool
}

func (t *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !t.hosts[strings.ToLower(r.URL.Host)] || r.Header.Get("Authorization") != "" {
		return t.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	// Bearer works for GitHub, GitHub Enterprise and GitLab personal access tokens alike.
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.base.RoundTrip(r)
}

// httpStatusError is a non-2xx answer from a plain GET.
type httpStatusError struct {
	URL       string
	Status    int
	RateLimit bool // 403/429 carrying rate-limit headers
}

func (e *httpStatusError) Error() string {
	if e.RateLimit {
		return fmt.Sprintf("rate limited (HTTP %d) at %s", e.Status, e.URL)
	}
	return fmt.Sprintf("HTTP %d at %s", e.Status, e.URL)
}

// get fetches rawURL, reading at most limit bytes; truncated reports that there was more.
func get(ctx context.Context, c *http.Client, rawURL string, limit int64) (body []byte, truncated bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Accept", "application/json, text/plain;q=0.9, */*;q=0.5")
	req.Header.Set("User-Agent", "mss-login-release-check")
	resp, err := c.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
		limited := (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests) &&
			(resp.Header.Get("X-RateLimit-Remaining") == "0" || resp.Header.Get("RateLimit-Remaining") == "0" ||
				resp.Header.Get("Retry-After") != "")
		return nil, false, &httpStatusError{URL: redact(rawURL), Status: resp.StatusCode, RateLimit: limited}
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(body)) > limit {
		return body[:limit], true, nil
	}
	return body, false, nil
}

// latestFromGitHub asks a GitHub (Enterprise) API for the latest release through go-github.
// GitHub's "latest" is never a draft or a pre-release.
func latestFromGitHub(ctx context.Context, c *http.Client, base *url.URL, owner, repo string) (Release, error) {
	gh := github.NewClient(c)
	gh.BaseURL = base
	gh.UserAgent = "mss-login-release-check"
	rel, _, err := gh.Repositories.GetLatestRelease(ctx, owner, repo)
	if err != nil {
		return Release{}, err
	}
	tag := rel.GetTagName()
	v, err := ParseVersion(tag)
	if err != nil {
		return Release{}, malformed("release tag: %v", err)
	}
	return Release{Version: v, Name: published(tag), Ref: tag, URL: rel.GetHTMLURL(), Body: rel.GetBody()}, nil
}

// capText cuts s to at most limit bytes on a character boundary and says so.
func capText(s string, truncated bool, limit int) string {
	if len(s) > limit {
		s, truncated = s[:limit], true
	}
	if !truncated {
		return s
	}
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "\n\n… (truncated)"
}

// Summary turns a failed check into one short line for the log and the stored status. It
// names the kind of failure and the host, never a credential: the token travels in a header,
// and URLs lose their user info and query.
func Summary(err error) string {
	var rl *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	var ghErr *github.ErrorResponse
	var st *httpStatusError
	var netErr net.Error
	switch {
	case errors.As(err, &rl):
		return fmt.Sprintf("rate limited by %s until %s", hostOf(rl.Response), rl.Rate.Reset.UTC().Format(time.RFC3339))
	case errors.As(err, &abuse):
		return fmt.Sprintf("rate limited by %s (secondary limit)", hostOf(abuse.Response))
	case errors.As(err, &ghErr):
		if ghErr.Response != nil {
			return fmt.Sprintf("HTTP %d at %s", ghErr.Response.StatusCode, redactURL(ghErr.Response.Request.URL))
		}
		return "GitHub error: " + ghErr.Message
	case errors.As(err, &st):
		return st.Error()
	case errors.Is(err, errMalformed):
		return err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "no answer in time"
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		// Offline, DNS, refused: the inner error without the URL, which url.Error repeats.
		return fmt.Sprintf("unreachable: %s %s", redact(uerr.URL), innermost(uerr.Err))
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "malformed response: " + err.Error() // go-github decodes the JSON itself
	}
	return err.Error()
}

func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

func hostOf(r *http.Response) string {
	if r == nil || r.Request == nil {
		return "the server"
	}
	return r.Request.URL.Host
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	return redactURL(u)
}

func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User, c.RawQuery, c.Fragment = nil, "", ""
	return c.String()
}
