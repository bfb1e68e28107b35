package runbook

import (
	"testing"
	"time"
)

// Finish hands the reader every event queued before it, in order, then
// closes C; nothing published after Finish arrives. A reader that has not
// read at all still gets everything.
func TestSubscriptionFinishDeliversWhatIsQueued(t *testing.T) {
	t.Parallel()
	b := newBus()
	s := b.subscribe()
	const n = 1000
	for i := range n {
		b.publish(Event{Kind: EventRunUpdated, Run: &Run{Version: int64(i)}})
	}
	s.Finish()
	b.publish(Event{Kind: EventRunUpdated, Run: &Run{Version: -1}}) // after Finish: not delivered
	s.Finish()                                                      // twice is fine
	got := 0
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.C():
			if !ok {
				if got != n {
					t.Fatalf("C closed after %d events, want %d", got, n)
				}
				s.Close() // Close after Finish is fine
				return
			}
			if ev.Run.Version != int64(got) {
				t.Fatalf("event %d has version %d", got, ev.Run.Version)
			}
			got++
		case <-timeout:
			t.Fatalf("C not closed after Finish; %d events read", got)
		}
	}
}

// Finish while events are being published: the reader gets an unbroken
// prefix of what was published, and C closes.
func TestSubscriptionFinishWhilePublishing(t *testing.T) {
	t.Parallel()
	b := newBus()
	s := b.subscribe()
	stop := make(chan struct{})
	published := make(chan int)
	go func() {
		i := 0
		for {
			select {
			case <-stop:
				published <- i
				return
			default:
			}
			b.publish(Event{Kind: EventRunUpdated, Run: &Run{Version: int64(i)}})
			i++
		}
	}()
	// Read a few, then finish mid-stream.
	for i := range 100 {
		if ev := <-s.C(); ev.Run.Version != int64(i) {
			t.Fatalf("event %d has version %d", i, ev.Run.Version)
		}
	}
	s.Finish()
	close(stop)
	total := <-published
	got := 100
	for ev := range s.C() {
		if ev.Run.Version != int64(got) {
			t.Fatalf("event %d has version %d", got, ev.Run.Version)
		}
		got++
	}
	if got > total {
		t.Fatalf("read %d events, only %d were published", got, total)
	}
}
