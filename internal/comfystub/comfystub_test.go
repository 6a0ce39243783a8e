package comfystub

import (
	"net/http/httptest"
	"testing"
)

// Count counts every request, also after the kept list is cut.
func TestCountPastTheKeptRequests(t *testing.T) {
	s := New()
	for range 1500 {
		s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/queue", nil))
	}
	if got := s.Count(); got != 1500 {
		t.Fatalf("Count() = %d, want 1500", got)
	}
	if s.Last().Path != "/api/queue" {
		t.Fatalf("Last() = %+v", s.Last())
	}
}
