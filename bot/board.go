package bot

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// board keeps the run cards: which message shows which run, the latest run
// snapshot for each, and the thread lines not posted yet. One outbox
// goroutine per channel sends everything for that channel in order, at most
// one post per PostInterval, each card updated at most every CardInterval
// (PostInterval at phase boundaries), waiting out 429s without dropping
// anything.
type board struct {
	b *Bot

	mu       sync.Mutex
	cards    map[string]*card   // by run ID
	expected map[string]string  // cluster -> channel for the next run's card
	outs     map[string]*outbox // by channel
	closing  bool
	wg       sync.WaitGroup
	ctx      context.Context // cancelled when the drain deadline passes
	cancel   context.CancelFunc
}

// card is one run's message.
type card struct {
	runID   string
	channel string // the outbox it goes through: as configured, an ID or "#name"
	// apiChannel is the channel ID Slack gave when the card was posted;
	// chat.update and file uploads need the ID, not a name.
	apiChannel string
	ts         string // "" until posted
	run        *runbook.Run
	dirty      bool // needs chat.update
	urgent     bool // at a phase boundary: update soon
	lastUpdate time.Time
	pending    []threadEntry
	files      int  // output files uploaded so far, for their names
	learned    bool // added by a click (see learn), not by the engine's events
}

// outbox is one channel's queue.
type outbox struct {
	channel  string
	wake     chan struct{}
	lastPost time.Time
	posts    []Message // plain posts (announcements), in order
}

func newBoard(b *Bot) *board {
	ctx, cancel := context.WithCancel(context.Background())
	return &board{b: b, cards: map[string]*card{}, expected: map[string]string{}, outs: map[string]*outbox{},
		ctx: ctx, cancel: cancel}
}

// expect says where the card of the next run on cluster goes.
func (bd *board) expect(cluster, channel string) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	bd.expected[cluster] = channel
}

// unexpect drops the expectation set for cluster if it is still channel:
// the start it was for opened no run.
func (bd *board) unexpect(cluster, channel string) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	if bd.expected[cluster] == channel {
		delete(bd.expected, cluster)
	}
}

// cardFor returns the card of run, creating it when needed: in the
// expected channel, where the store says it is, or in the default channel.
// Called with bd.mu held; it may read the card store.
func (bd *board) cardFor(run *runbook.Run) *card {
	if c := bd.cards[run.ID]; c != nil {
		return c
	}
	c := &card{runID: run.ID, run: run}
	if ch, ok := bd.expected[run.Cluster]; ok {
		c.channel = ch
		delete(bd.expected, run.Cluster)
	}
	if c.channel == "" && bd.b.opts.Cards != nil {
		ch, ts, err := bd.b.opts.Cards.LoadCard(bd.ctx, run.ID)
		if err != nil {
			bd.b.logFor(run).Warn("reading the card location failed", "err", err)
		}
		c.channel, c.apiChannel, c.ts = ch, ch, ts
		c.dirty, c.urgent = ts != "", true
	}
	if c.channel == "" {
		c.channel = bd.b.opts.Channel
	}
	if c.channel == "" {
		bd.b.logFor(run).Warn("no channel for the run's card: set slack.channel in the config")
		return nil
	}
	bd.cards[run.ID] = c
	return c
}

// ensure makes sure run has a card in channel (used right after Start).
func (bd *board) ensure(run *runbook.Run, channel string) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	if _, ok := bd.cards[run.ID]; !ok {
		bd.expected[run.Cluster] = channel
	}
	if c := bd.cardFor(run); c != nil {
		c.setRun(run, true)
		bd.wakeLocked(c.channel)
	}
}

// update takes a newer snapshot of a run (after an accepted decision).
func (bd *board) update(run *runbook.Run, urgent bool) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	if c := bd.cardFor(run); c != nil {
		c.setRun(run, urgent)
		bd.wakeLocked(c.channel)
	}
}

