package runbook

import "context"

// Store keeps runs durably: every change of a run, every approval, every
// audit line and every line of output is written before the next thing
// happens, so a restart loses nothing and repeats nothing.
//
// Implementations: runbook/sqlite (the default, an embedded file) and
// runbook/memstore (in memory, for tests and the demo). Both pass
// runbook/storetest.RunConformance.
//
// A maintenance-window scheduler keeps its own records (windows made in
// Slack, announcements and starts fired) behind an interface declared in
// its own package; runbook/sqlite lets it add tables to the same file
// (see sqlite.Store.Migrate).
type Store interface {
	RunStore
	AuditLog
	OutputLog
	// Close releases the store.
	Close() error
}

// RunStore keeps runs with their phases, steps and approvals.
type RunStore interface {
	// CreateRun stores a new open run. If the cluster already has an open
	// run, nothing is stored and that run is returned as existing (its
	// StartedBy and StartedAt say who and when): one open run per cluster
	// is enforced by the store itself, so two processes cannot both start
	// one.
	CreateRun(ctx context.Context, run *Run) (existing *Run, err error)
	// UpdateRun replaces the stored run with u.Run if the stored version is
	// still u.Prev, stores the approval of u.Approval's gate, and appends
	// u.Audit, all in one transaction. A stored version other than u.Prev,
	// or a gate that already has an approval, is a Conflict error and
	// changes nothing.
	UpdateRun(ctx context.Context, u Update) error
	// GetRun returns the run with its phases, steps and approvals. An
	// unknown ID is an Invalid error.
	GetRun(ctx context.Context, id string) (*Run, error)
	// OpenRun returns the cluster's open run, or nil and no error.
	OpenRun(ctx context.Context, cluster string) (*Run, error)
	// OpenRuns returns every open run, oldest first.
	OpenRuns(ctx context.Context) ([]*Run, error)
	// History returns the cluster's runs ("" = every cluster), newest
	// first, at most limit of them (0 = all).
	History(ctx context.Context, cluster string, limit int) ([]*Run, error)
}

// Update is one compare-and-set write of a run.
type Update struct {
	Run  *Run
	Prev int64 // the version the change was made from
	// Approval names the phase whose gate this update approves; its
	// Phase.Approval is stored once per (run, phase).
	Approval PhaseName
	Audit    []Audit
}

// AuditLog is the append-only record of who did what, when, with what
// result: every decision, accepted or refused, and what sdbmaint did.
type AuditLog interface {
	// AppendAudit appends one line.
	AppendAudit(ctx context.Context, a Audit) error
	// Audit returns the run's lines ("" = all runs) in the order written.
	Audit(ctx context.Context, runID string) ([]Audit, error)
}

// OutputLog keeps the output of steps, line by line.
type OutputLog interface {
	// AppendOutput appends lines, in order, all or none.
	AppendOutput(ctx context.Context, chunks ...Chunk) error
	// Output returns the step's lines ("" = every step of the run) in the
	// order written.
	Output(ctx context.Context, runID, stepID string) ([]Chunk, error)
}
