package runbook

import "sync"

// bus hands every published event to every subscription, in the same order
// for all of them. Publishing never blocks: each subscription queues what
// its reader has not taken yet.
type bus struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

func newBus() *bus { return &bus{subs: map[*Subscription]struct{}{}} }

func (b *bus) publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.push(ev)
	}
}

func (b *bus) subscribe() *Subscription {
	s := &Subscription{
		bus:    b,
		c:      make(chan Event),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		finish: make(chan struct{}),
	}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go s.deliver()
	return s
}

// Subscription receives the engine's events in the order they happened.
// The engine never waits for a subscriber: events queue (without bound)
// until the reader takes them, so a slow reader costs memory, never
// progress. Close it when done.
type Subscription struct {
	bus  *bus
	c    chan Event
	wake chan struct{}
	done chan struct{}
	once sync.Once
	// finish is closed by Finish: deliver what is queued, then close c.
	finish     chan struct{}
	finishOnce sync.Once

	mu    sync.Mutex
	queue []Event
}

// C returns the channel of events. It is closed after Close, and after
// Finish once the queued events are delivered.
func (s *Subscription) C() <-chan Event { return s.c }

// Close stops the subscription and drops what it had not delivered.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		close(s.done)
	})
}

// Finish stops the subscription taking new events and lets the reader have
// the ones already queued: C delivers them, in order, and is then closed.
// A reader that must not miss an event (the Slack bot's last card updates
// after Engine.Drain) calls Finish and reads C until it is closed. Close
// still drops whatever is left.
func (s *Subscription) Finish() {
	s.finishOnce.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		close(s.finish)
	})
}

func (s *Subscription) push(ev Event) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Subscription) deliver() {
	defer close(s.c)
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-s.finish:
				// No push can follow Finish (it left the bus first), so an
				// empty queue now is the end.
				s.mu.Lock()
				empty := len(s.queue) == 0
				s.mu.Unlock()
				if empty {
					return
				}
				continue
			case <-s.done:
				return
			}
		}
		ev := s.queue[0]
		s.queue[0] = Event{}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		select {
		case s.c <- ev:
		case <-s.done:
			return
		}
	}
}
