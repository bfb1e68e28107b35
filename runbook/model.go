package runbook

import "time"

// PhaseName names one phase of the runbook.
type PhaseName string

// The phases, in the only order they run.
const (
	PhasePreflight    PhaseName = "preflight"
	PhaseBackup       PhaseName = "backup"
	PhaseSnapshot     PhaseName = "snapshot"
	PhaseSyncSnapshot PhaseName = "sync-snapshot"
	PhaseStop         PhaseName = "stop"
	PhaseMaintenance  PhaseName = "maintenance"
	PhaseStart        PhaseName = "start"
	PhaseFinalize     PhaseName = "finalize"
)

// Phases lists every phase in runbook order.
var Phases = []PhaseName{
	PhasePreflight, PhaseBackup, PhaseSnapshot, PhaseSyncSnapshot,
	PhaseStop, PhaseMaintenance, PhaseStart, PhaseFinalize,
}

// RunStatus is where a run stands as a whole.
type RunStatus string

// Run statuses. Only RunActive is open; the others are final.
const (
	RunActive    RunStatus = "active"    // open: a phase runs or a gate waits
	RunSucceeded RunStatus = "succeeded" // finalize finished and post-checks passed
	RunDegraded  RunStatus = "degraded"  // finalize finished but a post-check failed
	RunAborted   RunStatus = "aborted"   // ended by a person (after recovery, if nodes were down)
	RunEnded     RunStatus = "ended"     // ended before anything changed (blocked preflight, end run)
)

// Open reports whether the run is still open.
func (s RunStatus) Open() bool { return s == RunActive }

// PhaseStatus is where one phase stands.
type PhaseStatus string

// Phase statuses.
const (
	PhasePending  PhaseStatus = "pending" // not reached yet
	PhaseWaiting  PhaseStatus = "waiting" // its gate waits for a decision
	PhaseRunning  PhaseStatus = "running" // steps are executing
	PhaseFailed   PhaseStatus = "failed"  // a step failed or was interrupted: Retry, Skip or Abort
	PhaseBlocked  PhaseStatus = "blocked" // preflight found a failing blocking check
	PhaseDone     PhaseStatus = "done"
	PhaseSkipped  PhaseStatus = "skipped"  // nothing to do (no backup target) or skipped by a person
	PhaseCanceled PhaseStatus = "canceled" // the run ended before this phase ran
)

// StepStatus is where one step stands.
type StepStatus string

// Step statuses.
const (
	StepPending     StepStatus = "pending"
	StepRunning     StepStatus = "running" // recorded as started; the command is out
	StepDone        StepStatus = "done"
	StepFailed      StepStatus = "failed"
	StepInterrupted StepStatus = "interrupted" // started, never finished: the process died
	StepSkipped     StepStatus = "skipped"
)

// Run is one maintenance of one cluster.
type Run struct {
	ID        string
	Cluster   string
	StartedBy string // Slack user ID, or "terminal:USER"
	StartedAt time.Time
	Window    string // the maintenance window that opened it, if any
	// WindowEnds is when that window closes: approving stop after it needs
	// an explicit ActOverride from an approver. Zero for runs without one.
	WindowEnds time.Time
	Status     RunStatus
	// Version increases with every change of the run; a decision names the
	// version it was made on (compare-and-set).
	Version int64
	Current PhaseName // the phase that runs or waits; "" once the run is over
	Phases  []*Phase
	// Preflight is the latest preflight report (the stop phase's re-check
	// replaces preflight's own); PostCheck the finalize one.
	Preflight *Report
	PostCheck *Report
	// DetectionOriginal is leaf_failure_detection as preflight read it;
	// DetectionChanged is set when the run turned it off.
	DetectionOriginal bool
	DetectionChanged  bool
	// Recovering is set once abort turned into recovery (nodes may be down).
	Recovering bool
	DownSince  time.Time // the first stop command; zero while nothing stopped
	UpAt       time.Time // the MA answered SQL again after start
	EndedAt    time.Time
	// Overrides records gates opened by an explicit override (for example a
	// window whose time ran out before stop was approved).
	Note string // why the run ended, in words for people
	// Settings are the cluster settings the run was started with. They are
	// kept with the run so that a restart continues the plan that people
	// approved even if the config file changed meanwhile.
	Settings RunSettings
}

// RunSettings are the parts of a cluster's configuration that shape a run's
// plan. They are copied from Cluster when the run starts.
type RunSettings struct {
	BackupTo        string        // BACKUP DATABASE target; "" skips the backup phase
	AutoApprove     []PhaseName   // gates that need no human
	Parallelism     int           // leaves stopped/started at a time; 0 = all
	RecoveryTimeout time.Duration // how long start waits for leaves to recover
}

