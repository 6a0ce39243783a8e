package authserver

import (
	"strings"
	"testing"
	"time"
)

func TestParseNews(t *testing.T) {
	src := "intro ignored\n## 2026-11-20 Upgrade tonight\nComfyUI restarts\nat 22:00.\n\n## 2026-13-01 Bad date\nskipped\n## 2026-11-01\n<b>plain</b>\n## not a date\nx"
	items := parseNews(src)
	if len(items) != 2 {
		t.Fatalf("%d items: %+v", len(items), items)
	}
	if items[0].Title != "Upgrade tonight" || items[0].Body != "ComfyUI restarts at 22:00." || !items[0].Date.Equal(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("first item %+v", items[0])
	}
	if items[1].Title != "2026-11-01" || items[1].Body != "<b>plain</b>" {
		t.Errorf("untitled item %+v (the body is escaped when written, not here)", items[1])
	}
	long := "## 2026-01-01 L\n" + strings.Repeat("é", 2500)
	if got := parseNews(long)[0].Body; len([]rune(got)) != 2000 {
		t.Errorf("body not capped at 2000 characters: %d", len([]rune(got)))
	}
}
