package releasecheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Release is what a feed says about the newest release.
type Release struct {
	Version Version
	Name    string // the version as published, without "v": latest_version and the changelog's file name
	Ref     string // git ref the changelog is read at: the tag as published, or the branch
	URL     string // the release page, when the feed gives one
	Body    string // release notes, when the feed gives them
}

// errMalformed marks a response that is not what the feed should return.
var errMalformed = errors.New("malformed response")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, a...))
}

// ParseReleaseFeed reads a `releases` response that did not come through the GitHub client:
// an object is a GitHub-style release (`tag_name` or `version`, `html_url`, `body`), an array
// a GitLab-style tag list whose highest version wins. That is how the original told them apart.
// includePre admits pre-release tags from a list (see Offered).
func ParseReleaseFeed(body []byte, includePre bool) (Release, error) {
	body = bytes.TrimSpace(body)
	switch {
	case len(body) > 0 && body[0] == '{':
		var r struct {
			TagName string `json:"tag_name"`
			Version string `json:"version"`
			HTMLURL string `json:"html_url"`
			Body    string `json:"body"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return Release{}, malformed("%v", err)
		}
		tag := r.TagName
		if tag == "" {
			tag = r.Version
		}
		v, err := ParseVersion(tag)
		if err != nil {
			return Release{}, malformed("release tag: %v", err)
		}
		return Release{Version: v, Name: published(tag), Ref: tag, URL: r.HTMLURL, Body: r.Body}, nil
	case len(body) > 0 && body[0] == '[':
		var tags []struct {
			Name    string `json:"name"`
			TagName string `json:"tag_name"`
		}
		if err := json.Unmarshal(body, &tags); err != nil {
			return Release{}, malformed("%v", err)
		}
		names := make([]string, 0, len(tags))
		for _, t := range tags {
			if t.Name != "" {
				names = append(names, t.Name)
			} else {
				names = append(names, t.TagName)
			}
		}
		return HighestTag(names, includePre)
	}
	return Release{}, malformed("expected a JSON object or array")
}

// HighestTag picks the highest version among tag names, skipping names that are no version
// (a tag list holds other tags too) and, unless includePre, pre-releases.
func HighestTag(names []string, includePre bool) (Release, error) {
	var best Release
	found := false
	for _, n := range names {
		v, err := ParseVersion(n)
		if err != nil || v.IsPre() && !includePre {
			continue
		}
		if !found || v.Compare(best.Version) > 0 {
			best, found = Release{Version: v, Name: published(n), Ref: n}, true
		}
	}
	if !found {
		return Release{}, malformed("no version among %d tags", len(names))
	}
	return best, nil
}

// versionLine is pyproject.toml's `version = "1.2.3"`, which the original read in branch mode.
var versionLine = regexp.MustCompile(`(?m)^\s*version\s*=\s*["']([^"']+)["']`)

// published is a tag or version string as the original reported it: trimmed, without "v".
func published(s string) string {
	return strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "v"), "V")
}

// ParseBranchVersion reads a `branch` response: JSON `{"version": "…"}` or a `version = "…"`
// line. It returns the parsed version and the string as published.
func ParseBranchVersion(body []byte) (Version, string, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '{' {
		var r struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return Version{}, "", malformed("%v", err)
		}
		if r.Version == "" {
			return Version{}, "", malformed(`no "version" in the JSON object`)
		}
		v, err := ParseVersion(r.Version)
		if err != nil {
			return Version{}, "", malformed("%v", err)
		}
		return v, published(r.Version), nil
	}
	m := versionLine.FindSubmatch(body)
	if m == nil {
		return Version{}, "", malformed(`neither {"version": …} nor a version = "…" line`)
	}
	v, err := ParseVersion(string(m[1]))
	if err != nil {
		return Version{}, "", malformed("%v", err)
	}
	return v, published(string(m[1])), nil
}

// GitHubAPIRelease recognises a GitHub (or GitHub Enterprise) `…/repos/OWNER/REPO/releases/latest`
// URL and splits it into the API base the GitHub client needs and the repository.
func GitHubAPIRelease(checkURL string) (base *url.URL, owner, repo string, ok bool) {
	u, err := url.Parse(checkURL)
	if err != nil || u.Host == "" {
		return nil, "", "", false
	}
	path := strings.TrimSuffix(u.Path, "/")
	i := strings.LastIndex(path, "/repos/")
	if i < 0 {
		return nil, "", "", false
	}
	rest := strings.Split(path[i+len("/repos/"):], "/")
	if len(rest) != 4 || rest[0] == "" || rest[1] == "" || rest[2] != "releases" || rest[3] != "latest" {
		return nil, "", "", false
	}
	base = &url.URL{Scheme: u.Scheme, Host: u.Host, Path: path[:i+1]}
	return base, rest[0], rest[1], true
}

// Repository finds the GitHub OWNER/REPO that the changelog is read from, in the first URL that
// names one: a GitHub API URL (…/repos/OWNER/REPO/…), a raw file URL or a github.com page.
func Repository(urls ...string) (owner, repo string, ok bool) {
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			continue
		}
		segs := strings.Split(strings.Trim(u.Path, "/"), "/")
		if i := slices.Index(segs, "repos"); i >= 0 && i+2 < len(segs) {
			return segs[i+1], segs[i+2], true
		}
		host := strings.ToLower(u.Hostname())
		if (host == "github.com" || host == "raw.githubusercontent.com") && len(segs) >= 2 && segs[0] != "" && segs[1] != "" {
			return segs[0], strings.TrimSuffix(segs[1], ".git"), true
		}
	}
	return "", "", false
}

// ChangelogURL is where the original kept a release's notes:
// <raw base>/OWNER/REPO/<ref>/readme/changelogs/<version>.md, the ref being the tag (releases
// mode) or the branch (branch mode).
func ChangelogURL(rawBase, owner, repo, ref, version string) string {
	return strings.TrimSuffix(rawBase, "/") + "/" + url.PathEscape(owner) + "/" + url.PathEscape(repo) + "/" +
		url.PathEscape(ref) + "/readme/changelogs/" + url.PathEscape(version) + ".md"
}
