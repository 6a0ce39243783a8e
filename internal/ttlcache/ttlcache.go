// Package ttlcache owns the small time-limited caches of the controllers: a map whose values
// are served while they are younger than the cache's time to live and were stored for the same
// version of their object (its generation), so that a burst of events does not become a burst
// of requests. Expired entries stay until they are replaced or deleted.
package ttlcache

import (
	"sync"
	"time"
)

// Cache maps keys to values that expire. Its methods are safe for concurrent use.
type Cache[K comparable, V any] struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[K]entry[V]
}

type entry[V any] struct {
	version int64
	at      time.Time
	value   V
}

// New returns an empty cache whose values live for ttl.
func New[K comparable, V any](ttl time.Duration) *Cache[K, V] {
	return &Cache[K, V]{ttl: ttl, now: time.Now, m: map[K]entry[V]{}}
}

// Get returns the value stored for key at version, if it is younger than the time to live.
func (c *Cache[K, V]) Get(key K, version int64) (V, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || e.version != version || c.now().Sub(e.at) >= c.ttl {
		var zero V
		return zero, false
	}
	return e.value, true
}

// Put stores value for key at version, replacing what was there; its age starts now.
func (c *Cache[K, V]) Put(key K, version int64, value V) {
	c.mu.Lock()
	c.m[key] = entry[V]{version: version, at: c.now(), value: value}
	c.mu.Unlock()
}

// Delete forgets key.
func (c *Cache[K, V]) Delete(key K) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}
