package runbook

import (
	"context"
	"sync"
)

// lister coalesces list-nodes calls for one cluster. Every caller needs a
// listing taken after it asked (a node it just stopped must show stopped),
// so a caller never joins a call that is already running: it joins the
// next one, which starts as soon as the running one ends. Thirty-two
// leaves confirming their stops together then cost one or two sdb-admin
// list-nodes instead of thirty-two concurrent sessions on the toolbox host,
// each of which asks every host in the cluster.
type lister struct {
	nodes NodeController
	ctx   context.Context // the engine's: a call outlives the caller that started it

	mu   sync.Mutex
	cur  *listCall // running
	next *listCall // waiting for cur to end
}

type listCall struct {
	done    chan struct{}
	nodes   []Node
	err     error
	callers int // how many callers wait on this call (guarded by lister.mu)
}

func (l *lister) list(ctx context.Context) ([]Node, error) {
	l.mu.Lock()
	var c *listCall
	switch {
	case l.cur == nil:
		c = &listCall{done: make(chan struct{})}
		l.cur = c
		go l.run(c)
	case l.next == nil:
		c = &listCall{done: make(chan struct{})}
		l.next = c
	default:
		c = l.next
	}
	c.callers++
	l.mu.Unlock()
	select {
	case <-c.done:
		return c.nodes, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *lister) run(c *listCall) {
	c.nodes, c.err = l.nodes.ListNodes(l.ctx)
	l.mu.Lock()
	close(c.done)
	l.cur, l.next = l.next, nil
	if l.cur != nil {
		go l.run(l.cur)
	}
	l.mu.Unlock()
}

// listerFor returns the cluster's lister.
func (e *Engine) listerFor(c *Cluster) *lister {
	e.mu.Lock()
	defer e.mu.Unlock()
	l, ok := e.listers[c]
	if !ok {
		l = &lister{nodes: c.Nodes, ctx: e.ctx}
		e.listers[c] = l
	}
	return l
}
