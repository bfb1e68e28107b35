package slackfake

import (
	"sync"
	"time"
)

// FastClock is a clock that runs Factor times faster than real time, for
// the bot's pacing timers: with Factor 100 the one-post-per-second limit and
// a "Retry-After: 1" take 10 ms, so tests keep Slack's real intervals and
// still do not wait. Now and After agree with each other.
type FastClock struct {
	Factor float64

	once  sync.Once
	start time.Time
}

// NewFastClock returns a clock running factor times real time.
func NewFastClock(factor float64) *FastClock { return &FastClock{Factor: factor} }

func (c *FastClock) init() { c.once.Do(func() { c.start = time.Now() }) }

// Now is the start plus the real time elapsed since, times Factor.
func (c *FastClock) Now() time.Time {
	c.init()
	return c.start.Add(time.Duration(float64(time.Since(c.start)) * c.Factor))
}

// After fires after d of this clock's time.
func (c *FastClock) After(d time.Duration) <-chan time.Time {
	c.init()
	ch := make(chan time.Time, 1)
	time.AfterFunc(time.Duration(float64(d)/c.Factor), func() { ch <- c.Now() })
	return ch
}
