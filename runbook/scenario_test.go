package runbook_test

// Scenario tests: the engine runs the runbook against a simulated cluster
// through the real adapters (MySQL protocol, sdb-admin over SSH) with a real
// SQLite store, and the tests read like the runbook.

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/runbooktest"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
)

const (
	operator = "U_OPERATOR"
	approver = "U_APPROVER"
	wait     = 20 * time.Second // a generous bound; scenarios take milliseconds
)

type scenario struct {
	t     *testing.T
	sim   *runbooktest.Sim
	store *sqlite.Store
	eng   *runbook.Engine
	sub   *runbook.Subscription
	runID string
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("SDBMAINT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func newScenario(t *testing.T, opts runbooktest.Options) *scenario {
	t.Helper()
	s := &scenario{t: t, sim: runbooktest.StartSim(t, opts)}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sdbmaint.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s.store = st
	s.newEngine()
	return s
}

func (s *scenario) newEngine() {
	s.eng = runbook.NewEngine(runbook.EngineConfig{Store: s.store, Clusters: s.sim.Source(), Logger: testLogger(s.t)})
	s.sub = s.eng.Subscribe()
	s.t.Cleanup(func() {
		s.sub.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.eng.Drain(ctx)
	})
}

// start opens a run as the operator and waits for its first gate.
func (s *scenario) start() *runbook.Run {
	s.t.Helper()
	res, err := s.eng.Start(context.Background(), runbook.StartRequest{Cluster: s.sim.Cluster.Name, By: operator})
	if err != nil {
		s.t.Fatalf("start: %v", err)
	}
	if res.Existing != nil {
		s.t.Fatalf("start: run %s already open", res.Existing.ID)
	}
	s.runID = res.Run.ID
	return s.awaitWaiting("")
}

func (s *scenario) awaitWaiting(phase runbook.PhaseName) *runbook.Run {
	s.t.Helper()
	what := "a decision"
	if phase != "" {
		what = "a decision on " + string(phase)
	}
	ev := runbooktest.Await(s.t, s.sub, wait, what, func(ev runbook.Event) bool {
		return runbooktest.Waiting(phase)(ev) || (ev.Kind == runbook.EventRunFinished && phase != "")
	})
	if !ev.Run.Waiting() {
		s.t.Fatalf("run finished (%s: %s) while waiting for %s", ev.Run.Status, ev.Run.Note, what)
	}
	return ev.Run
}

func (s *scenario) awaitFinished() *runbook.Run {
	s.t.Helper()
	return runbooktest.Await(s.t, s.sub, wait, "the end of the run", runbooktest.Finished).Run
}

func (s *scenario) current() *runbook.Run {
	s.t.Helper()
	r, err := s.eng.Get(context.Background(), s.runID)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// decide makes a decision on the run as it is now and requires acceptance.
func (s *scenario) decide(by string, a runbook.Action, reason string) runbook.Outcome {
	s.t.Helper()
	r := s.current()
	out, err := s.eng.Decide(context.Background(), runbook.Decision{RunID: r.ID, Phase: r.Current, Version: r.Version, Action: a, By: by, Reason: reason})
	if err != nil {
		s.t.Fatalf("%s %s: %v", by, a, err)
	}
	if !out.Accepted {
		s.t.Fatalf("%s %s at %s refused: %s", by, a, r.Current, out.Reason)
	}
	return out
}

func (s *scenario) wantChoices(r *runbook.Run, want ...runbook.Action) {
	s.t.Helper()
	if got := runbook.Choices(r, time.Now()); !reflect.DeepEqual(got, want) {
		s.t.Fatalf("choices at %s (%s) = %v, want %v\n%s", r.Current, r.CurrentPhase().Status, got, want, runbook.Describe(r, r.Current, time.Now()))
	}
}

// approveAll approves every gate (maintenance with maintenance-done) until
// the run ends, and returns the finished run.
func (s *scenario) approveAll(r *runbook.Run) *runbook.Run {
	s.t.Helper()
	for r.Status.Open() {
		p := r.CurrentPhase()
		if p.Status != runbook.PhaseWaiting {
			s.t.Fatalf("run stopped at %s %s: %s", p.Name, p.Status, runbook.Describe(r, p.Name, time.Now()))
		}
		a := runbook.ActApprove
		if p.Name == runbook.PhaseMaintenance {
			a = runbook.ActMaintenanceDone
		}
		s.decide(approver, a, "")
		ev := runbooktest.Await(s.t, s.sub, wait, "the next gate or the end", func(ev runbook.Event) bool {
			return ev.Kind == runbook.EventRunFinished || (runbooktest.Waiting("")(ev) && ev.Run.Current != p.Name)
		})
		r = ev.Run
	}
	return r
}

// finalChecks asserts that the cluster ended fully online with no ordering
// violation.
func (s *scenario) finalChecks() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	st, err := s.sim.Sim.Wait(ctx, runbooktest.AllOnline)
	if err != nil {
		s.t.Fatalf("cluster not fully online: %v: %+v", err, st.Nodes)
	}
	if v := s.sim.Sim.Violations(); len(v) > 0 {
		s.t.Fatalf("the sim recorded violations: %+v", v)
	}
}

// wantOrder checks the node commands the toolbox received, by role.
func wantSafeOrder(t *testing.T, cmds []string) {
	t.Helper()
	var roles []string
	for _, c := range cmds {
		f := strings.Fields(c)
		roles = append(roles, f[0]+" "+f[1])
	}
	want := []string{"stop master", "stop aggregator", "stop aggregator", "stop leaf", "stop leaf", "stop leaf", "stop leaf",
		"start leaf", "start leaf", "start leaf", "start leaf", "start aggregator", "start aggregator", "start master"}
	if !reflect.DeepEqual(roles, want) {
		t.Fatalf("node commands:\n  %s\nwant roles %v", strings.Join(cmds, "\n  "), want)
	}
}

func sqlStatements(s *scenario, prefix string) []string {
	var out []string
	for _, e := range s.sim.Sim.Log() {
		if e.Via == "sql" && strings.HasPrefix(strings.ToUpper(e.Text), prefix) {
			out = append(out, e.Text)
		}
	}
	return out
}

func TestScenarioHappyPath(t *testing.T) {
	t.Parallel()
	s := newScenario(t, runbooktest.Options{BackupTo: "/backups", Parallelism: 2})
	r := s.start()
	if r.Current != runbook.PhaseBackup || !r.Preflight.OK {
		t.Fatalf("after preflight: current %s, report %+v", r.Current, r.Preflight)
	}
	if d := s.eng.Describe(r, runbook.PhaseBackup); !strings.Contains(d, "BACKUP DATABASE") || !strings.Contains(d, "`sales`") {
		t.Fatalf("Describe(backup) = %q", d)
	}
	r = s.approveAll(r)
	if r.Status != runbook.RunSucceeded {
		t.Fatalf("run ended %s: %s", r.Status, r.Note)
	}
	s.finalChecks()
	wantSafeOrder(t, s.sim.NodeCommands())

	// The statements, once each, in order.
	if got, want := sqlStatements(s, "BACKUP"), 2; len(got) != want {
		t.Errorf("BACKUP statements %v, want %d", got, want)
	}
	snaps := sqlStatements(s, "SNAPSHOT")
	syncs := sqlStatements(s, "_SYNC_SNAPSHOT")
	if !reflect.DeepEqual(snaps, []string{"SNAPSHOT DATABASE `sales`", "SNAPSHOT DATABASE `web`"}) ||
		!reflect.DeepEqual(syncs, []string{"_SYNC_SNAPSHOT `sales`", "_SYNC_SNAPSHOT `web`"}) {
		t.Errorf("snapshots %v, syncs %v", snaps, syncs)
	}

	// The record: every gate's approver, the downtime, output per node.
	sum := runbook.Summarize(r, time.Now())
	if sum.Downtime <= 0 || sum.Down {
		t.Errorf("downtime %v (down %v)", sum.Downtime, sum.Down)
	}
	for _, p := range sum.Phases {
		gated := p.Name != runbook.PhasePreflight && p.Name != runbook.PhaseFinalize
		if gated && p.By != approver {
			t.Errorf("phase %s approved by %q, want %s", p.Name, p.By, approver)
		}
	}
	stored, err := s.eng.Get(context.Background(), r.ID)
	if err != nil || stored.Status != runbook.RunSucceeded || stored.Version != r.Version {
		t.Fatalf("stored run %v %v, err %v", stored.Status, stored.Version, err)
	}
	audit, _ := s.eng.AuditLog(context.Background(), r.ID)
	approvals := 0
	for _, a := range audit {
		if a.Who == approver && (a.What == "approve" || a.What == "maintenance-done") {
			approvals++
		}
	}
	if approvals != 6 {
		t.Errorf("audit log has %d approvals by %s, want 6:\n%+v", approvals, approver, audit)
	}
	ma := s.sim.NodeID(t, "master", 0)
	out, _ := s.eng.Output(context.Background(), r.ID, "stop/"+ma)
	if len(out) == 0 || !strings.Contains(out[len(out)-1].Line, "Successfully stopped") {
		t.Errorf("output of the MA's stop: %+v", out)
	}
	rec, _ := s.eng.Output(context.Background(), r.ID, "start/recovered")
	if len(rec) == 0 || !strings.Contains(rec[len(rec)-1].Line, "4/4 leaves recovered") {
		t.Errorf("output of the recovery wait: %+v", rec)
	}
}

func TestScenarioFaults(t *testing.T) {
	t.Parallel()
	leaf := func(s *scenario) string { return s.sim.NodeID(t, "leaf", 1) }
	ma := func(s *scenario) string { return s.sim.NodeID(t, "master", 0) }
	for _, tc := range []struct {
		name    string
		at      runbook.PhaseName // inject at this gate
		fault   func(s *scenario) string
		fails   runbook.PhaseName
		choices []runbook.Action
		errText string
	}{
		{"StopFailsOnMA", runbook.PhaseStop, func(s *scenario) string { return "stop-fails:" + ma(s) }, runbook.PhaseStop,
			[]runbook.Action{runbook.ActRetry, runbook.ActDetectionOff, runbook.ActAbort}, "exited with status 1"},
		{"StopFailsOnLeaf", runbook.PhaseStop, func(s *scenario) string { return "stop-fails:" + leaf(s) }, runbook.PhaseStop,
			[]runbook.Action{runbook.ActRetry, runbook.ActSkip, runbook.ActAbort}, "exited with status 1"},
		{"StartFails", runbook.PhaseStart, func(s *scenario) string { return "start-fails:" + leaf(s) }, runbook.PhaseStart,
			[]runbook.Action{runbook.ActRetry, runbook.ActSkip, runbook.ActAbort}, "exited with status 1"},
		{"StuckRecovering", runbook.PhaseStart, func(s *scenario) string { return "stuck-recovering:" + leaf(s) }, runbook.PhaseStart,
			[]runbook.Action{runbook.ActRetry, runbook.ActSkip, runbook.ActAbort}, "still recovering"},
		// The stop phase's first SSH command is the re-check's list-nodes:
		// the drop fails the re-check, before any node is touched.
		{"SSHDrop", runbook.PhaseStop, func(*scenario) string { return "ssh-drop" }, runbook.PhaseStop,
			[]runbook.Action{runbook.ActRetry, runbook.ActSkip, runbook.ActAbort}, "dropped"},
		{"SQLErrorOnSnapshot", runbook.PhaseSnapshot, func(*scenario) string { return "sql-error:SNAPSHOT" }, runbook.PhaseSnapshot,
			[]runbook.Action{runbook.ActRetry, runbook.ActSkip, runbook.ActAbort}, "injected failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newScenario(t, runbooktest.Options{RecoveryTimeout: 300 * time.Millisecond})
			r := s.start()
			for r.Current != tc.at {
				a := runbook.ActApprove
				if r.Current == runbook.PhaseMaintenance {
					a = runbook.ActMaintenanceDone
				}
				s.decide(approver, a, "")
				r = s.awaitWaiting("")
			}
			spec := tc.fault(s)
			if err := s.sim.Sim.Inject(spec); err != nil {
				t.Fatal(err)
			}
			a := runbook.ActApprove
			if r.Current == runbook.PhaseMaintenance {
				a = runbook.ActMaintenanceDone
			}
			s.decide(approver, a, "")
			r = s.awaitWaiting(tc.fails)
			p := r.CurrentPhase()
			if p.Status != runbook.PhaseFailed {
				t.Fatalf("%s is %s, want failed", p.Name, p.Status)
			}
			s.wantChoices(r, tc.choices...)
			var failed []*runbook.Step
			for _, st := range p.Steps {
				if st.Status == runbook.StepFailed {
					failed = append(failed, st)
				}
			}
			if len(failed) != 1 || !strings.Contains(failed[0].Error, tc.errText) {
				t.Fatalf("failed steps %+v, want one whose error mentions %q", failed, tc.errText)
			}
			if d := runbook.Describe(r, r.Current, time.Now()); !strings.Contains(d, failed[0].Label) {
				t.Errorf("Describe does not name the failed step: %q", d)
			}
			// Nothing goes on by itself.
			if got := s.current(); got.Version != r.Version {
				t.Fatalf("the run moved on after a failure: version %d -> %d", r.Version, got.Version)
			}
			if failed[0].Kind == runbook.StepPreStopCheck {
				if cmds := s.sim.NodeCommands(); len(cmds) != 0 {
					t.Fatalf("node commands went out although the re-check failed: %v", cmds)
				}
			}
			// The operator fixes the cause and retries; the run completes.
			if spec != "ssh-drop" {
				if err := s.sim.Sim.Inject("clear:" + spec); err != nil {
					t.Fatal(err)
				}
			}
			s.decide(approver, runbook.ActRetry, "")
			r = s.approveAll(s.awaitWaitingOrEnd())
			if r.Status != runbook.RunSucceeded {
				t.Fatalf("run ended %s: %s", r.Status, r.Note)
			}
			s.finalChecks()
			if k := failed[0].Kind; k == runbook.StepStopNode || k == runbook.StepStartNode || k == runbook.StepPreStopCheck {
				// The retried command went out again; everything else once.
				cmds := s.sim.NodeCommands()
				var ok []string
				for _, c := range cmds {
					if !strings.Contains(c, "(failed") {
						ok = append(ok, c)
					}
				}
				wantSafeOrder(t, ok)
			}
		})
	}
}

