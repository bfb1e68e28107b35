// Package windowstest has what tests of maintenance windows share: a fake
// clock that tests move by hand, and the conformance suite every
// windows.Store implementation passes.
package windowstest

import (
	"context"
	"sync"
	"time"
)

// Clock is a fake clock: time stands still until Set or Advance moves it,
// which fires every After whose deadline has come. Safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []timer
	added  chan struct{} // closed and replaced when a timer is added
}

type timer struct {
	at time.Time
	ch chan time.Time
}

// NewClock returns a fake clock showing now.
func NewClock(now time.Time) *Clock {
	return &Clock{now: now, added: make(chan struct{})}
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives the fake time once the clock has
// been moved d past now; at once if d <= 0.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, timer{at: c.now.Add(d), ch: ch})
	close(c.added)
	c.added = make(chan struct{})
	return ch
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Set moves the clock to t (backwards too, which fires nothing) and fires
// the timers that are due.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if !tm.at.After(t) {
			tm.ch <- t
			continue
		}
		kept = append(kept, tm)
	}
	c.timers = kept
}

// Waiters returns how many Afters are pending.
func (c *Clock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextTimer returns the earliest pending deadline, and false if none.
func (c *Clock) NextTimer() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best time.Time
	for _, tm := range c.timers {
		if best.IsZero() || tm.at.Before(best) {
			best = tm.at
		}
	}
	return best, !best.IsZero()
}

// WaitWaiters blocks until at least n Afters are pending or ctx ends, so
// that a test can move the clock once the code under test is waiting.
func (c *Clock) WaitWaiters(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		have, added := len(c.timers), c.added
		c.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-added:
		}
	}
}

// WaitTimer blocks until an After with the deadline at is pending or ctx
// ends: the code under test has decided to sleep until at.
func (c *Clock) WaitTimer(ctx context.Context, at time.Time) error {
	for {
		c.mu.Lock()
		found := false
		for _, tm := range c.timers {
			if tm.at.Equal(at) {
				found = true
				break
			}
		}
		added := c.added
		c.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-added:
		}
	}
}
