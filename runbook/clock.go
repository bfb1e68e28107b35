package runbook

import "time"

// Clock is where the engine gets the time. Tests that check timing rules
// use their own; everything else uses RealClock.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// RealClock is the system clock.
type RealClock struct{}

// Now returns the current time.
func (RealClock) Now() time.Time { return time.Now() }

// After waits for d to pass and then sends the time on the channel.
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