// awaitWaitingOrEnd returns the run at its next decision or its end.
func (s *scenario) awaitWaitingOrEnd() *runbook.Run {
	s.t.Helper()
	return runbooktest.Await(s.t, s.sub, wait, "the next decision or the end", func(ev runbook.Event) bool {
		return ev.Kind == runbook.EventRunFinished || runbooktest.Waiting("")(ev)
	}).Run
}

func TestScenarioAbortAtEveryGate(t *testing.T) {
	t.Parallel()
	for _, gate := range []runbook.PhaseName{runbook.PhaseBackup, runbook.PhaseSnapshot, runbook.PhaseSyncSnapshot,
		runbook.PhaseStop, runbook.PhaseMaintenance, runbook.PhaseStart} {
		t.Run(string(gate), func(t *testing.T) {
			t.Parallel()
			s := newScenario(t, runbooktest.Options{BackupTo: "/backups"})
			r := s.start()
			for r.Current != gate {
				a := runbook.ActApprove
				if r.Current == runbook.PhaseMaintenance {
					a = runbook.ActMaintenanceDone
				}
				s.decide(approver, a, "")
				r = s.awaitWaiting("")
			}
			down := r.NodesMayBeDown()
			s.decide(approver, runbook.ActAbort, "change freeze")
			r = s.awaitFinished()
			if r.Status != runbook.RunAborted {
				t.Fatalf("status %s: %s", r.Status, r.Note)
			}
			if r.Recovering != down {
				t.Fatalf("recovering %v, want %v (nodes down: %v)", r.Recovering, down, down)
			}
			s.finalChecks()
			cmds := s.sim.NodeCommands()
			if !down && len(cmds) != 0 {
				t.Fatalf("abort before stop sent node commands: %v", cmds)
			}
			if down {
				wantSafeOrder(t, cmds)
				if r.PostCheck == nil || !r.PostCheck.OK {
					t.Fatalf("recovery's post-check: %+v", r.PostCheck)
				}
			}
			if a := s.eng.Describe(r, gate); a == "" {
				t.Fatal("Describe of a finished run is empty")
			}
		})
	}
}

