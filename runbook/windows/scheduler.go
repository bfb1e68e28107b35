package windows

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// Defaults for Options.
const (
	DefaultGrace    = 2 * time.Minute
	DefaultLease    = 2 * time.Minute
	DefaultLookback = 7 * 24 * time.Hour
	DefaultRefresh  = time.Minute
)

// Options configures a Scheduler.
type Options struct {
	Store     Store
	Runs      Runs
	Notifier  Notifier
	Approvers Approvers
	Clock     Clock // the system clock when nil
	// Config holds the windows of the config file (see ConfigWindow). They
	// are validated by New and cannot be unscheduled.
	Config []Window
	// Clusters are the names windows may be scheduled for.
	Clusters []string
	// Location reads specs that name no CRON_TZ; time.Local when nil.
	Location *time.Location
	// Grace is how late a firing may still be carried out; later ones are
	// reported missed.
	Grace time.Duration
	// Lease bounds carrying out one firing; a claim unfinished for longer is
	// taken to be orphaned by a crash and is resolved by any scheduler.
	Lease time.Duration
	// Lookback bounds how far back missed firings are reported after a long
	// downtime.
	Lookback time.Duration
	// Refresh is how often Run re-reads windows that other replicas stored.
	Refresh time.Duration
	// Owner names this scheduler in claims; a random name when "".
	Owner  string
	Logger *slog.Logger
}

