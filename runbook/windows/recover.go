package windows

import (
	"context"
	"fmt"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// recover resolves claims whose owner never finished them within the lease:
// the owner crashed (or hung) between claiming and finishing, so whether
// the firing reached anyone is unknown. Nothing is carried out blindly a
// second time:
//   - a start is looked up in the engine: if the window's run exists it is
//     recorded (and its card posted, once per run, by the notifier); if not,
//     the start is carried out now when still within the grace period,
//     otherwise reported missed;
//   - an announcement is reported as possibly missed, with its content;
//   - a skip's or window end's notice is sent again: repeating those says
//     nothing wrong.
func (s *Scheduler) recover(ctx context.Context, ws []Window, now time.Time) error {
	stale, err := s.store.Unfinished(ctx, now.Add(-s.lease))
	if err != nil {
		return fmt.Errorf("read unfinished firings: %w", err)
	}
	for _, f := range stale {
		ok, err := s.store.TakeOver(ctx, f.Key, f.Owner, f.ClaimedAt, s.owner, now.UTC())
		if err != nil {
			return fmt.Errorf("take over %s: %w", f.Key, err)
		}
		if !ok {
			continue // finished or taken over by someone else meanwhile
		}
		log := s.log.With("key", f.Key, "previous_owner", f.Owner)
		w, err := findWindow(ws, f.WindowID)
		if err != nil {
			log.Warn("orphaned firing of a removed window")
			s.finish(ctx, f.Key, "in doubt after a crash; the window was removed since")
			continue
		}
		occ := occurrence(*w, f.Start.In(w.Location()))
		log.Warn("resolving firing left unfinished by a crash", "window", w.ID, "cluster", w.Cluster, "kind", f.Kind, "plan", f.Plan)
		switch {
		case f.Plan == PlanSkip:
			s.perform(ctx, w, f) // KindStart with PlanSkip: only the notice is left to do
		case f.Plan == PlanMissed:
			s.reportMissed(ctx, occ, []Firing{f}, false, "sdbmaint was not running when this was due")
		case f.Kind == KindStart:
			if err := s.recoverStart(ctx, w, f, occ, now); err != nil {
				return err
			}
		case f.Kind == KindAnnounce:
			s.reportMissed(ctx, occ, []Firing{f}, true, "sdbmaint stopped while posting this announcement, so it may not have been posted")
		default:
			s.perform(ctx, w, f)
		}
	}
	return nil
}

// recoverStart finds out whether an orphaned start opened its run.
func (s *Scheduler) recoverStart(ctx context.Context, w *Window, f Firing, occ Occurrence, now time.Time) error {
	runs, err := s.runs.History(ctx, w.Cluster, 20)
	if err != nil {
		return fmt.Errorf("look up the run of %s: %w", f.Key, err)
	}
	for _, r := range runs {
		if r.Window == w.ID && !r.StartedAt.Before(f.Due) {
			s.log.Info("orphaned window start had opened its run", "key", f.Key, "run", r.ID)
			result := "run " + r.ID + " opened (confirmed after a crash)"
			if err := s.notify.Started(ctx, Started{Occurrence: occ, Run: r}); err != nil {
				result += "; the announcement failed: " + runbook.ErrorMessage(err)
			}
			s.finish(ctx, f.Key, result)
			return nil
		}
	}
	if now.Sub(f.Due) <= s.grace {
		s.perform(ctx, w, f)
		return nil
	}
	s.reportMissed(ctx, occ, []Firing{f}, false, "sdbmaint stopped before it could open the run, and came back too late")
	return nil
}