func TestScenarioDetectionOff(t *testing.T) {
	t.Parallel()
	for _, original := range []bool{true, false} {
		name := map[bool]string{true: "OriginallyOn", false: "OriginallyOff"}[original]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newScenario(t, runbooktest.Options{})
			ctx := context.Background()
			if !original {
				if err := s.sim.SQL.SetLeafFailureDetection(ctx, false); err != nil {
					t.Fatal(err)
				}
			}
			ma := s.sim.NodeID(t, "master", 0)
			if err := s.sim.Sim.Inject("stop-fails:" + ma); err != nil {
				t.Fatal(err)
			}
			r := s.start()
			for r.Current != runbook.PhaseStop {
				s.decide(approver, runbook.ActApprove, "")
				r = s.awaitWaiting("")
			}
			s.decide(approver, runbook.ActApprove, "")
			r = s.awaitWaiting(runbook.PhaseStop)
			if original {
				// The MA cannot be skipped while detection is on...
				s.wantChoices(r, runbook.ActRetry, runbook.ActDetectionOff, runbook.ActAbort)
				out, err := s.eng.Decide(ctx, runbook.Decision{RunID: r.ID, Phase: r.Current, Version: r.Version, Action: runbook.ActSkip, By: approver, Reason: "go"})
				if err != nil || out.Accepted || !strings.Contains(out.Reason, "detection-off") {
					t.Fatalf("skipping the MA's stop with detection ON: %+v, %v", out, err)
				}
			} else {
				s.wantChoices(r, runbook.ActRetry, runbook.ActSkip, runbook.ActDetectionOff, runbook.ActAbort)
			}
			// ...the runbook's way out: detection off, then CAs, leaves, MA last.
			s.decide(approver, runbook.ActDetectionOff, "")
			r = s.awaitWaiting(runbook.PhaseStop) // the MA fails again, last
			if st := s.sim.Sim.State(); st.LeafFailureDetection {
				t.Fatal("leaf_failure_detection is still ON on the MA")
			}
			s.wantChoices(r, runbook.ActRetry, runbook.ActSkip, runbook.ActAbort)
			s.decide(approver, runbook.ActSkip, "the MA host is not part of this maintenance")
			r = s.approveAll(s.awaitWaiting(runbook.PhaseMaintenance))
			if r.Status != runbook.RunSucceeded {
				t.Fatalf("run ended %s: %s", r.Status, r.Note)
			}
			s.finalChecks()
			if got := s.sim.Sim.State().LeafFailureDetection; got != original {
				t.Fatalf("leaf_failure_detection ended %v, want the original %v", got, original)
			}
			// With detection originally ON: the run's OFF, then finalize's ON.
			// Originally OFF: the test's own OFF, the run's OFF, nothing to restore.
			sets := sqlStatements(s, "SET GLOBAL")
			if len(sets) != 2 || (original && !strings.HasSuffix(strings.ToUpper(sets[1]), "ON")) {
				t.Fatalf("SET GLOBAL statements %v", sets)
			}
			// Stop order: CAs and leaves (with detection off), never the MA.
			var stops []string
			for _, c := range s.sim.NodeCommands() {
				if strings.HasPrefix(c, "stop ") && !strings.Contains(c, "failed") {
					stops = append(stops, strings.Fields(c)[1])
				}
			}
			if !reflect.DeepEqual(stops, []string{"aggregator", "aggregator", "leaf", "leaf", "leaf", "leaf"}) {
				t.Fatalf("stops %v", stops)
			}
		})
	}
}

