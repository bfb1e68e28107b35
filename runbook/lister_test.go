package runbook

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingNodes is a NodeController whose ListNodes blocks until released
// and counts its calls; the listing says how many calls came before.
type countingNodes struct {
	calls   atomic.Int32
	release chan struct{}
}

func (c *countingNodes) ListNodes(ctx context.Context) ([]Node, error) {
	n := c.calls.Add(1)
	select {
	case <-c.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []Node{{ID: "CALL", Port: int(n)}}, nil
}

func (c *countingNodes) StopNode(context.Context, string, OutputFunc) error  { return nil }
func (c *countingNodes) StartNode(context.Context, string, OutputFunc) error { return nil }

func TestListerCoalescesAndStaysFresh(t *testing.T) {
	t.Parallel()
	nodes := &countingNodes{release: make(chan struct{})}
	l := &lister{nodes: nodes, ctx: context.Background()}
	ctx := context.Background()

	// The first caller starts call 1.
	first := make(chan int, 1)
	go func() {
		ns, _ := l.list(ctx)
		first <- ns[0].Port
	}()
	waitFor(t, func() bool { return nodes.calls.Load() == 1 })

	// 31 callers arrive while call 1 runs: they must not get its (stale)
	// listing, and they share one call, 2.
	var wg sync.WaitGroup
	results := make(chan int, 31)
	for range 31 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns, err := l.list(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			results <- ns[0].Port
		}()
	}
	waitFor(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.next != nil && l.next.callers == 31
	})
	close(nodes.release) // every call returns at once from now on
	if got := <-first; got != 1 {
		t.Fatalf("first caller got call %d", got)
	}
	wg.Wait()
	close(results)
	for got := range results {
		if got != 2 {
			t.Fatalf("a caller that arrived during call 1 got call %d, want 2", got)
		}
	}
	if n := nodes.calls.Load(); n != 2 {
		t.Fatalf("%d list-nodes calls for 32 callers, want 2", n)
	}

	// A caller that gives up does not break the others.
	blocked := &countingNodes{release: make(chan struct{})}
	l2 := &lister{nodes: blocked, ctx: context.Background()}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l2.list(cctx); err == nil {
		t.Fatal("canceled caller got a listing")
	}
	close(blocked.release)
	if _, err := l2.list(ctx); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
}
