package runbook

import (
	"context"
	"log/slog"
	"sync"
)

// outputLog stores step output in the background and publishes each line
// once it is stored, so that a line the bot posted is a line the store
// has. Lines are written in the order they came, many per transaction:
// thirty-two leaves printing at once would otherwise queue for one write
// each. A step's result waits (wait) until its own lines are stored, so
// its output always comes before its end, in the store and in events.
type outputLog struct {
	store OutputLog
	bus   *bus
	log   *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []Event
	queued  uint64 // lines ever queued
	stored  uint64 // lines ever stored (or given up on) and published
	running bool   // a drain goroutine is at work
}

func newOutputLog(store OutputLog, b *bus, log *slog.Logger) *outputLog {
	o := &outputLog{store: store, bus: b, log: log}
	o.cond = sync.NewCond(&o.mu)
	return o
}

// add queues an EventOutput and returns its sequence number for wait.
func (o *outputLog) add(ev Event) uint64 {
	o.mu.Lock()
	o.queue = append(o.queue, ev)
	o.queued++
	seq := o.queued
	start := !o.running
	o.running = true
	o.mu.Unlock()
	if start {
		go o.drain()
	}
	return seq
}

// wait returns once line seq (and every line before it) is stored.
func (o *outputLog) wait(seq uint64) {
	o.mu.Lock()
	for o.stored < seq {
		o.cond.Wait()
	}
	o.mu.Unlock()
}

func (o *outputLog) drain() {
	for {
		o.mu.Lock()
		batch := o.queue
		o.queue = nil
		if len(batch) == 0 {
			o.running = false
			o.mu.Unlock()
			return
		}
		o.mu.Unlock()
		chunks := make([]Chunk, len(batch))
		for i, ev := range batch {
			chunks[i] = *ev.Line
		}
		// A store that fails to take output must not stop the run: the
		// step's own result says what happened, and the log says what
		// was lost.
		if err := o.store.AppendOutput(context.Background(), chunks...); err != nil {
			o.log.Error("store output", "lines", len(chunks), "run", chunks[0].RunID, "err", err)
		}
		for _, ev := range batch {
			o.bus.publish(ev)
		}
		o.mu.Lock()
		o.stored += uint64(len(batch))
		o.cond.Broadcast()
		o.mu.Unlock()
	}
}