func TestScenarioFiftyApprovers(t *testing.T) {
	t.Parallel()
	s := newScenario(t, runbooktest.Options{})
	r := s.start()
	if r.Current != runbook.PhaseSnapshot { // backup is skipped: no target
		t.Fatalf("first gate %s", r.Current)
	}
	s.decide(approver, runbook.ActApprove, "")
	r = s.awaitWaiting(runbook.PhaseSyncSnapshot)
	const n = 50
	type result struct {
		by  string
		out runbook.Outcome
		err error
	}
	results := make(chan result, n)
	startGun := make(chan struct{})
	for i := range n {
		go func() {
			<-startGun
			by := "U" + string(rune('A'+i%26)) + string(rune('A'+i/26))
			out, err := s.eng.Decide(context.Background(), runbook.Decision{RunID: r.ID, Phase: runbook.PhaseSyncSnapshot,
				Version: r.Version, Action: runbook.ActApprove, By: by})
			results <- result{by, out, err}
		}()
	}
	close(startGun)
	var winner string
	var refused []result
	for range n {
		res := <-results
		switch {
		case res.err != nil:
			t.Fatalf("%s: %v", res.by, res.err)
		case res.out.Accepted:
			if winner != "" {
				t.Fatalf("two approvals accepted: %s and %s", winner, res.by)
			}
			winner = res.by
		default:
			refused = append(refused, res)
		}
	}
	if winner == "" {
		t.Fatal("no approval accepted")
	}
	for _, res := range refused {
		if res.out.Already == nil || res.out.Already.By != winner || !strings.Contains(res.out.Reason, winner) {
			t.Fatalf("%s refused with %q, Already %+v; want who approved (%s)", res.by, res.out.Reason, res.out.Already, winner)
		}
	}
	s.awaitWaiting(runbook.PhaseStop)
	if got := sqlStatements(s, "_SYNC_SNAPSHOT"); len(got) != 2 {
		t.Fatalf("the phase ran %d statements, want 2 (once per database): %v", len(got), got)
	}
	audit, _ := s.eng.AuditLog(context.Background(), r.ID)
	accepted, refusals := 0, 0
	for _, a := range audit {
		if a.Phase != runbook.PhaseSyncSnapshot {
			continue
		}
		switch a.What {
		case "approve":
			accepted++
		case "refused approve":
			refusals++
		}
	}
	if accepted != 1 || refusals != n-1 {
		t.Fatalf("audit: %d approvals and %d refusals, want 1 and %d", accepted, refusals, n-1)
	}
}

