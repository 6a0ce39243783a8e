package authserver

import (
	"encoding/xml"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// News (experimental): DATA_DIR/news.md as RSS 2.0 at the original's path, and on the login page.
// Format: "## YYYY-MM-DD Optional title", then the body up to the next "##".

type newsItem struct {
	Title string
	Date  time.Time
	Body  string
}

var newsHeading = regexp.MustCompile(`^##\s+(\d{4}-\d{2}-\d{2})\s*(.*)$`)

// parseNews reads news.md: newlines in a body collapse to spaces, bodies are cut at 2,000
// characters, headings with a bad date are skipped (with their body).
func parseNews(src string) []newsItem {
	var items []newsItem
	var cur *newsItem
	var body []string
	flush := func() {
		if cur != nil {
			b := strings.Join(strings.Fields(strings.Join(body, " ")), " ")
			if r := []rune(b); len(r) > 2000 {
				b = string(r[:2000])
			}
			cur.Body = b
			items = append(items, *cur)
		}
		cur, body = nil, nil
	}
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(line, "##") {
			flush()
			m := newsHeading.FindStringSubmatch(strings.TrimSpace(line))
			if m == nil {
				continue
			}
			d, err := time.Parse("2006-01-02", m[1])
			if err != nil {
				continue
			}
			title := strings.TrimSpace(m[2])
			if title == "" {
				title = m[1]
			}
			cur = &newsItem{Title: title, Date: d}
			continue
		}
		if cur != nil {
			body = append(body, line)
		}
	}
	flush()
	return items
}

type rssDoc struct {
	XMLName xml.Name   `xml:"rss"`
	Version string     `xml:"version,attr"`
	Atom    string     `xml:"xmlns:atom,attr"`
	Channel rssChannel `xml:"channel"`
}

type rssChannel struct {
	Title       string    `xml:"title"`
	Link        string    `xml:"link"`
	Description string    `xml:"description"`
	AtomLink    atomLink  `xml:"atom:link"`
	Items       []rssItem `xml:"item"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr"`
}

type rssItem struct {
	Title       string `xml:"title"`
	PubDate     string `xml:"pubDate"`
	Description string `xml:"description"`
}

func (s *Server) newsEnabled() bool { return s.cfg.ExperimentalFeatures && s.cfg.Experimental.News }

func (s *Server) newsItems() []newsItem {
	if !s.newsEnabled() {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, "news.md"))
	if err != nil {
		return nil
	}
	return parseNews(string(b))
}

func (s *Server) handleNewsFeed(w http.ResponseWriter, r *http.Request) {
	items := s.newsItems()
	if len(items) == 0 {
		writeError(w, r, http.StatusNotFound, "NOT_FOUND", "No news.")
		return
	}
	link := s.hostBase()
	if link == "" {
		scheme := "http"
		if reqInfo(r).https {
			scheme = "https"
		}
		link = scheme + "://" + r.Host
	}
	doc := rssDoc{Version: "2.0", Atom: "http://www.w3.org/2005/Atom", Channel: rssChannel{
		Title: "Server News", Link: link, Description: "ComfyUI server news and announcements.",
		AtomLink: atomLink{Href: strings.TrimSuffix(link, "/") + "/mss-login/api/news/feed.xml", Rel: "self", Type: "application/rss+xml"},
	}}
	for _, it := range items {
		doc.Channel.Items = append(doc.Channel.Items, rssItem{Title: it.Title, PubDate: it.Date.UTC().Format(time.RFC1123Z),
			Description: it.Body})
	}
	w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
	_, _ = w.Write([]byte(xml.Header))
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	_ = enc.Encode(doc)
}
