package runbook_test

// The fault matrix: every fault the simulated cluster offers, injected
// right before the approval of every phase where it can strike, against
// the real adapters (MySQL protocol, sdb-admin over SSH) and a real SQLite
// store. For each it checks that the run stops safely with a message that
// names what failed, that every choice the run then offers (and only
// those) leads somewhere safe, that the cluster can be brought back, and
// that the audit log holds every decision and every failure.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster"
	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/runbooktest"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
)

// Timing of the matrix's clusters: milliseconds, so that about a hundred
// runs finish in seconds. In the slow cases statements time out after
// fmSlowStatement and the fault delays every statement by more than that;
// elsewhere the timeout is generous, so that a loaded machine cannot fail
// a statement the case did not mean to fail.
const (
	fmStatement     = 10 * time.Second
	fmSlowStatement = 300 * time.Millisecond
	fmSlow          = "slow:1s"
	fmRecovery      = 400 * time.Millisecond // the run's recovery_timeout
	fmReason        = "fault matrix: the operator decided so"
)

// everyAction is every action a person can send; the ones a failure does
// not offer must all be refused.
var everyAction = []runbook.Action{runbook.ActApprove, runbook.ActAbort, runbook.ActRetry, runbook.ActSkip,
	runbook.ActRerunPreflight, runbook.ActEndRun, runbook.ActMaintenanceDone, runbook.ActDetectionOff,
	runbook.ActSkipPhase, runbook.ActOverride}

// fmRun is one run of the matrix: its own cluster, store and engine, and
// the record of what the test decided and saw fail.
type fmRun struct {
	t     *testing.T
	sim   *sim.Cluster
	store *sqlite.Store
	eng   *runbook.Engine
	sub   *runbook.Subscription
	runID string

	decided  []string // "phase who what" of every decision the test sent, accepted or refused
	failures []string // "stepID: error" of every failed step the events showed
	blocks   int      // blocked-preflight gates the events showed
	faults   []string // faults the test injected and has not cleared
}