func TestScenarioOneRunPerCluster(t *testing.T) {
	t.Parallel()
	s := newScenario(t, runbooktest.Options{})
	r := s.start()
	res, err := s.eng.Start(context.Background(), runbook.StartRequest{Cluster: "sim", By: "U_SOMEONE"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Run != nil || res.Existing == nil || res.Existing.ID != r.ID || res.Existing.StartedBy != operator {
		t.Fatalf("second start = %+v, want the open run started by %s", res, operator)
	}
	if _, err := s.eng.Start(context.Background(), runbook.StartRequest{Cluster: "nope", By: "U1"}); runbook.ErrorKind(err) != runbook.Invalid || !strings.Contains(err.Error(), "sim") {
		t.Fatalf("start on an unknown cluster: %v", err)
	}
}

// TestScenarioResumeAfterHardStop stops the engine hard in the middle of the
// stop phase (its step contexts canceled, results dropped, as a crash would
// leave them) and resumes with a new engine on the same file: steps whose
// node reached its state are recorded done without a command, and the run
// completes with every node command sent once.
func TestScenarioResumeAfterHardStop(t *testing.T) {
	t.Parallel()
	s := newScenario(t, runbooktest.Options{Sim: sim.Options{StopTime: 200 * time.Millisecond}})
	r := s.start()
	for r.Current != runbook.PhaseStop {
		s.decide(approver, runbook.ActApprove, "")
		r = s.awaitWaiting("")
	}
	s.decide(approver, runbook.ActApprove, "")
	// Wait until the leaves' stop commands are out (the sim has them), then
	// pull the plug while they run.
	wctx, wcancel := context.WithTimeout(context.Background(), wait)
	defer wcancel()
	leafStops := func(st sim.State) bool {
		n := 0
		for _, e := range st.Log {
			if e.Via == "ssh" && strings.Contains(e.Text, " stop-node ") && s.sim.Roles()[e.Node] == "leaf" {
				n++
			}
		}
		return n == 4
	}
	if _, err := s.sim.Sim.Wait(wctx, leafStops); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.eng.Drain(ctx); err == nil {
		t.Fatal("Drain with a canceled context reported success")
	}
	s.sub.Close()
	stored, err := s.store.GetRun(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, st := range stored.Phase(runbook.PhaseStop).Steps {
		if st.Status == runbook.StepRunning {
			running++
		}
	}
	if running != 4 {
		t.Fatalf("%d steps left started-not-finished, want the 4 leaves", running)
	}
	// The toolbox finishes the commands it received, as a real one would.
	if _, err := s.sim.Sim.Wait(wctx, func(st sim.State) bool {
		for _, n := range st.Nodes {
			if n.Process == "running" {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}

	s.newEngine()
	if err := s.eng.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = s.current()
	if r.Current != runbook.PhaseMaintenance || r.CurrentPhase().Status != runbook.PhaseWaiting {
		t.Fatalf("after resume the run is at %s %s, want the maintenance gate", r.Current, r.CurrentPhase().Status)
	}
	r = s.approveAll(r)
	if r.Status != runbook.RunSucceeded {
		t.Fatalf("run ended %s: %s", r.Status, r.Note)
	}
	s.finalChecks()
	wantSafeOrder(t, s.sim.NodeCommands())
	resumed := 0
	for _, st := range r.Phase(runbook.PhaseStop).Steps {
		if strings.Contains(st.Evidence, "after a restart, no command sent") {
			resumed++
		}
	}
	if resumed != 4 {
		t.Fatalf("no step was recorded done from its re-read: %+v", r.Phase(runbook.PhaseStop).Steps)
	}
}
