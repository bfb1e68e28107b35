package windows

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// item is one firing due for one occurrence, before it is claimed.
type item struct {
	w     *Window
	start time.Time
	kind  Kind
	lead  time.Duration
	due   time.Time
}

func (it item) key() string { return FiringKey(it.w.ID, it.start, it.kind, it.lead) }

func (it item) firing(plan Plan, owner string, now time.Time) Firing {
	return Firing{
		Key: it.key(), WindowID: it.w.ID, Cluster: it.w.Cluster, Start: it.start.UTC(),
		Kind: it.kind, Lead: it.lead, Due: it.due.UTC(), Plan: plan, Owner: owner, ClaimedAt: now.UTC(),
	}
}

// items returns the firings of w due in (from, to], in due order.
func items(w *Window, from, to time.Time) []item {
	var out []item
	add := func(it item) {
		if it.due.After(from) && !it.due.After(to) && !it.due.Before(w.CreatedAt) {
			out = append(out, it)
		}
	}
	// An occurrence has firings from start-maxLead to start+duration. One
	// that began before the window was made has none.
	for st := w.Next(from.Add(-w.Duration)); !st.IsZero() && !st.After(to.Add(w.maxLead())); st = w.Next(st) {
		if st.Before(w.CreatedAt) {
			continue
		}
		for _, l := range w.Announce {
			add(item{w: w, start: st, kind: KindAnnounce, lead: l, due: st.Add(-l)})
		}
		add(item{w: w, start: st, kind: KindStart, due: st})
		add(item{w: w, start: st, kind: KindEnd, due: st.Add(w.Duration)})
	}
	return out
}

// nextDue returns when w's first firing after now is due, or zero.
func nextDue(w *Window, now time.Time) time.Time {
	var best time.Time
	for st := w.Next(now.Add(-w.Duration)); !st.IsZero(); st = w.Next(st) {
		if !best.IsZero() && st.Add(-w.maxLead()).After(best) {
			break
		}
		dues := []time.Time{st, st.Add(w.Duration)}
		for _, l := range w.Announce {
			dues = append(dues, st.Add(-l))
		}
		for _, d := range dues {
			if d.After(now) && (best.IsZero() || d.Before(best)) {
				best = d
			}
		}
	}
	return best
}