func (c *card) setRun(run *runbook.Run, urgent bool) {
	if run == nil || (c.run != nil && run.Version < c.run.Version) {
		return
	}
	c.run = run
	c.dirty = true
	c.urgent = c.urgent || urgent
}

// maxLearned bounds the cards that clicks alone add to the board. Open runs
// are one per cluster, so this is far above what a real bot holds; it only
// matters if something goes wrong, and then memory stays bounded.
const maxLearned = 256

// learn records where a run's card is, from a click on it. A signed click
// can still carry any run ID (an old message, a card of another
// installation, a hand-made payload), so a location is kept only for a run
// the engine knows, and in memory only while that run is open.
func (bd *board) learn(ctx context.Context, runID, channel, ts string) {
	if runID == "" || channel == "" || ts == "" {
		return
	}
	bd.mu.Lock()
	c := bd.cards[runID]
	known := c != nil && c.ts != ""
	if c != nil && c.ts == "" {
		c.channel, c.apiChannel, c.ts = channel, channel, ts
	}
	bd.mu.Unlock()
	if known {
		return
	}
	if c == nil {
		run, err := bd.b.engine.Get(ctx, runID)
		if err != nil {
			bd.b.log.Info("click on a card of a run the engine does not know; its location is not kept",
				"run", clip(runID, 80), "err", err)
			return
		}
		if run.Status.Open() {
			bd.mu.Lock()
			switch {
			case bd.cards[runID] != nil: // an event made the card meanwhile
			case bd.learnedLocked() >= maxLearned:
				bd.b.logFor(run).Warn("too many card locations learned from clicks; this one is not kept", "max", maxLearned)
			default:
				bd.cards[runID] = &card{runID: runID, channel: channel, apiChannel: channel, ts: ts, run: run, learned: true}
			}
			bd.mu.Unlock()
		}
	}
	if bd.b.opts.Cards == nil {
		return
	}
	if ch, _, err := bd.b.opts.Cards.LoadCard(ctx, runID); err == nil && ch == "" {
		if err := bd.b.opts.Cards.SaveCard(ctx, runID, channel, ts); err != nil {
			bd.b.log.Warn("saving the card location failed", "run", runID, "err", err)
		}
	}
}

// learnedLocked counts the cards that clicks added and that are still kept
// (the outbox forgets a card once its run has ended and it is final).
func (bd *board) learnedLocked() int {
	n := 0
	for _, c := range bd.cards {
		if c.learned {
			n++
		}
	}
	return n
}

// link is the permalink of a run's card, or "".
func (bd *board) link(ctx context.Context, runID string) string {
	bd.mu.Lock()
	var ch, ts string
	if c := bd.cards[runID]; c != nil {
		ch, ts = c.apiChannel, c.ts
	}
	bd.mu.Unlock()
	if ts == "" && bd.b.opts.Cards != nil {
		ch, ts, _ = bd.b.opts.Cards.LoadCard(ctx, runID)
	}
	return bd.b.permalink(ch, ts)
}

func (bd *board) links(ctx context.Context, runs []*runbook.Run) map[string]string {
	out := map[string]string{}
	for _, r := range runs {
		if l := bd.link(ctx, r.ID); l != "" {
			out[r.ID] = l
		}
	}
	return out
}

