package ttlcache

import (
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New[string, int](time.Minute)
	c.now = func() time.Time { return now }

	if _, ok := c.Get("a", 1); ok {
		t.Fatal("a value in an empty cache")
	}
	c.Put("a", 1, 42)
	if v, ok := c.Get("a", 1); !ok || v != 42 {
		t.Fatalf("Get = %d, %v; want 42, true", v, ok)
	}
	if _, ok := c.Get("a", 2); ok {
		t.Fatal("a value stored for version 1 served for version 2")
	}
	now = now.Add(time.Minute - time.Nanosecond)
	if _, ok := c.Get("a", 1); !ok {
		t.Fatal("expired before its time to live")
	}
	now = now.Add(time.Nanosecond)
	if _, ok := c.Get("a", 1); ok {
		t.Fatal("served at its time to live")
	}
	c.Put("a", 2, 7) // a new version replaces the old, with a new age
	if v, ok := c.Get("a", 2); !ok || v != 7 {
		t.Fatalf("Get after replace = %d, %v", v, ok)
	}
	c.Delete("a")
	if _, ok := c.Get("a", 2); ok {
		t.Fatal("served after Delete")
	}
}
