package bot

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// opKind is what the outbox does next.
type opKind int

const (
	opPostCard opKind = iota + 1
	opUpdateCard
	opThread
	opPlain
)

type op struct {
	kind    opKind
	card    *card
	run     *runbook.Run // the card's snapshot when the op was chosen
	dest    string       // the card's channel ID, for updates and thread posts
	msg     Message
	entries []threadEntry
	file    int
}

// runOutbox is the loop of one channel: pick the next due operation, carry
// it out (waiting out 429s), repeat; sleep until something is due.
func (bd *board) runOutbox(o *outbox) {
	for {
		next, wait, done := bd.next(o)
		if done {
			return
		}
		if next != nil {
			bd.exec(o, next)
			continue
		}
		var timer <-chan time.Time
		if wait > 0 {
			timer = bd.b.clock.After(wait)
		}
		select {
		case <-o.wake:
		case <-timer:
		case <-bd.ctx.Done():
			return
		}
	}
}

// next picks the operation that is due now, or says how long until one is
// (0: nothing scheduled), or that the outbox is finished (closing and empty).
func (bd *board) next(o *outbox) (*op, time.Duration, bool) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	b := bd.b
	now := b.clock.Now()
	postAt := o.lastPost.Add(b.opts.PostInterval)
	canPost := !now.Before(postAt)

	var cards []*card
	for _, c := range bd.cards {
		if c.channel == o.channel {
			cards = append(cards, c)
		}
	}
	sort.Slice(cards, func(i, j int) bool { return cards[i].runID < cards[j].runID })

	var soonest time.Time
	due := func(t time.Time) {
		if soonest.IsZero() || t.Before(soonest) {
			soonest = t
		}
	}
	// A new card first: the thread needs its ts.
	for _, c := range cards {
		if c.ts == "" && c.run != nil {
			if canPost {
				c.dirty, c.urgent = false, false
				return &op{kind: opPostCard, card: c, run: c.run, msg: b.render(c.run)}, 0, false
			}
			due(postAt)
		}
	}
	// Updates at phase boundaries, then thread lines, then the rest.
	for _, c := range cards {
		if c.ts == "" || !c.dirty || !c.urgent {
			continue
		}
		if at := c.lastUpdate.Add(b.opts.PostInterval); !now.Before(at) {
			c.dirty, c.urgent = false, false
			return &op{kind: opUpdateCard, card: c, run: c.run, dest: c.apiChannel, msg: b.render(c.run)}, 0, false
		} else {
			due(at)
		}
	}
	for _, c := range cards {
		if c.ts == "" || len(c.pending) == 0 {
			continue
		}
		if canPost {
			entries := c.pending
			c.pending = nil
			c.files++
			return &op{kind: opThread, card: c, run: c.run, dest: c.apiChannel, entries: entries, file: c.files}, 0, false
		}
		due(postAt)
	}
	if len(o.posts) > 0 {
		if canPost {
			m := o.posts[0]
			o.posts = o.posts[1:]
			return &op{kind: opPlain, msg: m}, 0, false
		}
		due(postAt)
	}
	for _, c := range cards {
		if c.ts == "" || c.run == nil {
			continue
		}
		if !bd.closing && !c.dirty && c.run.Status.Open() && !c.run.DownSince.IsZero() && c.run.UpAt.IsZero() {
			// The downtime clock on the card moves even when nothing happens.
			if at := c.lastUpdate.Add(b.opts.DownRefresh); !now.Before(at) {
				c.dirty = true
			} else {
				due(at)
			}
		}
		if !c.dirty {
			continue
		}
		interval := b.opts.CardInterval
		if bd.closing {
			interval = b.opts.PostInterval
		}
		if at := c.lastUpdate.Add(interval); !now.Before(at) {
			c.dirty, c.urgent = false, false
			return &op{kind: opUpdateCard, card: c, run: c.run, dest: c.apiChannel, msg: b.render(c.run)}, 0, false
		} else {
			due(at)
		}
	}
	// Forget finished runs whose card is final and whose thread is empty.
	for _, c := range cards {
		if c.ts != "" && !c.dirty && len(c.pending) == 0 && c.run != nil && !c.run.Status.Open() {
			delete(bd.cards, c.runID)
		}
	}
	if soonest.IsZero() {
		if bd.closing {
			return nil, 0, true
		}
		return nil, 0, false
	}
	return nil, soonest.Sub(now), false
}

// render draws a run's card. Describe is asked for the current gate only.
func (b *Bot) render(r *runbook.Run) Message {
	next := ""
	if r.Status.Open() && r.Current != "" {
		next = b.engine.Describe(r, r.Current)
	}
	return CardMessage(CardView{Run: r, Next: next, Now: b.clock.Now()})
}