// event folds one engine event into the cards.
func (bd *board) event(ev runbook.Event) {
	if ev.Run == nil {
		return
	}
	bd.mu.Lock()
	defer bd.mu.Unlock()
	c := bd.cardFor(ev.Run)
	if c == nil {
		return
	}
	at := ev.At
	if at.IsZero() {
		at = bd.b.clock.Now()
	}
	switch ev.Kind {
	case runbook.EventOutput:
		if ev.Line == nil {
			return
		}
		label := ev.Line.StepID
		if ev.Step != nil {
			label = ev.Step.Label
		} else if s := ev.Run.Step(ev.Line.StepID); s != nil {
			label = s.Label
		}
		c.pending = append(c.pending, threadEntry{at: at, output: true, step: label, text: ev.Line.Line})
		c.setRun(ev.Run, false)
	case runbook.EventStepStarted:
		c.setRun(ev.Run, false)
	case runbook.EventStepFinished:
		if ev.Step != nil {
			c.pending = append(c.pending, threadEntry{at: at, text: stepLine(ev.Step)})
		}
		c.setRun(ev.Run, false)
	case runbook.EventPhaseFinished:
		if p := ev.Run.Phase(ev.Phase); p != nil {
			c.pending = append(c.pending, threadEntry{at: at, text: phaseDoneLine(p)})
		}
		c.setRun(ev.Run, true)
	case runbook.EventGateWaiting:
		if p := ev.Run.CurrentPhase(); p != nil {
			c.pending = append(c.pending, threadEntry{at: at, text: "⏳ *" + string(p.Name) + "* — " + runState(ev.Run)})
		}
		c.setRun(ev.Run, true)
	case runbook.EventRunFinished:
		c.pending = append(c.pending, threadEntry{at: at, text: statusEmoji(ev.Run) + " run " + string(ev.Run.Status)})
		c.setRun(ev.Run, true)
	default: // run-started, run-updated and kinds added later
		c.setRun(ev.Run, true)
	}
	bd.wakeLocked(c.channel)
}

func stepLine(s *runbook.Step) string {
	label := escapeMrkdwn(string(s.Phase) + " · " + s.Label)
	d := ""
	if !s.StartedAt.IsZero() && !s.EndedAt.IsZero() {
		d = " (" + fmtDuration(s.EndedAt.Sub(s.StartedAt)) + ")"
	}
	switch s.Status {
	case runbook.StepDone:
		return "✅ " + label + d
	case runbook.StepFailed:
		return "❌ " + label + " failed" + d + ": `" + escapeMrkdwn(strings.ReplaceAll(truncate(s.Error, 500), "`", "'")) + "`"
	case runbook.StepSkipped:
		return "⏭️ " + label + " skipped: " + escapeMrkdwn(truncate(s.SkipReason, 300))
	case runbook.StepInterrupted:
		return "⚠️ " + label + " was interrupted"
	}
	return label + " " + string(s.Status)
}

func phaseDoneLine(p *runbook.Phase) string {
	s := phaseEmoji[p.Status] + " *" + string(p.Name) + "* " + string(p.Status)
	if !p.StartedAt.IsZero() && !p.EndedAt.IsZero() {
		s += " in " + fmtDuration(p.EndedAt.Sub(p.StartedAt))
	}
	return s
}

// postMessage queues a plain message for a channel.
func (bd *board) postMessage(channel string, m Message) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	o := bd.outboxLocked(channel)
	o.posts = append(o.posts, m)
	bd.wakeLocked(channel)
}

func (bd *board) outboxLocked(channel string) *outbox {
	o := bd.outs[channel]
	if o == nil {
		o = &outbox{channel: channel, wake: make(chan struct{}, 1)}
		bd.outs[channel] = o
		bd.wg.Add(1)
		go func() {
			defer bd.wg.Done()
			bd.runOutbox(o)
		}()
	}
	return o
}

func (bd *board) wakeLocked(channel string) {
	o := bd.outboxLocked(channel)
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// resume redraws the card of every open run after a start: old cards come
// back to the current state and runs without a card get one.
func (bd *board) resume(ctx context.Context) error {
	runs, err := bd.b.engine.OpenRuns(ctx)
	if err != nil {
		return fmt.Errorf("read open runs: %w", err)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].StartedAt.Before(runs[j].StartedAt) })
	for _, r := range runs {
		bd.update(r, true)
	}
	return nil
}

// close stops taking work and sends what is pending until ctx ends.
func (bd *board) close(ctx context.Context) {
	bd.mu.Lock()
	bd.closing = true
	for ch := range bd.outs {
		bd.wakeLocked(ch)
	}
	bd.mu.Unlock()
	done := make(chan struct{})
	go func() { bd.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		bd.cancel()
		<-done
	}
}
