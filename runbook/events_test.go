package runbook

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// A subscriber that never reads must not hold the engine up, and gets
// every event, in order, when it does read.
func TestBusNeverBlocksAndKeepsOrder(t *testing.T) {
	t.Parallel()
	b := newBus()
	slow := b.subscribe()
	fast := b.subscribe()
	const n = 10000
	got := make(chan int, n)
	go func() {
		for ev := range fast.C() {
			got <- int(ev.Run.Version)
		}
		close(got)
	}()
	published := make(chan struct{})
	go func() {
		for i := range n {
			b.publish(Event{Kind: EventRunUpdated, Run: &Run{Version: int64(i)}})
		}
		close(published)
	}()
	select {
	case <-published:
	case <-time.After(10 * time.Second):
		t.Fatal("publishing blocked on a subscriber that does not read")
	}
	for i := range n {
		if v := <-got; v != i {
			t.Fatalf("fast subscriber: event %d has version %d", i, v)
		}
	}
	for i := range n {
		ev := <-slow.C()
		if int(ev.Run.Version) != i {
			t.Fatalf("slow subscriber: event %d has version %d", i, ev.Run.Version)
		}
	}
	fast.Close()
	if _, ok := <-got; ok {
		t.Fatal("events after Close")
	}
	slow.Close()
	slow.Close() // twice is fine
	if _, ok := <-slow.C(); ok {
		t.Fatal("C not closed after Close")
	}
	b.publish(Event{Kind: EventRunUpdated, Run: &Run{}}) // no subscribers left
}

func TestStepErrorTextKeepsTheEnginesContext(t *testing.T) {
	inner := Wrap(Unavailable, errors.New("dial tcp: refused"), "SELECT 1 on 10.0.0.10:3306: no answer within 300ms")
	got := stepErrorText(fmt.Errorf("the MA does not answer SQL after 400ms: %w", inner))
	if want := "the MA does not answer SQL after 400ms: SELECT 1 on 10.0.0.10:3306: no answer within 300ms"; got != want {
		t.Errorf("wrapped: %q, want %q", got, want)
	}
	if got := stepErrorText(inner); got != "SELECT 1 on 10.0.0.10:3306: no answer within 300ms" {
		t.Errorf("bare: %q", got)
	}
	if got := stepErrorText(errors.New("exit 1: boom")); got != "exit 1: boom" {
		t.Errorf("plain: %q", got)
	}
}
