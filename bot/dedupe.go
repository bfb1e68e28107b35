package bot

import (
	"sync"
	"time"
)

// dedupe remembers delivery IDs (Socket Mode envelope_id, Events API
// event_id) for a while, so a redelivered envelope is acknowledged again but
// never handled twice. Slack's last retry comes about five minutes after the
// first delivery; the TTL is longer than that.
type dedupe struct {
	mu   sync.Mutex
	ttl  time.Duration
	now  func() time.Time
	seen map[string]time.Time
	next time.Time // when to sweep expired entries
}

func newDedupe(ttl time.Duration, now func() time.Time) *dedupe {
	return &dedupe{ttl: ttl, now: now, seen: map[string]time.Time{}}
}

// first reports whether id is seen for the first time within the TTL, and
// remembers it. An empty id is never a duplicate.
func (d *dedupe) first(id string) bool {
	if id == "" {
		return true
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.After(d.next) {
		for k, at := range d.seen {
			if now.Sub(at) > d.ttl {
				delete(d.seen, k)
			}
		}
		d.next = now.Add(d.ttl / 4)
	}
	if at, ok := d.seen[id]; ok && now.Sub(at) <= d.ttl {
		return false
	}
	d.seen[id] = now
	return true
}