func newFMRun(t *testing.T, statementTimeout time.Duration) *fmRun {
	t.Helper()
	ctx := context.Background()
	c, err := sim.Start(ctx, sim.Options{Aggregators: 1, Leaves: 2, Databases: []string{"sales"},
		StopTime: 3 * time.Millisecond, StartTime: 3 * time.Millisecond, RecoveryTime: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	dir := t.TempDir()
	files, err := c.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	sqlc, err := cluster.NewClient(cluster.SQLOptions{Addr: c.MySQLAddr(), User: sim.DefaultUser, Password: sim.DefaultPassword,
		ConnectTimeout: 2 * time.Second, StatementTimeout: statementTimeout, AdminTimeout: statementTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlc.Close() })
	runner, err := cluster.NewSSHRunner(cluster.SSHOptions{Addr: c.SSHAddr(), User: files.User, KeyFile: files.KeyFile,
		KnownHostsFile: files.KnownHosts, DialTimeout: 2 * time.Second, MaxSessions: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Close() })
	admin := &cluster.SDBAdmin{Runner: runner}
	rc := &runbook.Cluster{
		Name:      "sim",
		Preflight: cluster.NewPreflighter(cluster.PreflightOptions{Cluster: "sim", SQL: sqlc, Admin: admin, BackupRecent: 24 * time.Hour}),
		DB:        sqlc, Detection: sqlc, Ping: sqlc, Nodes: admin,
		BackupTo: "/backups", RecoveryTimeout: fmRecovery, PollInterval: 3 * time.Millisecond, ConfirmTimeout: 2 * time.Second,
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "sdbmaint.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := &fmRun{t: t, sim: c, store: st}
	m.eng = runbook.NewEngine(runbook.EngineConfig{Store: st, Clusters: runbooktest.Source{"sim": rc}, Logger: testLogger(t)})
	m.sub = m.eng.Subscribe()
	t.Cleanup(func() {
		m.sub.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.eng.Drain(ctx)
	})
	return m
}

// await reads events until cond holds, recording every step failure and
// blocked preflight on the way.
func (m *fmRun) await(what string, cond func(runbook.Event) bool) runbook.Event {
	m.t.Helper()
	return runbooktest.Await(m.t, m.sub, wait, what, func(ev runbook.Event) bool {
		if ev.Kind == runbook.EventStepFinished && ev.Step != nil && ev.Step.Status == runbook.StepFailed {
			m.failures = append(m.failures, ev.Step.ID+": "+ev.Step.Error)
		}
		if ev.Kind == runbook.EventGateWaiting && ev.Phase == runbook.PhasePreflight {
			if p := ev.Run.Phase(runbook.PhasePreflight); p.Status == runbook.PhaseBlocked {
				m.blocks++
			}
		}
		return cond(ev)
	})
}

// next returns the run at its next decision or its end.
func (m *fmRun) next() *runbook.Run {
	m.t.Helper()
	return m.await("the next decision or the end", func(ev runbook.Event) bool {
		return ev.Kind == runbook.EventRunFinished || runbooktest.Waiting("")(ev)
	}).Run
}

func (m *fmRun) current() *runbook.Run {
	m.t.Helper()
	r, err := m.eng.Get(context.Background(), m.runID)
	if err != nil {
		m.t.Fatal(err)
	}
	return r
}

// send sends a decision on the run as it is now and returns the outcome.
func (m *fmRun) send(a runbook.Action) runbook.Outcome {
	m.t.Helper()
	r := m.current()
	out, err := m.eng.Decide(context.Background(), runbook.Decision{RunID: r.ID, Phase: r.Current, Version: r.Version,
		Action: a, By: approver, Reason: fmReason})
	if err != nil {
		m.t.Fatalf("%s at %s: %v", a, r.Current, err)
	}
	what := string(a)
	if !out.Accepted {
		what = "refused " + what
	}
	m.decided = append(m.decided, fmt.Sprintf("%s %s %s", r.Current, approver, what))
	return out
}

// decide sends a decision that must be accepted.
func (m *fmRun) decide(a runbook.Action) {
	m.t.Helper()
	if out := m.send(a); !out.Accepted {
		m.t.Fatalf("%s refused: %s", a, out.Reason)
	}
}

func (m *fmRun) inject(spec string) {
	m.t.Helper()
	if err := m.sim.Inject(spec); err != nil {
		m.t.Fatal(err)
	}
	if spec != "ssh-drop" {
		m.faults = append(m.faults, spec)
	}
}

// clear clears every fault the test injected, as the operator who fixed
// the cause would, and waits until the cluster shows it: no fault active
// and no running leaf still recovering.
func (m *fmRun) clear() {
	m.t.Helper()
	for _, f := range m.faults {
		if err := m.sim.Inject("clear:" + f); err != nil {
			m.t.Fatal(err)
		}
	}
	m.faults = nil
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := m.sim.Wait(ctx, func(st sim.State) bool {
		for _, n := range st.Nodes {
			if n.Process == "running" && n.State == "recovering" {
				return false
			}
		}
		return len(st.Faults) == 0
	}); err != nil {
		m.t.Fatalf("the cluster did not settle after clearing the faults: %v", err)
	}
}

// gateAction is the action that opens the current gate.
func gateAction(r *runbook.Run) runbook.Action {
	if r.Current == runbook.PhaseMaintenance {
		return runbook.ActMaintenanceDone
	}
	return runbook.ActApprove
}

// toEnd approves every gate until the run ends, from r (the run as the
// last event showed it) or, when r is nil, from the next decision. A
// failure on the way ends the test unless onFail decides it (and returns
// true).
func (m *fmRun) toEnd(r *runbook.Run, onFail func(r *runbook.Run) bool) *runbook.Run {
	m.t.Helper()
	if r == nil {
		r = m.next()
	}
	for r.Status.Open() {
		p := r.CurrentPhase()
		switch {
		case p.Status == runbook.PhaseWaiting:
			m.decide(gateAction(r))
		case onFail != nil && onFail(r):
		default:
			m.t.Fatalf("the run stopped at %s (%s): %s", p.Name, p.Status, runbook.Describe(r, p.Name, time.Now()))
		}
		r = m.next()
	}
	return r
}

// laterPhasesUntouched checks that nothing after the run's current phase
// has started.
func laterPhasesUntouched(t *testing.T, r *runbook.Run) {
	t.Helper()
	i := slices.Index(runbook.Phases, r.Current)
	for _, p := range r.Phases[i+1:] {
		if p.Status != runbook.PhasePending || !p.StartedAt.IsZero() {
			t.Errorf("phase %s is %s after %s stopped", p.Name, p.Status, r.Current)
		}
		for _, s := range p.Steps {
			if s.Attempts > 0 {
				t.Errorf("step %s of a later phase ran after %s stopped", s.ID, r.Current)
			}
		}
	}
}

// fmCase is one fault injected before one gate.
type fmCase struct {
	name  string
	at    runbook.PhaseName         // the gate before whose approval it is injected (preflight: before the run starts)
	fault func(m *fmRun) string     // the SPEC
	fails runbook.PhaseName         // where the run stops; "" when it does not stop
	want  []runbook.Action          // the choices offered there
	text  string                    // the message names this
	ends  runbook.RunStatus         // for faults that do not stop the run: how it ends
	check string                    // ... and the check that says why (a warning for advisory faults)
	dOff  bool                      // reach the failure through detection-off (stop-fails on the MA first)
	after map[runbook.Action]fmThen // how a choice ends when it is not the usual
	// probe lists actions that must not be offered here: if they are, the
	// subtest takes them to show what they would do.
	probe []runbook.Action
	// take, when set, limits the choices taken to these (the offered ones
	// are still checked): a failure of the same step kind whose every
	// choice another case takes.
	take []runbook.Action
}

// fmThen is how the run ends after a choice.
type fmThen struct {
	status runbook.RunStatus
	note   string // the run's note says this
	// down: nodes may stay down on this path; every node that is not
	// online at the end must be named in the run's note.
	down bool
	// violations lists the ordering rules the sim records on this path
	// because a person explicitly skipped the step that keeps that order
	// (a leaf's start: the CAs and the MA then start while it is down).
	violations []string
	// again: clearing the fault does not make the cluster healthy (a leaf
	// that was failed over comes back with orphans), so the retried step
	// fails again with an error naming this; the operator then aborts.
	again string
}

func leafID(m *fmRun) string { return m.sim.Leaves()[1] }
func caID(m *fmRun) string   { return m.sim.Aggregators()[0] }
func maID(m *fmRun) string   { return m.sim.Master() }

func spec(kind string, id func(*fmRun) string) func(*fmRun) string {
	return func(m *fmRun) string { return kind + ":" + id(m) }
}

func fixed(s string) func(*fmRun) string { return func(*fmRun) string { return s } }

func fmCases() []fmCase {
	const (
		pre, bak, snap, syn = runbook.PhasePreflight, runbook.PhaseBackup, runbook.PhaseSnapshot, runbook.PhaseSyncSnapshot
		stop, mnt, start    = runbook.PhaseStop, runbook.PhaseMaintenance, runbook.PhaseStart
		fin                 = runbook.PhaseFinalize
	)
	blocked := []runbook.Action{runbook.ActRerunPreflight, runbook.ActEndRun}
	failed := []runbook.Action{runbook.ActRetry, runbook.ActSkip, runbook.ActAbort}
	maFailed := []runbook.Action{runbook.ActRetry, runbook.ActDetectionOff, runbook.ActAbort}
	retryOnly := []runbook.Action{runbook.ActRetry}
	// Skipping a node's start leaves it down; the post-check says so.
	startSkipped := func(note string, violations ...string) map[runbook.Action]fmThen {
		return map[runbook.Action]fmThen{runbook.ActSkip: {status: runbook.RunDegraded, note: note, down: true, violations: violations}}
	}
	const caEarly, maEarly = sim.RuleAggregatorStartedEarly, sim.RuleMasterStartedEarly
	return []fmCase{
		// Preflight: blocking checks block, advisory ones warn, a cluster
		// that cannot be read blocks with "could not run". An offline
		// leaf's copies come back as orphans after the failover, so
		// preflight blocks again once it is back: the way out is ending
		// the run.
		{name: "LeafOffline", at: pre, fault: spec("leaf-offline", leafID), fails: pre, want: blocked, text: runbook.CheckLeavesOnline,
			after: map[runbook.Action]fmThen{runbook.ActRerunPreflight: {status: runbook.RunEnded, note: "ended by"}}},
		{name: "AggregatorOffline", at: pre, fault: spec("aggregator-offline", caID), fails: pre, want: blocked, text: runbook.CheckAggregatorsOnline},
		{name: "Orphan", at: pre, fault: fixed("orphan:sales"), fails: pre, want: blocked, text: runbook.CheckNoOrphanPartitions},
		{name: "StuckRecovering", at: pre, fault: spec("stuck-recovering", leafID), fails: pre, want: blocked, text: runbook.CheckLeavesOnline},
		{name: "SSHDrop", at: pre, fault: fixed("ssh-drop"), fails: pre, want: blocked, text: "list-nodes"},
		{name: "SQLErrorShowLeaves", at: pre, fault: fixed("sql-error:SHOW LEAVES"), fails: pre, want: blocked, text: "injected failure"},
		{name: "Slow", at: pre, fault: fixed(fmSlow), fails: pre, want: blocked, text: "no answer within 300ms"},
		{name: "RebalancePending", at: pre, fault: fixed("rebalance-pending:sales"), ends: runbook.RunSucceeded, check: runbook.CheckRebalancePlan},
		{name: "RedundancyPending", at: pre, fault: fixed("redundancy-pending:sales"), ends: runbook.RunSucceeded, check: runbook.CheckRestoreRedundancyPlan},
		{name: "StaleBackup", at: pre, fault: fixed("stale-backup:sales"), ends: runbook.RunSucceeded, check: runbook.CheckRecentBackup},

		// The database phases.
		{name: "SQLErrorBackup", at: bak, fault: fixed("sql-error:BACKUP"), fails: bak, want: failed, text: "injected failure"},
		{name: "StuckRecovering", at: bak, fault: spec("stuck-recovering", leafID), fails: bak, want: failed, text: "not available", take: retryOnly},
		{name: "Slow", at: bak, fault: fixed(fmSlow), fails: bak, want: failed, text: "no answer within 300ms", take: retryOnly},
		{name: "SQLErrorSnapshot", at: snap, fault: fixed("sql-error:SNAPSHOT"), fails: snap, want: failed, text: "injected failure"},
		{name: "StuckRecovering", at: snap, fault: spec("stuck-recovering", leafID), fails: snap, want: failed, text: "not available", take: retryOnly},
		{name: "Slow", at: snap, fault: fixed(fmSlow), fails: snap, want: failed, text: "no answer within 300ms"},
		{name: "SQLErrorSyncSnapshot", at: syn, fault: fixed("sql-error:_SYNC_SNAPSHOT"), fails: syn, want: failed, text: "injected failure"},
		{name: "StuckRecovering", at: syn, fault: spec("stuck-recovering", leafID), fails: syn, want: failed, text: "not available"},
		{name: "Slow", at: syn, fault: fixed(fmSlow), fails: syn, want: failed, text: "no answer within 300ms", take: retryOnly},

		// Stop.
		{name: "StopFailsMA", at: stop, fault: spec("stop-fails", maID), fails: stop, want: maFailed, text: "exited with status 1"},
		{name: "StopFailsCA", at: stop, fault: spec("stop-fails", caID), fails: stop, want: failed, text: "exited with status 1"},
		{name: "StopFailsLeaf", at: stop, fault: spec("stop-fails", leafID), fails: stop, want: failed, text: "exited with status 1"},
		// Faults that arise after preflight: stop's re-check meets them before
		// any node is touched. An offline leaf is failed over (detection is ON)
		// and comes back with orphans: a retry fails again, naming them; the
		// way on is abort, or a skip that leaves them to the post-check.
		{name: "LeafOffline", at: stop, fault: spec("leaf-offline", leafID), fails: stop, want: failed, text: runbook.CheckLeavesOnline,
			after: map[runbook.Action]fmThen{
				runbook.ActRetry: {status: runbook.RunAborted, note: "no node was stopped", again: runbook.CheckNoOrphanPartitions},
				runbook.ActSkip:  {status: runbook.RunDegraded, note: runbook.CheckNoOrphanPartitions},
			}},
		{name: "AggregatorOffline", at: stop, fault: spec("aggregator-offline", caID), fails: stop, want: failed, text: runbook.CheckAggregatorsOnline},
		{name: "Orphan", at: stop, fault: fixed("orphan:sales"), fails: stop, want: failed, text: runbook.CheckNoOrphanPartitions},
		{name: "StuckRecovering", at: stop, fault: spec("stuck-recovering", leafID), fails: stop, want: failed, text: runbook.CheckLeavesOnline, take: retryOnly},
		// The re-check's list-nodes is the phase's first SSH command.
		{name: "SSHDrop", at: stop, fault: fixed("ssh-drop"), fails: stop, want: failed, text: "dropped", take: retryOnly},
		// A leaf that went offline while the snapshots ran: they go on
		// (the MA failed its partitions over), the re-check stops the run.
		{name: "LeafOffline", at: snap, fault: spec("leaf-offline", leafID), fails: stop, want: failed, text: runbook.CheckLeavesOnline,
			take: retryOnly, after: map[runbook.Action]fmThen{
				runbook.ActRetry: {status: runbook.RunAborted, note: "no node was stopped", again: runbook.CheckNoOrphanPartitions},
			}},
		// detection-off's own SET GLOBAL fails: leaf_failure_detection is
		// still ON and the MA still runs, so skipping the step would stop
		// the CAs and leaves under it, which is what detection-off is for.
		{name: "SQLErrorSetGlobal", at: stop, fault: fixed("sql-error:SET GLOBAL"), dOff: true, fails: stop, want: []runbook.Action{runbook.ActRetry, runbook.ActAbort},
			text: "injected failure", probe: []runbook.Action{runbook.ActSkip}},
		// Faults that arise once the nodes are stopped: nothing before
		// finalize trips over them; the post-check finds them, loudly.
		{name: "LeafOffline", at: start, fault: spec("leaf-offline", leafID), ends: runbook.RunDegraded, check: runbook.CheckLeavesOnline},
		{name: "AggregatorOffline", at: start, fault: spec("aggregator-offline", caID), ends: runbook.RunDegraded, check: runbook.CheckAggregatorsOnline},

		// Maintenance has no work of its own: what is injected before
		// "maintenance done" strikes the start.
		{name: "SSHDrop", at: mnt, fault: fixed("ssh-drop"), fails: start, want: failed, text: "dropped",
			after: startSkipped("POST-CHECKS FAILED", caEarly, maEarly)},

		// Start.
		{name: "StartFailsLeaf", at: start, fault: spec("start-fails", leafID), fails: start, want: failed, text: "exited with status 1",
			after: startSkipped("POST-CHECKS FAILED", caEarly, maEarly)},
		{name: "StartFailsCA", at: start, fault: spec("start-fails", caID), fails: start, want: failed, text: "exited with status 1",
			after: startSkipped(runbook.CheckAggregatorsOnline)},
		{name: "StartFailsMA", at: start, fault: spec("start-fails", maID), fails: start, want: failed, text: "exited with status 1",
			after: map[runbook.Action]fmThen{runbook.ActSkip: {status: runbook.RunAborted, note: "NODES MAY STILL BE DOWN", down: true}}},
		{name: "StuckRecovering", at: start, fault: spec("stuck-recovering", leafID), fails: start, want: failed, text: "still recovering"},
		{name: "SSHDrop", at: start, fault: fixed("ssh-drop"), fails: start, want: failed, text: "dropped",
			after: startSkipped("POST-CHECKS FAILED", caEarly, maEarly)},
		{name: "SQLErrorSelect1", at: start, fault: fixed("sql-error:SELECT 1"), fails: start, want: failed, text: "SELECT 1 on"},
		{name: "Slow", at: start, fault: fixed(fmSlow), fails: start, want: failed, text: "SELECT 1 on"},

		// Finalize runs without a gate: faults injected before start's
		// approval that only finalize's statements meet.
		{name: "SQLErrorShowLeaves", at: start, fault: fixed("sql-error:SHOW LEAVES"), fails: fin, want: failed, text: "injected failure",
			after: map[runbook.Action]fmThen{runbook.ActSkip: {status: runbook.RunDegraded, note: "POST-CHECKS SKIPPED"}}},
		{name: "SQLErrorSetGlobal", at: start, fault: fixed("sql-error:SET GLOBAL"), dOff: true, fails: fin, want: failed, text: "injected failure",
			after: map[runbook.Action]fmThen{runbook.ActSkip: {status: runbook.RunDegraded, note: "LEAF_FAILURE_DETECTION"}}},
	}
}

// TestFaultMatrix runs every case with every choice the failure offers.
func TestFaultMatrix(t *testing.T) {
	t.Parallel()
	for _, tc := range fmCases() {
		choices := tc.want
		if tc.take != nil {
			choices = tc.take
		}
		if tc.fails == "" {
			choices = []runbook.Action{""}
		}
		for _, choice := range append(slices.Clone(choices), tc.probe...) {
			name := string(tc.at) + "/" + tc.name
			if choice != "" {
				name += "/" + string(choice)
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				runFaultCase(t, tc, choice)
			})
		}
	}
}

func runFaultCase(t *testing.T, tc fmCase, choice runbook.Action) {
	timeout := fmStatement
	if tc.name == "Slow" {
		timeout = fmSlowStatement
	}
	m := newFMRun(t, timeout)
	ctx := context.Background()
	spec := ""
	if tc.at == runbook.PhasePreflight {
		spec = tc.fault(m)
		m.inject(spec)
	}
	res, err := m.eng.Start(ctx, runbook.StartRequest{Cluster: "sim", By: operator})
	if err != nil || res.Run == nil {
		t.Fatalf("start: %+v, %v", res, err)
	}
	m.runID = res.Run.ID
	m.decided = append(m.decided, fmt.Sprintf(" %s start", operator))

	// Approve up to the gate, inject, approve it.
	r := m.next()
	for tc.at != runbook.PhasePreflight {
		if !r.Waiting() || r.CurrentPhase().Status != runbook.PhaseWaiting {
			t.Fatalf("the run is at %s (%s, %s) before reaching the %s gate", r.Current, r.Status, r.Note, tc.at)
		}
		gate := r.Current
		if gate == runbook.PhaseStop && tc.dOff {
			m.inject("stop-fails:" + maID(m))
		}
		if gate == tc.at {
			spec = tc.fault(m)
			m.inject(spec)
		}
		m.decide(gateAction(r))
		r = m.next()
		if gate == runbook.PhaseStop && tc.dOff {
			r = m.detectionOff(r, tc.at == runbook.PhaseStop)
		}
		if gate == tc.at {
			break
		}
	}
	if tc.fails == "" {
		faultWithoutStop(t, m, tc, r)
		return
	}
	// A fault set before a gate with no work of its own (maintenance), or
	// one that only the nodes' start meets, waits for the next approval.
	for r.Status.Open() && r.CurrentPhase().Status == runbook.PhaseWaiting {
		m.decide(gateAction(r))
		r = m.next()
	}

	// The run stops safely at the phase that meets the fault.
	if !r.Status.Open() || r.Current != tc.fails {
		desc := r.Note
		if r.Status.Open() {
			desc = runbook.Describe(r, r.Current, time.Now())
		}
		t.Fatalf("%s injected before %s: the run is at %q (%s), want it stopped at %s:\n%s", spec, tc.at, r.Current, r.Status, tc.fails, desc)
	}
	p := r.CurrentPhase()
	var message string
	switch p.Status {
	case runbook.PhaseBlocked:
		message = p.Note
	case runbook.PhaseFailed:
		var failed []*runbook.Step
		for _, s := range p.Steps {
			if s.Status == runbook.StepFailed {
				failed = append(failed, s)
			}
		}
		if len(failed) == 0 {
			t.Fatalf("%s failed with no failed step: %+v", p.Name, p.Steps)
		}
		d := runbook.Describe(r, r.Current, time.Now())
		for _, f := range failed {
			message += f.Error + "\n"
			if !strings.Contains(d, f.Label) || !strings.Contains(d, f.Error) {
				t.Errorf("Describe does not name the failed step %q and its error:\n%s", f.Label, d)
			}
		}
	default:
		t.Fatalf("%s is %s, want failed or blocked", p.Name, p.Status)
	}
	if !strings.Contains(message, tc.text) {
		t.Errorf("the failure says %q; want it to name %q", message, tc.text)
	}
	offered := runbook.Choices(r, time.Now())
	if !slices.Equal(offered, tc.want) {
		t.Errorf("choices %v, want %v\n%s", offered, tc.want, runbook.Describe(r, r.Current, time.Now()))
	}
	laterPhasesUntouched(t, r)
	if v := m.sim.Violations(); len(v) > 0 {
		t.Fatalf("the sim recorded violations before any choice: %+v", v)
	}
	if !r.NodesMayBeDown() {
		for _, e := range m.sim.Log() {
			if e.Via == "ssh" && (strings.Contains(e.Text, " stop-node ") || strings.Contains(e.Text, " start-node ")) {
				t.Fatalf("a node command went out before stop: %s", e.Text)
			}
		}
	}
	// Only the offered choices are accepted; the rest change nothing.
	for _, a := range everyAction {
		if slices.Contains(offered, a) {
			continue
		}
		if out := m.send(a); out.Accepted {
			t.Fatalf("%s was accepted at a %s %s; choices were %v", a, p.Status, p.Name, offered)
		}
	}
	if !slices.Contains(offered, choice) {
		return // a probe that is (rightly) not offered: refused above
	}
	if got := m.current(); got.Version != r.Version {
		t.Fatalf("the run moved on by itself after the failure: version %d -> %d", r.Version, got.Version)
	}

	// The choice, and the way to the end.
	then, special := tc.after[choice]
	var end *runbook.Run
	switch choice {
	case runbook.ActRetry, runbook.ActRerunPreflight:
		m.clear()
		m.decide(choice)
		onFail := endOnBlocked(m)
		if then.again != "" {
			onFail = m.abortWhenFailsAgain(then.again)
		}
		end = m.toEnd(nil, onFail)
		if !special {
			then = fmThen{status: runbook.RunSucceeded}
		}
	case runbook.ActSkip:
		// The operator fixes the cause and skips the step anyway (the
		// work was done by hand): what follows must still be safe.
		m.clear()
		m.decide(choice)
		end = m.toEnd(nil, abortOnFailure(m))
		if !special {
			then = fmThen{status: runbook.RunSucceeded}
		}
	case runbook.ActDetectionOff:
		// The MA is tried again last, after the CAs and leaves; the fault
		// is still there, so it fails again; the operator fixes it.
		m.decide(choice)
		r = m.next()
		if s := r.Step("stop/" + maID(m)); s == nil || s.Tier <= 1 || (s.Status != runbook.StepFailed && s.Status != runbook.StepDone) {
			t.Fatalf("after detection-off: %s %s, MA step %+v", r.Current, r.CurrentPhase().Status, s)
		} else if s.Status == runbook.StepFailed {
			m.clear()
			m.decide(runbook.ActRetry)
			r = nil
		}
		end = m.toEnd(r, nil)
		then = fmThen{status: runbook.RunSucceeded}
	case runbook.ActAbort:
		m.decide(choice)
		end = m.toEnd(nil, nil)
		m.clear()
		then = fmThen{status: runbook.RunAborted, note: "aborted"}
		if p.Name == runbook.PhaseStart {
			// Abort while recovery itself fails ends the run: what it
			// leaves down, the run's note must name.
			then.down = true
		}
	case runbook.ActEndRun:
		m.decide(choice)
		end = m.toEnd(nil, nil)
		m.clear()
		then = fmThen{status: runbook.RunEnded, note: "ended by"}
	default:
		t.Fatalf("no way to test choice %q", choice)
	}
	m.finalChecks(end, then)
}

// detectionOff takes the run from the stop gate's failure of the MA
// through the runbook's way out. With examine, the next failure (of the
// detection-off step) is what the case examines; otherwise the MA fails
// again last, the operator fixes it, and the run goes on to the next gate.
func (m *fmRun) detectionOff(r *runbook.Run, examine bool) *runbook.Run {
	m.t.Helper()
	if r.Current != runbook.PhaseStop || r.CurrentPhase().Status != runbook.PhaseFailed {
		m.t.Fatalf("stop-fails on the MA: the run is at %s %s", r.Current, r.CurrentPhase().Status)
	}
	m.decide(runbook.ActDetectionOff)
	r = m.next()
	if examine {
		return r
	}
	if s := r.Step("stop/" + maID(m)); s == nil || s.Status != runbook.StepFailed {
		m.t.Fatalf("after detection-off the MA's stop is %+v, want failed again", s)
	}
	if err := m.sim.Inject("clear:stop-fails:" + maID(m)); err != nil {
		m.t.Fatal(err)
	}
	m.faults = slices.DeleteFunc(m.faults, func(f string) bool { return strings.HasPrefix(f, "stop-fails:") })
	m.decide(runbook.ActRetry)
	r = m.next()
	for r.Status.Open() && r.Current != runbook.PhaseStart && r.CurrentPhase().Status == runbook.PhaseWaiting {
		m.decide(gateAction(r))
		r = m.next()
	}
	if r.Current != runbook.PhaseStart || !r.Waiting() {
		m.t.Fatalf("after detection-off the run is at %s (%s), want the start gate", r.Current, r.Status)
	}
	return r
}

// endOnBlocked ends a run whose preflight blocks again: the cluster is not
// fit for maintenance yet.
func endOnBlocked(m *fmRun) func(r *runbook.Run) bool {
	return func(r *runbook.Run) bool {
		if r.CurrentPhase().Status != runbook.PhaseBlocked {
			return false
		}
		m.decide(runbook.ActEndRun)
		return true
	}
}

// abortWhenFailsAgain aborts once the retried step fails again with an
// error naming text (and only so): the fault left the cluster unhealthy
// after it was cleared, and the run must say so rather than go on.
func (m *fmRun) abortWhenFailsAgain(text string) func(r *runbook.Run) bool {
	return func(r *runbook.Run) bool {
		if r.CurrentPhase().Status != runbook.PhaseFailed {
			return false
		}
		for _, s := range r.CurrentPhase().Steps {
			if s.Status == runbook.StepFailed && s.Attempts > 1 && strings.Contains(s.Error, text) {
				m.decide(runbook.ActAbort)
				return true
			}
		}
		return false
	}
}

// abortOnFailure is how the operator ends a run that fails again after a
// skip left it without a way forward: abort.
func abortOnFailure(m *fmRun) func(r *runbook.Run) bool {
	return func(r *runbook.Run) bool {
		if r.CurrentPhase().Status != runbook.PhaseFailed {
			return false
		}
		m.decide(runbook.ActAbort)
		return true
	}
}

// faultWithoutStop checks a fault that does not stop the run: an advisory
// one shows as a warning at preflight; one that nothing before finalize
// meets is reported by the post-check.
func faultWithoutStop(t *testing.T, m *fmRun, tc fmCase, r *runbook.Run) {
	t.Helper()
	if tc.at == runbook.PhasePreflight {
		var found *runbook.Check
		for i, c := range r.Preflight.Checks {
			if c.Name == tc.check {
				found = &r.Preflight.Checks[i]
			}
		}
		if found == nil || found.Status != runbook.Warn || !r.Preflight.OK {
			t.Fatalf("preflight: %s is %+v, want a warning that does not block (report ok %v)", tc.check, found, r.Preflight.OK)
		}
	}
	end := m.toEnd(r, nil)
	then := fmThen{status: tc.ends, note: tc.check}
	if tc.ends == runbook.RunSucceeded {
		then.note = ""
	}
	m.clear()
	m.finalChecks(end, then)
	if tc.ends == runbook.RunDegraded && (end.PostCheck == nil || end.PostCheck.OK) {
		t.Errorf("post-check %+v, want it failed on %s", end.PostCheck, tc.check)
	}
}

// finalChecks checks how the run ended, the cluster, and the audit log.
func (m *fmRun) finalChecks(end *runbook.Run, then fmThen) {
	t := m.t
	t.Helper()
	if end.Status != then.status || !strings.Contains(end.Note, then.note) {
		t.Errorf("the run ended %s (%q); want %s with a note naming %q", end.Status, end.Note, then.status, then.note)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !then.down {
		if st, err := m.sim.Wait(ctx, runbooktest.AllOnline); err != nil {
			t.Errorf("the cluster was not brought back: %s", strings.Join(notOnline(st), ", "))
		}
	} else {
		// A path that may leave nodes down must say which, loudly.
		st := m.sim.State()
		if runbooktest.AllOnline(st) {
			t.Logf("every node is online")
		}
		for _, n := range st.Nodes {
			if (n.Process != "running" || n.State != "online") &&
				!strings.Contains(end.Note, n.ID[:8]) && !strings.Contains(end.Note, fmt.Sprintf(":%d", n.Port)) {
				t.Errorf("%s %s is %s/%s, and the run's note does not name it: %q", n.Role, n.ID, n.Process, n.State, end.Note)
			}
		}
	}
	if on := m.sim.State().LeafFailureDetection; !on && !strings.Contains(end.Note, "LEAF_FAILURE_DETECTION") {
		t.Errorf("leaf_failure_detection ended OFF (it was ON) and the run's note does not say so: %q", end.Note)
	}
	var rules []string
	for _, v := range m.sim.Violations() {
		if !slices.Contains(rules, v.Rule) {
			rules = append(rules, v.Rule)
		}
	}
	slices.Sort(rules)
	want := slices.Clone(then.violations)
	slices.Sort(want)
	if !slices.Equal(rules, want) {
		t.Errorf("sim violations %v, want %v: %+v", rules, want, m.sim.Violations())
	}
	m.checkAudit(end)
}

func notOnline(st sim.State) []string {
	var bad []string
	for _, n := range st.Nodes {
		if n.Process != "running" || n.State != "online" {
			bad = append(bad, fmt.Sprintf("%s %s %s/%s", n.Role, runbook.ShortID(n.ID), n.Process, n.State))
		}
	}
	return bad
}

// checkAudit compares the audit log with what the test decided and saw.
func (m *fmRun) checkAudit(end *runbook.Run) {
	t := m.t
	t.Helper()
	audit, err := m.eng.AuditLog(context.Background(), m.runID)
	if err != nil {
		t.Fatal(err)
	}
	var decided, failures []string
	blocks, finished := 0, 0
	for _, a := range audit {
		switch {
		case a.Who == approver || a.Who == operator:
			decided = append(decided, fmt.Sprintf("%s %s %s", a.Phase, a.Who, a.What))
		case a.What == "step failed":
			failures = append(failures, a.Result)
		case a.What == "preflight blocked":
			blocks++
		case a.What == "run "+string(end.Status):
			finished++
		}
		if a.At.IsZero() || a.RunID != m.runID || a.Cluster != "sim" {
			t.Errorf("audit line without time, run or cluster: %+v", a)
		}
	}
	if !slices.Equal(decided, m.decided) {
		t.Errorf("audit decisions:\n  %s\nthe test decided:\n  %s", strings.Join(decided, "\n  "), strings.Join(m.decided, "\n  "))
	}
	if !slices.Equal(failures, m.failures) {
		t.Errorf("audit step failures:\n  %s\nthe events showed:\n  %s", strings.Join(failures, "\n  "), strings.Join(m.failures, "\n  "))
	}
	if blocks != m.blocks || finished != 1 {
		t.Errorf("audit: %d blocked preflights (events showed %d), %d run-end lines (want 1)", blocks, m.blocks, finished)
	}
}