// Phase returns the phase named name, or nil.
func (r *Run) Phase(name PhaseName) *Phase {
	for _, p := range r.Phases {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Downtime is how long the cluster was (or has been) down at now.
func (r *Run) Downtime(now time.Time) time.Duration {
	if r.DownSince.IsZero() {
		return 0
	}
	if !r.UpAt.IsZero() {
		return r.UpAt.Sub(r.DownSince)
	}
	return now.Sub(r.DownSince)
}

// Phase is one phase of a run.
type Phase struct {
	Name      PhaseName
	Status    PhaseStatus
	Approval  *Approval // who opened its gate; nil for auto-approved or ungated phases
	Auto      bool      // gate passed by auto_approve
	StartedAt time.Time
	EndedAt   time.Time
	Steps     []*Step
	Note      string // e.g. "skipped: no backup target configured"
}

// Step is one unit of work: one database or one node.
type Step struct {
	ID         string // unique within the run: "snapshot/sales", "stop/9F3A..."
	Phase      PhaseName
	Kind       StepKind // what the step does
	Tier       int      // steps of a phase run tier by tier, lowest first; a tier's steps in parallel
	Role       Role     // for node steps: the node's role
	Target     string   // database name or node ID
	Label      string   // for people: "SNAPSHOT DATABASE `sales`", "stop MA 9F3A… (10.0.0.10:3306)"
	Status     StepStatus
	Attempts   int
	StartedAt  time.Time
	EndedAt    time.Time
	Error      string // the last failure, safe to show
	Evidence   string // how done was established after an interruption
	SkipReason string
}

// StepKind names what a step does.
type StepKind string

// Step kinds. Preflight, the pre-stop check, post-check and the two waits
// only read the cluster, so after a crash they are simply run again; every
// other kind changes the cluster and is re-read or waits for a person's
// Retry.
const (
	StepPreflight        StepKind = "preflight"         // the preflight checks
	StepPreStopCheck     StepKind = "pre-stop-check"    // the preflight checks again, first in stop: approvals may come hours after preflight
	StepBackup           StepKind = "backup"            // BACKUP DATABASE db TO target
	StepSnapshot         StepKind = "snapshot"          // SNAPSHOT DATABASE db
	StepSyncSnapshot     StepKind = "sync-snapshot"     // _SYNC_SNAPSHOT db
	StepStopNode         StepKind = "stop-node"         // sdb-admin stop-node, confirmed by list-nodes
	StepStartNode        StepKind = "start-node"        // sdb-admin start-node, confirmed by list-nodes
	StepDetectionOff     StepKind = "detection-off"     // SET GLOBAL leaf_failure_detection=OFF on the MA
	StepWaitRecovered    StepKind = "wait-recovered"    // poll list-nodes until every started leaf is recovered
	StepWaitSQL          StepKind = "wait-sql"          // poll the MA until it answers SQL
	StepRestoreDetection StepKind = "restore-detection" // set leaf_failure_detection back to the preflight value
	StepPostCheck        StepKind = "post-check"        // the preflight checks again, after start
)

// ReadOnly reports whether the step only reads the cluster, so that running
// it again after an interruption cannot change anything.
func (k StepKind) ReadOnly() bool {
	switch k {
	case StepPreflight, StepPreStopCheck, StepWaitRecovered, StepWaitSQL, StepPostCheck:
		return true
	}
	return false
}

// Approval records who decided a gate and when.
type Approval struct {
	By     string
	At     time.Time
	Action Action
	Reason string
}

// Action is what a person (or a schedule) decides at a gate or a failure.
type Action string

// Actions.
const (
	ActApprove         Action = "approve"          // open the current gate
	ActAbort           Action = "abort"            // end the run; recovery once nodes may be down
	ActRetry           Action = "retry"            // re-run the failed or interrupted steps
	ActSkip            Action = "skip"             // skip the failed step (needs a reason)
	ActRerunPreflight  Action = "rerun-preflight"  // blocked preflight: try again
	ActEndRun          Action = "end-run"          // blocked preflight: give up
	ActMaintenanceDone Action = "maintenance-done" // the maintenance gate
	ActDetectionOff    Action = "detection-off"    // MA will not stop: turn leaf_failure_detection OFF and go on
	ActSkipPhase       Action = "skip-phase"       // skip the backup phase (needs a reason)
	ActOverride        Action = "override"         // open a gate that a window's end closed
)

// Decision is one person's decision on a run, drawn on the run at Version.
type Decision struct {
	RunID   string
	Phase   PhaseName
	Version int64
	Action  Action
	By      string
	Reason  string
}

// Outcome is the engine's answer to a Decision. A refusal is data: Accepted
// is false and Reason says why in words for the person who clicked.
type Outcome struct {
	Accepted bool
	Reason   string
	// Already is set when the gate was decided before: by whom and when.
	Already *Approval
	Run     *Run
}

// Audit is one line of the append-only audit log.
type Audit struct {
	At      time.Time
	RunID   string
	Cluster string
	Phase   PhaseName
	Who     string
	What    string // "approve", "refused approve", "step failed", ...
	Result  string
}

// Chunk is a piece of step output as stored.
type Chunk struct {
	RunID  string
	StepID string
	At     time.Time
	Stream string
	Line   string
}

// EventKind names what happened in an Event.
type EventKind string

// Event kinds the engine publishes.
const (
	EventRunStarted    EventKind = "run-started"
	EventGateWaiting   EventKind = "gate-waiting" // Run.Current waits for a decision
	EventStepStarted   EventKind = "step-started"
	EventOutput        EventKind = "output"        // one line of step output
	EventStepFinished  EventKind = "step-finished" // done, failed, skipped or interrupted
	EventPhaseFinished EventKind = "phase-finished"
	EventRunUpdated    EventKind = "run-updated" // any other change (approval, refusal-free state change)
	EventRunFinished   EventKind = "run-finished"
)

// Event tells watchers what happened. Run is a snapshot, safe to keep.
type Event struct {
	Kind  EventKind
	At    time.Time
	Run   *Run
	Phase PhaseName
	Step  *Step  // for step events
	Line  *Chunk // for EventOutput
}