// Tick carries out every firing due since the last Tick (or, on the first,
// since the last time any scheduler sharing the store got to), reports the
// ones due longer than the grace period ago as missed, resolves claims
// orphaned by a crash, and returns when the next firing is due (zero if
// none is).
func (s *Scheduler) Tick(ctx context.Context) (time.Time, error) {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	now := s.clock.Now()
	ws, err := s.Windows(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if s.cursor.IsZero() {
		wm, err := s.store.Watermark(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("read watermark: %w", err)
		}
		// The first scheduler ever has missed nothing; a later one starts
		// where the store says the last one got to, but not too far back.
		s.cursor = now.Add(-s.grace)
		if !wm.IsZero() && wm.Before(s.cursor) {
			s.cursor = wm
			if floor := now.Add(-s.lookback); wm.Before(floor) {
				s.cursor = floor
			}
		}
	}
	if err := s.recover(ctx, ws, now); err != nil {
		return time.Time{}, err
	}
	var due []item
	for i := range ws {
		due = append(due, items(&ws[i], s.cursor, now)...)
	}
	sort.SliceStable(due, func(i, j int) bool {
		a, b := due[i], due[j]
		if !a.due.Equal(b.due) {
			return a.due.Before(b.due)
		}
		return a.kind.order() < b.kind.order()
	})
	missed := map[string][]Firing{} // by occurrence
	var order []string
	for _, it := range due {
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		if now.Sub(it.due) > s.grace {
			f, ok, err := s.claimMissed(ctx, it, now)
			if err != nil {
				return time.Time{}, err
			}
			if ok && it.kind == KindEnd {
				// A late end notice matters only while the window's run
				// still waits before stop; otherwise there is nothing to say.
				if run := s.closedRun(ctx, it.w, it.start); run == nil {
					s.finish(ctx, f.Key, "missed; nothing to say: no run of this window waits before stop")
					continue
				}
			}
			if ok {
				k := FiringKey(it.w.ID, it.start, KindStart, 0)
				if _, seen := missed[k]; !seen {
					order = append(order, k)
				}
				missed[k] = append(missed[k], f)
			}
			continue
		}
		if err := s.fire(ctx, it, now); err != nil {
			return time.Time{}, err
		}
	}
	for _, k := range order {
		fs := missed[k]
		w, err := findWindow(ws, fs[0].WindowID)
		if err != nil {
			return time.Time{}, err
		}
		s.reportMissed(ctx, occurrence(*w, fs[0].Start.In(w.Location())), fs, false,
			fmt.Sprintf("sdbmaint was not running when %s due", plural(len(fs), "this was", "these were")))
	}
	s.cursor = now
	if err := s.store.AdvanceWatermark(ctx, now.UTC()); err != nil {
		return time.Time{}, fmt.Errorf("advance watermark: %w", err)
	}
	var next time.Time
	for i := range ws {
		if d := nextDue(&ws[i], now); !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	return next, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// skipped returns the approver's skip of the occurrence, if any.
func (s *Scheduler) skipped(ctx context.Context, w *Window, start time.Time) (*Firing, error) {
	f, err := s.store.Firing(ctx, FiringKey(w.ID, start, KindStart, 0))
	if err != nil {
		return nil, fmt.Errorf("read start of window %s: %w", w.ID, err)
	}
	if f != nil && f.Plan == PlanSkip {
		return f, nil
	}
	return nil, nil
}

// claimMissed claims a firing that is too late to carry out. Firings of a
// skipped occurrence are not reported: nothing was going to happen.
func (s *Scheduler) claimMissed(ctx context.Context, it item, now time.Time) (Firing, bool, error) {
	if it.kind != KindStart {
		if sk, err := s.skipped(ctx, it.w, it.start); err != nil || sk != nil {
			return Firing{}, false, err
		}
	}
	f := it.firing(PlanMissed, s.owner, now)
	won, _, err := s.store.Claim(ctx, f)
	if err != nil {
		return Firing{}, false, fmt.Errorf("claim %s: %w", f.Key, err)
	}
	return f, won, nil
}

// reportMissed tells the channel and marks the firings done.
func (s *Scheduler) reportMissed(ctx context.Context, occ Occurrence, fs []Firing, inDoubt bool, reason string) {
	result := "reported missed"
	if inDoubt {
		result = "in doubt after a crash; reported"
	}
	s.log.Warn("window firings missed", "window", occ.Window.ID, "cluster", occ.Window.Cluster,
		"start", occ.Start, "firings", len(fs), "in_doubt", inDoubt)
	if err := s.notify.Missed(ctx, Missed{Occurrence: occ, Firings: fs, InDoubt: inDoubt, Reason: reason}); err != nil {
		s.log.Error("report missed firings", "window", occ.Window.ID, "cluster", occ.Window.Cluster, "err", err)
		result += "; the report failed: " + runbook.ErrorMessage(err)
	}
	for _, f := range fs {
		s.finish(ctx, f.Key, result)
	}
}

// finish records a firing's result; a failure is logged (the claim then
// looks orphaned and is resolved as in doubt, never carried out twice).
func (s *Scheduler) finish(ctx context.Context, key, result string) {
	if err := s.store.Finish(context.WithoutCancel(ctx), key, s.owner, result, s.clock.Now().UTC()); err != nil {
		s.log.Error("finish firing", "key", key, "err", err)
	}
}

// fire claims a due firing and carries it out.
func (s *Scheduler) fire(ctx context.Context, it item, now time.Time) error {
	if it.kind != KindStart { // a skipped occurrence neither announces nor closes
		if sk, err := s.skipped(ctx, it.w, it.start); err != nil || sk != nil {
			return err
		}
	}
	f := it.firing(PlanPerform, s.owner, now)
	won, cur, err := s.store.Claim(ctx, f)
	if err != nil {
		return fmt.Errorf("claim %s: %w", f.Key, err)
	}
	if !won {
		s.log.Debug("firing claimed elsewhere", "key", f.Key, "owner", cur.Owner, "plan", cur.Plan)
		return nil
	}
	s.perform(ctx, it.w, f)
	return nil
}

// perform carries out a claimed firing and records its result. It is
// bounded by half the lease, so that no other scheduler takes the claim
// over while it is still being carried out.
func (s *Scheduler) perform(ctx context.Context, w *Window, f Firing) {
	ctx, cancel := context.WithTimeout(ctx, s.lease/2)
	defer cancel()
	occ := occurrence(*w, f.Start.In(w.Location()))
	log := s.log.With("window", w.ID, "cluster", w.Cluster, "start", occ.Start, "kind", f.Kind)
	var result string
	switch {
	case f.Plan == PlanSkip: // only after a crash: the skip is recorded, its notice may not be
		result = "skipped"
		if err := s.notify.Skipped(ctx, Skipped{Occurrence: occ, By: f.By, Reason: "skipped by an approver"}); err != nil {
			log.Error("announce skip", "err", err)
			result = "skipped; the announcement failed: " + runbook.ErrorMessage(err)
		}
	case f.Kind == KindAnnounce:
		log.Info("announcing window", "lead", f.Lead)
		result = "announced"
		if err := s.notify.Announce(ctx, Announcement{Occurrence: occ, Lead: f.Lead, Key: f.Key}); err != nil {
			log.Error("announce window", "err", err)
			result = "announcement failed: " + runbook.ErrorMessage(err)
		}
	case f.Kind == KindStart:
		var done bool
		if result, done = s.start(ctx, occ, log); !done {
			// sdbmaint is shutting down: leave the claim open. Whoever
			// runs next finds it after the lease and opens the run if the
			// window started less than the grace period ago.
			return
		}
	case f.Kind == KindEnd:
		result = s.closeWindow(ctx, occ, log)
	}
	s.finish(ctx, f.Key, result)
}

// start opens the occurrence's run, or says why it did not. It returns
// false, leaving the firing to a later scheduler, when the engine is
// shutting down.
func (s *Scheduler) start(ctx context.Context, occ Occurrence, log *slog.Logger) (string, bool) {
	w := occ.Window
	res, err := s.runs.Start(ctx, runbook.StartRequest{
		Cluster: w.Cluster, By: "window:" + w.ID, Window: w.ID, WindowEnds: occ.End,
	})
	var sk Skipped
	switch {
	case err != nil && (ctx.Err() != nil || runbook.ErrorKind(err) == runbook.Unavailable):
		log.Warn("window start left for the next scheduler", "err", err)
		return "", false
	case err != nil:
		log.Error("open window run", "err", err)
		sk = Skipped{Occurrence: occ, Reason: "sdbmaint could not open a run: " + runbook.ErrorMessage(err)}
	case res.Existing != nil:
		ex := res.Existing
		sk = Skipped{Occurrence: occ, Existing: ex, Reason: fmt.Sprintf(
			"run %s for %s is already open (started by %s at %s); one run per cluster, so this window opens none",
			ex.ID, w.Cluster, ex.StartedBy, ex.StartedAt.UTC().Format("2006-01-02 15:04 UTC"))}
	default:
		log.Info("window opened a run", "run", res.Run.ID)
		if err := s.notify.Started(ctx, Started{Occurrence: occ, Run: res.Run}); err != nil {
			log.Error("announce window run", "run", res.Run.ID, "err", err)
			return fmt.Sprintf("run %s opened; the announcement failed: %s", res.Run.ID, runbook.ErrorMessage(err)), true
		}
		return "run " + res.Run.ID + " opened", true
	}
	log.Info("window skipped", "reason", sk.Reason)
	result := "skipped: " + sk.Reason
	if err := s.notify.Skipped(ctx, sk); err != nil {
		log.Error("announce skipped window", "err", err)
		result += "; the announcement failed: " + runbook.ErrorMessage(err)
	}
	return result, true
}

// closeWindow says the window closed, if its run has not passed the stop
// gate: from now on the engine wants an override to stop the cluster.
func (s *Scheduler) closeWindow(ctx context.Context, occ Occurrence, log *slog.Logger) string {
	run, err := s.runs.OpenRun(ctx, occ.Window.Cluster)
	if err != nil {
		log.Error("read open run at window end", "err", err)
		return "could not read the open run: " + runbook.ErrorMessage(err)
	}
	if run == nil || run.Window != occ.Window.ID || !run.WindowEnds.Equal(occ.End) {
		return "window closed; no run of this window is open"
	}
	if stopApproved(run) {
		return "window closed after stop was approved in run " + run.ID
	}
	log.Info("window closed before stop was approved", "run", run.ID)
	if err := s.notify.WindowClosed(ctx, Closed{Occurrence: occ, Run: run}); err != nil {
		log.Error("announce window closed", "run", run.ID, "err", err)
		return "window closed before stop; the announcement failed: " + runbook.ErrorMessage(err)
	}
	return "window closed before stop was approved in run " + run.ID + "; notified"
}

// closedRun returns the open run of the occurrence starting at start if it
// has not passed its stop gate, or nil.
func (s *Scheduler) closedRun(ctx context.Context, w *Window, start time.Time) *runbook.Run {
	run, err := s.runs.OpenRun(ctx, w.Cluster)
	if err != nil {
		s.log.Error("read open run at window end", "window", w.ID, "cluster", w.Cluster, "err", err)
		return nil
	}
	if run == nil || run.Window != w.ID || !run.WindowEnds.Equal(start.Add(w.Duration)) || stopApproved(run) {
		return nil
	}
	return run
}

// stopApproved reports whether the run got past its stop gate.
func stopApproved(run *runbook.Run) bool {
	p := run.Phase(runbook.PhaseStop)
	if p == nil {
		return false
	}
	switch p.Status {
	case runbook.PhasePending, runbook.PhaseWaiting, runbook.PhaseCanceled:
		return p.Approval != nil
	}
	return true
}
