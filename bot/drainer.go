package bot

import (
	"context"
	"sync"
)

// drainer runs the work that acknowledged requests started, and at shutdown
// refuses new work and waits for what is in flight.
type drainer struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context // the context work runs under; outlives the request
}

func newDrainer(ctx context.Context) *drainer { return &drainer{ctx: ctx} }

// Go runs f on its own goroutine unless draining began; it reports whether
// f was started.
func (d *drainer) Go(f func(ctx context.Context)) bool {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return false
	}
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		f(d.ctx)
	}()
	return true
}

// Drain stops taking work and waits for running work or ctx, whichever is
// first.
func (d *drainer) Drain(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
