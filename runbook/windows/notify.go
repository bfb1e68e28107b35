package windows

import (
	"context"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// Clock is where the scheduler gets the time and waits. Tests drive a fake.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Runs opens maintenance runs. *runbook.Engine implements it.
type Runs interface {
	// Start opens a run (preflight runs; every gate waits for an approval).
	// If a run for the cluster is already open, StartResult.Existing is it.
	Start(ctx context.Context, req runbook.StartRequest) (runbook.StartResult, error)
	// OpenRun returns the cluster's open run, or nil.
	OpenRun(ctx context.Context, cluster string) (*runbook.Run, error)
	// History returns the cluster's latest runs, newest first.
	History(ctx context.Context, cluster string, limit int) ([]*runbook.Run, error)
}

// The engine is what opens the runs; its clock is a Clock.
var (
	_ Runs  = (*runbook.Engine)(nil)
	_ Clock = runbook.RealClock{}
)

// Approvers decides who may schedule, unschedule and skip windows: the same
// people who may approve the cluster's gates.
type Approvers interface {
	MayApprove(ctx context.Context, cluster, user string) (bool, error)
}

// Notifier tells people about windows; the Slack bot implements it by
// posting to the window's channel. Each method is called after the firing
// was claimed in the store and before it is marked done: an error is logged
// and recorded as the firing's result, and the firing is not retried (a
// retry after a partial post would repeat it).
type Notifier interface {
	// Announce says the window starts in Lead: which cluster, when, how
	// long, that the cluster will be fully down, with a way for approvers
	// to skip it.
	Announce(ctx context.Context, a Announcement) error
	// Started says the window opened Run. After a crash it may be called
	// again for the same run; post the run's card once per run.
	Started(ctx context.Context, s Started) error
	// Skipped says the occurrence will not open a run: an approver skipped
	// it (By), or a run was already open (Existing), or opening failed.
	Skipped(ctx context.Context, s Skipped) error
	// Missed says firings were not carried out because sdbmaint was down
	// (or stopped while carrying them out) past the grace period. A missed
	// end notice is only reported while the window's run still waits
	// before its stop gate (then stopping needs an override).
	Missed(ctx context.Context, m Missed) error
	// WindowClosed says the window ended before its run's stop gate was
	// approved: stopping now needs an approver's explicit override.
	WindowClosed(ctx context.Context, c Closed) error
}

// Occurrence is one start of a window.
type Occurrence struct {
	Window Window
	Start  time.Time
	End    time.Time // Start + Window.Duration
}

// Channel is where notices about the occurrence go; "" means the default.
func (o Occurrence) Channel() string { return o.Window.Channel }

// Announcement is a notice ahead of an occurrence.
type Announcement struct {
	Occurrence
	Lead time.Duration // how far ahead of the start this notice is due
	Key  string        // the firing's key
}

// Started is the run an occurrence opened.
type Started struct {
	Occurrence
	Run *runbook.Run
}

// Skipped is an occurrence that does not open a run, and why.
type Skipped struct {
	Occurrence
	By       string       // the approver who skipped it; "" otherwise
	Existing *runbook.Run // the open run that made the window skip; nil otherwise
	Reason   string       // for people: why, in a sentence
}

// Missed lists the firings of one occurrence that were reported missed.
type Missed struct {
	Occurrence
	Firings []Firing
	// InDoubt is set when sdbmaint stopped while carrying them out: they may
	// or may not have reached the channel.
	InDoubt bool
	Reason  string // for people
}

// Closed is an occurrence that ended while its run had not passed the stop gate.
type Closed struct {
	Occurrence
	Run *runbook.Run
}

// SkipResult is the answer to Skip. A refusal is data: Skipped is false and
// Reason says why; Already is the earlier decision on the same start.
type SkipResult struct {
	Skipped bool
	Reason  string
	Already *Firing
}

// ScheduleRequest asks for a new stored window.
type ScheduleRequest struct {
	Cluster  string
	Spec     string
	Duration time.Duration   // 0: DefaultDuration
	Announce []time.Duration // nil: DefaultAnnounce(); empty non-nil: no announcements
	Channel  string
	By       string // the Slack user asking; must be an approver of the cluster
}

// Upcoming is a window with its next starts.
type Upcoming struct {
	Window Window
	// Current is the occurrence in progress at the time asked, if any.
	Current *Planned
	Next    []Planned
}

// Planned is one occurrence ahead, with its announcements and whether an
// approver skipped it.
type Planned struct {
	Start, End time.Time
	Announce   []time.Time // when each announcement is due, earliest first
	Skip       *Firing     // the approver's skip, if any
}