// exec carries out one operation, retrying 429s until they pass.
func (bd *board) exec(o *outbox, x *op) {
	b := bd.b
	ctx := bd.ctx
	log := b.log.With("channel", o.channel)
	if x.run != nil {
		log = b.logFor(x.run).With("channel", o.channel)
	}
	var err error
	switch x.kind {
	case opPostCard:
		var ch, ts string
		err = bd.retry(ctx, func() error {
			var e error
			ch, ts, e = b.api.PostMessageContext(ctx, o.channel, x.msg.options()...)
			return e
		})
		if ch == "" {
			ch = o.channel
		}
		bd.mu.Lock()
		o.lastPost = b.clock.Now()
		if err == nil {
			x.card.ts, x.card.apiChannel = ts, ch
			x.card.lastUpdate = o.lastPost
		}
		bd.mu.Unlock()
		if err == nil && b.opts.Cards != nil {
			if e := b.opts.Cards.SaveCard(ctx, x.card.runID, ch, ts); e != nil {
				log.Warn("saving the card location failed; the card still works but is found again only by a click", "err", e)
			}
		}
		if err == nil {
			log.Info("card posted", "ts", ts)
		}
	case opUpdateCard:
		bd.mu.Lock()
		ts := x.card.ts
		bd.mu.Unlock()
		err = bd.retry(ctx, func() error {
			_, _, _, e := b.api.UpdateMessageContext(ctx, orDefault(x.dest, o.channel), ts, x.msg.options()...)
			return e
		})
		bd.mu.Lock()
		x.card.lastUpdate = b.clock.Now()
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && (se.Err == "message_not_found" || se.Err == "cant_update_message" || se.Err == "edit_window_closed") {
			// The card is gone or frozen: post a new one.
			log.Warn("card cannot be updated; posting a new one", "err", err)
			x.card.ts = ""
			err = nil
		}
		bd.mu.Unlock()
	case opThread:
		err = bd.postThread(ctx, o, x)
	case opPlain:
		err = bd.retry(ctx, func() error {
			_, _, e := b.api.PostMessageContext(ctx, o.channel, x.msg.options()...)
			return e
		})
		bd.mu.Lock()
		o.lastPost = b.clock.Now()
		bd.mu.Unlock()
	}
	if err != nil && ctx.Err() == nil {
		b.metrics.droppedOutput.Inc()
		log.Error("Slack refused a post; it is given up", "err", err)
	}
}

// retry is withRetry for the outbox: 429s are waited out without bound
// (nothing is dropped for a rate limit), until the drain deadline.
func (bd *board) retry(ctx context.Context, f func() error) error {
	for {
		err := withRetry(ctx, bd.b.clock, f)
		if err == nil || !isRateLimited(err) || ctx.Err() != nil {
			return err
		}
	}
}

// postThread posts a batch of thread lines under the card; a batch too
// long for a message goes up as a file with its tail inline.
func (bd *board) postThread(ctx context.Context, o *outbox, x *op) error {
	b := bd.b
	bd.mu.Lock()
	ts := x.card.ts
	bd.mu.Unlock()
	phase := ""
	if x.run != nil {
		phase = string(x.run.Current)
	}
	text := threadText(clipEntries(x.entries))
	var err error
	// Inline only when it fits and no line had to be clipped; otherwise the
	// whole batch goes up as a file, so nothing is lost.
	if utf8.RuneCountInString(text) <= maxInlineOutput && !anyClipped(x.entries) {
		err = bd.retry(ctx, func() error {
			_, _, e := b.api.PostMessageContext(ctx, orDefault(x.dest, o.channel), slack.MsgOptionText(text, false), slack.MsgOptionTS(ts))
			return e
		})
	} else {
		content := plainLog(x.entries)
		if phase == "" {
			phase = "run"
		}
		name := fmt.Sprintf("%s-%d.log", phase, x.file)
		tailEntries := fitTail(x.entries, maxInlineOutput-200)
		comment := fmt.Sprintf("_%d lines; the full output is in %s. The last %d:_\n%s",
			len(x.entries), name, len(tailEntries), threadText(clipEntries(tailEntries)))
		err = bd.retry(ctx, func() error {
			_, e := b.api.UploadFileContext(ctx, slack.UploadFileParameters{
				Filename: name, Title: name, Content: content, FileSize: len(content),
				Channel: orDefault(x.dest, o.channel), ThreadTimestamp: ts, InitialComment: comment,
			})
			return e
		})
	}
	bd.mu.Lock()
	o.lastPost = b.clock.Now()
	bd.mu.Unlock()
	return err
}

const maxInlineLine = 600

func anyClipped(es []threadEntry) bool {
	for _, e := range es {
		if utf8.RuneCountInString(e.text) > maxInlineLine {
			return true
		}
	}
	return false
}

// clipEntries shortens very long output lines for inline display; the file
// keeps them whole.
func clipEntries(es []threadEntry) []threadEntry {
	out := make([]threadEntry, len(es))
	for i, e := range es {
		e.text = truncate(e.text, maxInlineLine)
		out[i] = e
	}
	return out
}

// fitTail returns the last entries whose rendering fits in n characters.
func fitTail(es []threadEntry, n int) []threadEntry {
	lo := len(es)
	for lo > 0 && utf8.RuneCountInString(threadText(clipEntries(es[lo-1:]))) <= n {
		lo--
	}
	return es[lo:]
}

// plainLog is the file form of thread entries: one line each, with time.
func plainLog(es []threadEntry) string {
	var sb strings.Builder
	for _, e := range es {
		sb.WriteString(e.at.UTC().Format("15:04:05.000 "))
		if e.output {
			sb.WriteString(e.step)
			sb.WriteString(" | ")
		}
		sb.WriteString(e.text)
		sb.WriteByte('\n')
	}
	return sb.String()
}