// Scheduler fires the announcements, starts and end notices of maintenance
// windows. Several schedulers may share one Store: each firing is carried
// out by exactly one of them.
type Scheduler struct {
	store     Store
	runs      Runs
	notify    Notifier
	approvers Approvers
	clock     Clock
	config    []Window
	clusters  []string
	loc       *time.Location
	grace     time.Duration
	lease     time.Duration
	lookback  time.Duration
	refresh   time.Duration
	owner     string
	log       *slog.Logger

	tickMu  sync.Mutex // one Tick at a time
	cursor  time.Time  // firings due up to here are handled (guarded by tickMu)
	changed chan struct{}
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// New validates the options and the config windows.
func New(opts Options) (*Scheduler, error) {
	if opts.Store == nil || opts.Runs == nil || opts.Notifier == nil || opts.Approvers == nil {
		return nil, errors.New("windows: Store, Runs, Notifier and Approvers are required")
	}
	s := &Scheduler{
		store: opts.Store, runs: opts.Runs, notify: opts.Notifier, approvers: opts.Approvers,
		clock: opts.Clock, clusters: slices.Clone(opts.Clusters), loc: opts.Location,
		grace: cmp.Or(opts.Grace, DefaultGrace), lease: cmp.Or(opts.Lease, DefaultLease),
		lookback: cmp.Or(opts.Lookback, DefaultLookback), refresh: cmp.Or(opts.Refresh, DefaultRefresh),
		owner: opts.Owner, log: opts.Logger, changed: make(chan struct{}, 1),
	}
	if s.clock == nil {
		s.clock = systemClock{}
	}
	if s.loc == nil {
		s.loc = time.Local
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.owner == "" {
		s.owner = newOwner()
	}
	now := s.clock.Now()
	seen := map[string]bool{}
	for i, w := range opts.Config {
		if err := w.Validate(s.loc, now); err != nil {
			return nil, fmt.Errorf("windows: window %d of cluster %s: %w", i, w.Cluster, err)
		}
		if seen[w.ID] {
			return nil, runbook.Errorf(runbook.Invalid, "windows: cluster %s has the window %q twice", w.Cluster, w.Spec)
		}
		seen[w.ID] = true
		s.config = append(s.config, w)
	}
	return s, nil
}

func newOwner() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Owner is the name this scheduler claims firings under.
func (s *Scheduler) Owner() string { return s.owner }

// Windows returns the config windows, then the stored ones, oldest first.
// A stored window whose spec no longer parses (a zone removed from the
// time zone database) is logged and left out.
func (s *Scheduler) Windows(ctx context.Context) ([]Window, error) {
	return loadWindows(ctx, s.store, s.config, s.loc, s.log)
}

func loadWindows(ctx context.Context, store Store, config []Window, loc *time.Location, log *slog.Logger) ([]Window, error) {
	out := slices.Clone(config)
	if store == nil {
		return out, nil
	}
	stored, err := store.StoredWindows(ctx)
	if err != nil {
		return nil, fmt.Errorf("stored windows: %w", err)
	}
	for _, w := range stored {
		if err := w.Parse(loc); err != nil {
			log.Error("stored window no longer parses", "window", w.ID, "cluster", w.Cluster, "err", err)
			continue
		}
		out = append(out, w)
	}
	return out, nil
}

// Window returns the window id, or an Invalid error naming the known ones.
func (s *Scheduler) Window(ctx context.Context, id string) (*Window, error) {
	ws, err := s.Windows(ctx)
	if err != nil {
		return nil, err
	}
	return findWindow(ws, id)
}

func findWindow(ws []Window, id string) (*Window, error) {
	for i := range ws {
		if ws[i].ID == id {
			return &ws[i], nil
		}
	}
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.ID
	}
	if len(ids) == 0 {
		return nil, runbook.Errorf(runbook.Invalid, "there is no window %q: no windows are scheduled", id)
	}
	return nil, runbook.Errorf(runbook.Invalid, "there is no window %q; the windows are %v", id, ids)
}

// Schedule stores a new window. Only approvers of the cluster may schedule
// (Unauthorized); a bad spec, duration or lead time, or an unknown cluster,
// is Invalid; the same schedule twice for one cluster is a Conflict.
func (s *Scheduler) Schedule(ctx context.Context, req ScheduleRequest) (*Window, error) {
	if !slices.Contains(s.clusters, req.Cluster) {
		return nil, runbook.Errorf(runbook.Invalid, "there is no cluster named %q; the clusters are %v", req.Cluster, s.clusters)
	}
	if err := s.mustApprove(ctx, req.Cluster, req.By, "schedule maintenance windows"); err != nil {
		return nil, err
	}
	w := Window{
		Cluster: req.Cluster, Spec: req.Spec, Duration: cmp.Or(req.Duration, DefaultDuration),
		Announce: req.Announce, Channel: req.Channel, Source: FromSlack, CreatedBy: req.By,
	}
	if req.Announce == nil {
		w.Announce = DefaultAnnounce()
	}
	now := s.clock.Now()
	w.CreatedAt = now.UTC()
	if err := w.Validate(s.loc, now); err != nil {
		return nil, err
	}
	ws, err := s.Windows(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range ws {
		if o.Cluster == w.Cluster && o.Spec == w.Spec {
			return nil, runbook.Errorf(runbook.Conflict, "%s already has a window with the schedule %q: %s", w.Cluster, w.Spec, o.ID)
		}
	}
	for attempt := 0; ; attempt++ {
		if w.ID, err = newID(); err != nil {
			return nil, err
		}
		err = s.store.AddWindow(ctx, w)
		if err == nil || runbook.ErrorKind(err) != runbook.Conflict || attempt == 3 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store window: %w", err)
	}
	s.log.Info("window scheduled", "window", w.ID, "cluster", w.Cluster, "spec", w.Spec, "by", req.By)
	s.poke()
	return &w, nil
}

// Unschedule removes a stored window. Only approvers may (Unauthorized);
// config windows cannot be removed here (Invalid).
func (s *Scheduler) Unschedule(ctx context.Context, id, by string) (*Window, error) {
	w, err := s.Window(ctx, id)
	if err != nil {
		return nil, err
	}
	if w.Source == FromConfig {
		return nil, runbook.Errorf(runbook.Invalid, "window %s comes from the config file (clusters[%s].windows); remove it there", id, w.Cluster)
	}
	if err := s.mustApprove(ctx, w.Cluster, by, "unschedule maintenance windows"); err != nil {
		return nil, err
	}
	removed, err := s.store.RemoveWindow(ctx, id)
	if err != nil {
		return nil, err
	}
	s.log.Info("window unscheduled", "window", id, "cluster", w.Cluster, "by", by)
	s.poke()
	removed.spec = w.spec
	return removed, nil
}

func (s *Scheduler) mustApprove(ctx context.Context, cluster, user, what string) error {
	ok, err := s.approvers.MayApprove(ctx, cluster, user)
	if err != nil {
		return fmt.Errorf("check approver %s: %w", user, err)
	}
	if !ok {
		return runbook.Errorf(runbook.Unauthorized, "only approvers of %s may %s", cluster, what)
	}
	return nil
}

// Skip records an approver's decision that the window's occurrence at start
// opens no run, and announces it. Refusals (not an approver, already
// started, already skipped) are data in the result. An unknown window or a
// start that is not one of its occurrences is Invalid.
func (s *Scheduler) Skip(ctx context.Context, windowID string, start time.Time, by string) (SkipResult, error) {
	w, err := s.Window(ctx, windowID)
	if err != nil {
		return SkipResult{}, err
	}
	if !w.Next(start.Add(-time.Second)).Equal(start) {
		return SkipResult{}, runbook.Errorf(runbook.Invalid, "window %s does not start at %s", windowID, start.UTC().Format(time.RFC3339))
	}
	ok, err := s.approvers.MayApprove(ctx, w.Cluster, by)
	if err != nil {
		return SkipResult{}, fmt.Errorf("check approver %s: %w", by, err)
	}
	if !ok {
		return SkipResult{Reason: fmt.Sprintf("only approvers of %s may skip a maintenance window", w.Cluster)}, nil
	}
	now := s.clock.Now()
	if !now.Before(start) {
		return SkipResult{Reason: "the window has already started; abort its run instead"}, nil
	}
	f := Firing{
		Key: FiringKey(w.ID, start, KindStart, 0), WindowID: w.ID, Cluster: w.Cluster,
		Start: start.UTC(), Kind: KindStart, Due: start.UTC(), Plan: PlanSkip,
		Owner: s.owner, By: by, ClaimedAt: now.UTC(),
	}
	won, cur, err := s.store.Claim(ctx, f)
	if err != nil {
		return SkipResult{}, fmt.Errorf("record skip of %s: %w", f.Key, err)
	}
	if !won {
		if cur.Plan == PlanSkip {
			return SkipResult{Reason: "already skipped", Already: &cur}, nil
		}
		return SkipResult{Reason: "the window has already started; abort its run instead", Already: &cur}, nil
	}
	s.log.Info("window skipped", "window", w.ID, "cluster", w.Cluster, "start", start, "by", by)
	occ := occurrence(*w, start)
	result := "skipped"
	if err := s.notify.Skipped(ctx, Skipped{Occurrence: occ, By: by, Reason: "skipped by an approver"}); err != nil {
		s.log.Error("announce skip", "window", w.ID, "cluster", w.Cluster, "err", err)
		result = "skipped; the announcement failed: " + runbook.ErrorMessage(err)
	}
	if err := s.store.Finish(ctx, f.Key, s.owner, result, s.clock.Now().UTC()); err != nil {
		return SkipResult{}, fmt.Errorf("finish skip of %s: %w", f.Key, err)
	}
	return SkipResult{Skipped: true}, nil
}

func occurrence(w Window, start time.Time) Occurrence {
	return Occurrence{Window: w, Start: start, End: start.Add(w.Duration)}
}

// Upcoming returns each window of cluster ("" for all) with its next n
// starts after the scheduler's now.
func (s *Scheduler) Upcoming(ctx context.Context, cluster string, n int) ([]Upcoming, error) {
	ws, err := s.Windows(ctx)
	if err != nil {
		return nil, err
	}
	return ListUpcoming(ctx, s.store, ws, cluster, s.clock.Now(), n)
}

// ListUpcoming returns each window of cluster ("" for all) with its next n starts
// after now, their announcement times and any skip recorded in store (which
// may be nil). Windows come ordered by their next start.
func ListUpcoming(ctx context.Context, store Store, ws []Window, cluster string, now time.Time, n int) ([]Upcoming, error) {
	var out []Upcoming
	for _, w := range ws {
		if cluster != "" && w.Cluster != cluster {
			continue
		}
		u := Upcoming{Window: w}
		var starts []time.Time
		// The occurrence in progress, unless the window was made after it began.
		if prev := w.Next(now.Add(-w.Duration)); !prev.IsZero() && !prev.After(now) && !prev.Before(w.CreatedAt) {
			starts = append(starts, prev)
		}
		starts = append(starts, w.Starts(now, n)...)
		for _, st := range starts {
			p := Planned{Start: st, End: st.Add(w.Duration)}
			for _, l := range w.Announce { // longest lead first: earliest first
				p.Announce = append(p.Announce, st.Add(-l))
			}
			if store != nil {
				f, err := store.Firing(ctx, FiringKey(w.ID, st, KindStart, 0))
				if err != nil {
					return nil, fmt.Errorf("window %s: %w", w.ID, err)
				}
				if f != nil && f.Plan == PlanSkip {
					p.Skip = f
				}
			}
			if st.After(now) {
				u.Next = append(u.Next, p)
			} else {
				u.Current = &p
			}
		}
		out = append(out, u)
	}
	sort.SliceStable(out, func(i, j int) bool {
		return firstStart(out[i]).Before(firstStart(out[j]))
	})
	return out, nil
}

func firstStart(u Upcoming) time.Time {
	if u.Current != nil {
		return u.Current.Start
	}
	if len(u.Next) == 0 {
		return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return u.Next[0].Start
}

// poke wakes Run to recompute its next wake-up.
func (s *Scheduler) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Run fires windows until ctx ends: it calls Tick, then waits on the clock
// until the next firing is due, a window is scheduled or unscheduled, or
// Refresh passes (to see windows other replicas stored).
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		next, err := s.Tick(ctx)
		if ctx.Err() != nil {
			return nil
		}
		now := s.clock.Now()
		wake := now.Add(s.refresh)
		if err != nil {
			s.log.Error("windows tick", "err", err)
		} else if !next.IsZero() && next.Before(wake) {
			wake = next
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.clock.After(wake.Sub(now)):
		case <-s.changed:
		}
	}
}
