package runbook

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

func testReport(failing ...string) *Report {
	rep := &Report{Cluster: "prod", OK: len(failing) == 0, At: t0, Databases: []string{"web", "sales"}, LeafFailureDetection: true,
		Nodes: []Node{
			{ID: "MA01", Role: RoleMaster, Host: "10.0.0.1", Port: 3306, Running: true, RecoveryState: "Online"},
			{ID: "CA02", Role: RoleAggregator, Host: "10.0.0.3", Port: 3306, Running: true, RecoveryState: "Online"},
			{ID: "CA01", Role: RoleAggregator, Host: "10.0.0.2", Port: 3306, Running: true, RecoveryState: "Online"},
			{ID: "LF01", Role: RoleLeaf, Host: "10.0.1.1", Port: 3307, Running: true, RecoveryState: "Online", AvailabilityGroup: 1},
			{ID: "LF02", Role: RoleLeaf, Host: "10.0.1.2", Port: 3307, Running: true, RecoveryState: "Online", AvailabilityGroup: 2},
			{ID: "LF03", Role: RoleLeaf, Host: "10.0.1.3", Port: 3307, Running: true, RecoveryState: "Online", AvailabilityGroup: 1},
			{ID: "LF04", Role: RoleLeaf, Host: "10.0.1.4", Port: 3307, Running: true, RecoveryState: "Online", AvailabilityGroup: 2},
		}}
	for _, name := range []string{CheckLeavesOnline, CheckAggregatorsOnline, CheckNoOrphanPartitions, CheckNodesMatchToolbox} {
		st := Pass
		if slices.Contains(failing, name) {
			st = Fail
		}
		rep.Checks = append(rep.Checks, Check{Name: name, Status: st, Detail: "detail of " + name})
	}
	return rep
}

// sm drives a run through Transition in a test, one input at a time, with
// a clock that moves a second per input.
type sm struct {
	t   *testing.T
	r   *Run
	now time.Time
	eff []Effect // of the last accepted input
}

func newSM(t *testing.T, mod func(c *Cluster)) *sm {
	c := &Cluster{Name: "prod", BackupTo: "/backups", StopParallelism: 2, RecoveryTimeout: time.Minute}
	if mod != nil {
		mod(c)
	}
	return &sm{t: t, r: NewRun("run1", StartRequest{Cluster: "prod", By: "U_START"}, c, t0), now: t0}
}

// in applies an input that must be accepted.
func (s *sm) in(in Input) *sm {
	s.t.Helper()
	s.now = s.now.Add(time.Second)
	before := s.r.Clone()
	next, eff, ref := Transition(s.r, in, s.now)
	if ref != nil {
		s.t.Fatalf("%T %+v refused: %s", in, in, ref.Reason)
	}
	if !reflect.DeepEqual(before, s.r) {
		s.t.Fatalf("Transition changed its input run")
	}
	if next != s.r {
		if len(eff) == 0 {
			s.t.Fatalf("%T changed the run without effects", in)
		}
		save, ok := eff[0].(Save)
		if !ok {
			s.t.Fatalf("first effect of a change is %T, want Save", eff[0])
		}
		_ = save
		if next.Version != s.r.Version+1 {
			s.t.Fatalf("version %d -> %d, want +1", s.r.Version, next.Version)
		}
	}
	s.r, s.eff = next, eff
	return s
}

// refused applies an input that must be refused with a reason containing
// want, and checks that nothing changed.
func (s *sm) refused(in Input, want string) *Refusal {
	s.t.Helper()
	next, eff, ref := Transition(s.r, in, s.now)
	if ref == nil {
		s.t.Fatalf("%T %+v accepted, want refusal %q", in, in, want)
	}
	if !strings.Contains(ref.Reason, want) {
		s.t.Fatalf("refusal %q, want it to contain %q", ref.Reason, want)
	}
	if next != s.r {
		s.t.Fatalf("a refused input changed the run")
	}
	if d, ok := in.(Decide); ok {
		if len(eff) != 1 {
			s.t.Fatalf("refused decision: effects %+v, want one RecordAudit", eff)
		}
		a, ok := eff[0].(RecordAudit)
		if !ok || a.Audit.Who != d.By || a.Audit.What != "refused "+string(d.Action) || a.Audit.Result != ref.Reason {
			s.t.Fatalf("refused decision: effect %+v, want an audit line naming %s", eff[0], d.By)
		}
	}
	return ref
}

func (s *sm) decide(by string, a Action, reason string) Decide {
	return Decide{Decision: Decision{RunID: s.r.ID, Phase: s.r.Current, Version: s.r.Version, Action: a, By: by, Reason: reason}, MayApprove: true}
}

func (s *sm) ok(by string, a Action) *sm {
	s.t.Helper()
	return s.in(s.decide(by, a, ""))
}

// execs returns the step IDs the last input asked to execute.
func (s *sm) execs() []string {
	var ids []string
	for _, e := range s.eff {
		if x, ok := e.(Exec); ok {
			ids = append(ids, x.StepID)
		}
	}
	return ids
}

// launch feeds Continue and returns what it started.
func (s *sm) launch() []string {
	s.t.Helper()
	s.in(Continue{})
	return s.execs()
}

func (s *sm) finish(id string, err string) *sm {
	s.t.Helper()
	res := StepResult{StepID: id, Err: err, Evidence: "ok"}
	if st := s.r.Step(id); st != nil && (st.Kind == StepPreflight || st.Kind == StepPreStopCheck || st.Kind == StepPostCheck) && err == "" {
		res.Report = testReport()
	}
	return s.in(res)
}

// runPhase launches and finishes every step of the current phase until it
// stops running, in the order the machine starts them. It returns the
// order.
func (s *sm) runPhase() []string {
	s.t.Helper()
	var order []string
	phase := s.r.Current
	for s.r.Current == phase && s.r.CurrentPhase().Status == PhaseRunning {
		ids := s.launch()
		if len(ids) == 0 {
			s.t.Fatalf("phase %s running but nothing to launch: %s", phase, dumpRun(s.r))
		}
		for _, id := range ids {
			order = append(order, id)
			s.finish(id, "")
		}
	}
	return order
}

func dumpRun(r *Run) string {
	var b strings.Builder
	for _, p := range r.Phases {
		b.WriteString("\n" + string(p.Name) + " " + string(p.Status))
		for _, st := range p.Steps {
			b.WriteString("\n  " + st.ID + " " + string(st.Status) + " tier " + string(rune('0'+st.Tier)))
		}
	}
	return b.String()
}

func (s *sm) phase(name PhaseName) *Phase { return s.r.Phase(name) }

// approveStop approves the stop gate and lets its re-check pass, so that
// the next launch starts the MA's stop.
func (s *sm) approveStop() *sm {
	s.t.Helper()
	s.ok("U_APPROVER", ActApprove)
	if got := s.launch(); !reflect.DeepEqual(got, []string{"stop/recheck"}) {
		s.t.Fatalf("approved stop launched %v, want the re-check alone", got)
	}
	return s.finish("stop/recheck", "")
}

func (s *sm) wantStatus(name PhaseName, want PhaseStatus) {
	s.t.Helper()
	if got := s.phase(name).Status; got != want {
		s.t.Fatalf("%s is %s, want %s%s", name, got, want, dumpRun(s.r))
	}
}

func (s *sm) wantChoices(want ...Action) {
	s.t.Helper()
	if got := Choices(s.r, s.now); !reflect.DeepEqual(got, want) {
		s.t.Fatalf("choices %v, want %v", got, want)
	}
}

// toGate runs preflight and approves every phase until the run waits at
// phase name.
func (s *sm) toGate(name PhaseName) *sm {
	s.t.Helper()
	if s.r.Current == PhasePreflight {
		s.runPhase()
	}
	for s.r.Current != name {
		p := s.r.CurrentPhase()
		switch {
		case p.Status == PhaseWaiting && p.Name == PhaseMaintenance:
			s.ok("U_APPROVER", ActMaintenanceDone)
		case p.Status == PhaseWaiting:
			s.ok("U_APPROVER", ActApprove)
		case p.Status == PhaseRunning:
			s.runPhase()
		default:
			s.t.Fatalf("toGate(%s): stuck at %s %s", name, p.Name, p.Status)
		}
	}
	return s
}

func TestHappyPath(t *testing.T) {
	s := newSM(t, nil)
	if got := s.launch(); !reflect.DeepEqual(got, []string{"preflight"}) {
		t.Fatalf("first Continue launched %v, want preflight", got)
	}
	if st := s.r.Step("preflight"); st.Status != StepRunning || st.Attempts != 1 || !st.StartedAt.Equal(s.now) {
		t.Fatalf("preflight step %+v, want running, attempt 1, started now", st)
	}
	s.finish("preflight", "")
	s.wantStatus(PhasePreflight, PhaseDone)
	s.wantStatus(PhaseBackup, PhaseWaiting)
	if !s.r.DetectionOriginal {
		t.Fatal("preflight's leaf_failure_detection was not remembered")
	}
	s.wantChoices(ActApprove, ActSkipPhase, ActAbort)

	s.ok("U_APPROVER", ActApprove)
	if a := s.phase(PhaseBackup).Approval; a == nil || a.By != "U_APPROVER" || a.Action != ActApprove {
		t.Fatalf("backup approval %+v", a)
	}
	if save := s.eff[0].(Save); save.Approval != PhaseBackup || len(save.Audit) != 1 || save.Audit[0].Who != "U_APPROVER" {
		t.Fatalf("approval Save = %+v, want Approval backup with one audit line", save)
	}
	if got := s.runPhase(); !reflect.DeepEqual(got, []string{"backup/sales", "backup/web"}) {
		t.Fatalf("backup ran %v, want sales then web, one at a time", got)
	}
	s.ok("U_APPROVER", ActApprove).runPhase()
	s.ok("U_APPROVER", ActApprove).runPhase()
	s.wantStatus(PhaseStop, PhaseWaiting)
	s.ok("U_APPROVER", ActApprove)

	// Stop: the re-check alone, the MA alone, then both CAs, then leaves
	// two at a time.
	var tiers [][]string
	for s.r.Current == PhaseStop {
		ids := s.launch()
		tiers = append(tiers, ids)
		for _, id := range ids {
			s.finish(id, "")
		}
	}
	want := [][]string{{"stop/recheck"}, {"stop/MA01"}, {"stop/CA01", "stop/CA02"}, {"stop/LF01", "stop/LF02"}, {"stop/LF03", "stop/LF04"}}
	if !reflect.DeepEqual(tiers, want) {
		t.Fatalf("stop launched %v, want %v", tiers, want)
	}
	if s.r.DownSince.IsZero() {
		t.Fatal("DownSince not set by the first stop")
	}
	s.wantStatus(PhaseMaintenance, PhaseWaiting)
	s.wantChoices(ActMaintenanceDone, ActAbort)
	s.refused(s.decide("U_APPROVER", ActApprove, ""), "maintenance-done")
	s.ok("U_APPROVER", ActMaintenanceDone)
	s.wantStatus(PhaseStart, PhaseWaiting)
	s.ok("U_APPROVER", ActApprove)
	order := s.runPhase()
	wantStart := []string{"start/LF01", "start/LF02", "start/LF03", "start/LF04", "start/recovered", "start/CA01", "start/CA02", "start/MA01", "start/sql"}
	if !reflect.DeepEqual(order, wantStart) {
		t.Fatalf("start ran %v, want %v", order, wantStart)
	}
	if s.r.UpAt.IsZero() {
		t.Fatal("UpAt not set when the MA answered")
	}
	// Finalize has no gate and no detection step (nothing changed it).
	s.wantStatus(PhaseFinalize, PhaseRunning)
	if got := s.runPhase(); !reflect.DeepEqual(got, []string{"finalize/post-check"}) {
		t.Fatalf("finalize ran %v", got)
	}
	if s.r.Status != RunSucceeded || s.r.Current != "" || s.r.EndedAt.IsZero() {
		t.Fatalf("run ended %s current %q", s.r.Status, s.r.Current)
	}
	sum := Summarize(s.r, s.now)
	if sum.Downtime <= 0 || sum.Phases[4].By != "U_APPROVER" {
		t.Fatalf("summary %+v", sum)
	}
	if !strings.Contains(sum.String(), "stop") {
		t.Fatalf("summary text %q", sum.String())
	}
}

func TestPreflight(t *testing.T) {
	t.Run("BlockedOffersOnlyRerunOrEnd", func(t *testing.T) {
		s := newSM(t, nil)
		s.launch()
		s.in(StepResult{StepID: "preflight", Report: testReport(CheckLeavesOnline)})
		s.wantStatus(PhasePreflight, PhaseBlocked)
		s.wantChoices(ActRerunPreflight, ActEndRun)
		for _, a := range []Action{ActApprove, ActAbort, ActRetry, ActSkip} {
			s.refused(s.decide("U_APPROVER", a, "because"), "not possible now")
		}
		if !strings.Contains(s.phase(PhasePreflight).Note, CheckLeavesOnline) {
			t.Fatalf("blocked note %q does not name the failing check", s.phase(PhasePreflight).Note)
		}
		s.ok("U_APPROVER", ActRerunPreflight)
		if got := s.launch(); !reflect.DeepEqual(got, []string{"preflight"}) {
			t.Fatalf("rerun launched %v", got)
		}
		s.finish("preflight", "")
		s.wantStatus(PhaseBackup, PhaseWaiting)
		if s.r.Step("preflight").Attempts != 2 {
			t.Fatalf("preflight attempts %d, want 2", s.r.Step("preflight").Attempts)
		}
	})
	t.Run("CouldNotRun", func(t *testing.T) {
		s := newSM(t, nil)
		s.launch()
		s.finish("preflight", "dial tcp 10.0.0.1:3306: connection refused")
		s.wantStatus(PhasePreflight, PhaseBlocked)
		s.in(s.decide("U_START", ActEndRun, "cluster is down anyway"))
		if s.r.Status != RunEnded || !strings.Contains(s.r.Note, "U_START") {
			t.Fatalf("end run: status %s note %q", s.r.Status, s.r.Note)
		}
		for _, p := range Phases[1:] {
			s.wantStatus(p, PhaseCanceled)
		}
	})
	t.Run("NoMaster", func(t *testing.T) {
		s := newSM(t, nil)
		s.launch()
		rep := testReport()
		rep.Nodes = rep.Nodes[1:]
		s.in(StepResult{StepID: "preflight", Report: rep})
		s.wantStatus(PhasePreflight, PhaseBlocked)
	})
	t.Run("MissingReport", func(t *testing.T) {
		s := newSM(t, nil)
		s.launch()
		s.in(StepResult{StepID: "preflight"})
		s.wantStatus(PhasePreflight, PhaseBlocked)
	})
}

func TestGates(t *testing.T) {
	t.Run("NoBackupTargetSkips", func(t *testing.T) {
		s := newSM(t, func(c *Cluster) { c.BackupTo = "" })
		s.runPhase()
		s.wantStatus(PhaseBackup, PhaseSkipped)
		if !strings.Contains(s.phase(PhaseBackup).Note, "no backup target") {
			t.Fatalf("backup note %q", s.phase(PhaseBackup).Note)
		}
		s.wantStatus(PhaseSnapshot, PhaseWaiting)
	})
	t.Run("SkipBackupNeedsReason", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseBackup)
		s.refused(s.decide("U_APPROVER", ActSkipPhase, "  "), "needs a reason")
		s.in(s.decide("U_APPROVER", ActSkipPhase, "backed up an hour ago"))
		s.wantStatus(PhaseBackup, PhaseSkipped)
		if a := s.phase(PhaseBackup).Approval; a == nil || a.Reason != "backed up an hour ago" || a.Action != ActSkipPhase {
			t.Fatalf("skip recorded as %+v", a)
		}
		s.wantStatus(PhaseSnapshot, PhaseWaiting)
		s.refused(s.decide("U_APPROVER", ActSkipPhase, "no"), "only the backup phase")
	})
	t.Run("AutoApprove", func(t *testing.T) {
		s := newSM(t, func(c *Cluster) { c.AutoApprove = []PhaseName{PhaseSnapshot, PhaseSyncSnapshot} })
		s.toGate(PhaseBackup).ok("U_APPROVER", ActApprove).runPhase()
		s.wantStatus(PhaseSnapshot, PhaseRunning)
		if !s.phase(PhaseSnapshot).Auto || s.phase(PhaseSnapshot).Approval != nil {
			t.Fatalf("snapshot auto %v approval %+v", s.phase(PhaseSnapshot).Auto, s.phase(PhaseSnapshot).Approval)
		}
		s.runPhase()
		s.runPhase()
		s.wantStatus(PhaseStop, PhaseWaiting)
	})
	t.Run("WrongPhase", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseSnapshot)
		d := s.decide("U_APPROVER", ActApprove, "")
		d.Phase = PhaseStop
		s.refused(d, "not the current phase")
	})
	t.Run("StaleVersion", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseSnapshot)
		d := s.decide("U_APPROVER", ActApprove, "")
		d.Version--
		s.refused(d, "stale")
	})
	t.Run("AlreadyApproved", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseSnapshot)
		first := s.decide("U_FIRST", ActApprove, "")
		s.in(first)
		second := first
		second.By = "U_SECOND"
		ref := s.refused(second, "already decided")
		if ref.Already == nil || ref.Already.By != "U_FIRST" || !ref.Already.At.Equal(s.now) {
			t.Fatalf("Already = %+v, want U_FIRST at %v", ref.Already, s.now)
		}
		s.runPhase()
		// A click on the old card, after the phase finished, says the same.
		ref = s.refused(second, "already decided")
		if ref.Already == nil || ref.Already.By != "U_FIRST" {
			t.Fatalf("late click: Already = %+v", ref.Already)
		}
	})
	t.Run("WhileRunning", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseSnapshot).ok("U_APPROVER", ActApprove)
		s.launch()
		s.refused(s.decide("U_APPROVER", ActApprove, ""), "is running")
		s.refused(s.decide("U_APPROVER", ActAbort, ""), "is running")
	})
	t.Run("NonApprover", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseSnapshot)
		d := s.decide("U_STRANGER", ActApprove, "")
		d.MayApprove = false
		s.refused(d, "not an approver")
		d.Action = ActAbort
		s.refused(d, "not an approver")
	})
	t.Run("TwoPersonRule", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseSnapshot)
		d := s.decide("U_START", ActApprove, "")
		d.TwoPersonRule = true
		s.refused(d, "two-person rule")
		d.By = "U_OTHER"
		s.in(d)
		// The starter may still stop the run.
		s.runPhase()
		d = s.decide("U_START", ActAbort, "")
		d.TwoPersonRule = true
		s.in(d)
		if s.r.Status != RunAborted {
			t.Fatalf("starter's abort: status %s", s.r.Status)
		}
	})
	t.Run("NoIdentity", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseSnapshot)
		s.refused(s.decide(" ", ActApprove, ""), "who made it")
	})
	t.Run("StopAfterWindowNeedsOverride", func(t *testing.T) {
		s := newSM(t, func(c *Cluster) { c.AutoApprove = []PhaseName{PhaseStop} })
		s.r.WindowEnds = t0.Add(5 * time.Second)
		s.toGate(PhaseStop)
		// Auto-approval does not open a gate whose window has closed.
		s.wantStatus(PhaseStop, PhaseWaiting)
		s.wantChoices(ActOverride, ActAbort)
		s.refused(s.decide("U_APPROVER", ActApprove, ""), "window ended")
		if !strings.Contains(Describe(s.r, PhaseStop, s.now), "override") {
			t.Fatal("Describe does not mention the override")
		}
		s.in(s.decide("U_APPROVER", ActOverride, "finishing what we started"))
		s.wantStatus(PhaseStop, PhaseRunning)
		if a := s.phase(PhaseStop).Approval; a.Action != ActOverride {
			t.Fatalf("stop approval %+v, want an override", a)
		}
	})
	t.Run("StopInsideWindow", func(t *testing.T) {
		s := newSM(t, nil)
		s.r.WindowEnds = t0.Add(time.Hour)
		s.toGate(PhaseStop)
		s.wantChoices(ActApprove, ActAbort)
		s.ok("U_APPROVER", ActApprove)
	})
	t.Run("AfterTheEnd", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseSnapshot)
		s.ok("U_APPROVER", ActAbort)
		d := s.decide("U_APPROVER", ActApprove, "")
		d.Phase = PhaseSyncSnapshot
		s.refused(d, "is over")
	})
}

func TestFailures(t *testing.T) {
	t.Run("RetryAndSkip", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseSnapshot).ok("U_APPROVER", ActApprove)
		s.launch()
		s.finish("snapshot/sales", "Error 1105: SNAPSHOT failed")
		s.wantStatus(PhaseSnapshot, PhaseFailed)
		s.wantChoices(ActRetry, ActSkip, ActAbort)
		if s.launch(); len(s.execs()) != 0 {
			t.Fatal("a failed phase launched more steps")
		}
		s.ok("U_APPROVER", ActRetry)
		if got := s.launch(); !reflect.DeepEqual(got, []string{"snapshot/sales"}) {
			t.Fatalf("retry launched %v", got)
		}
		if st := s.r.Step("snapshot/sales"); st.Attempts != 2 || st.Error != "" {
			t.Fatalf("retried step %+v", st)
		}
		s.finish("snapshot/sales", "again")
		s.refused(s.decide("U_APPROVER", ActSkip, ""), "needs a reason")
		s.in(s.decide("U_APPROVER", ActSkip, "snapshotted by hand"))
		st := s.r.Step("snapshot/sales")
		if st.Status != StepSkipped || !strings.Contains(st.SkipReason, "snapshotted by hand") || st.Error != "again" {
			t.Fatalf("skipped step %+v", st)
		}
		s.wantStatus(PhaseSnapshot, PhaseRunning)
		if got := s.launch(); !reflect.DeepEqual(got, []string{"snapshot/web"}) {
			t.Fatalf("after skip launched %v", got)
		}
	})
	t.Run("FailedLeafWaitsForTheOthersInFlight", func(t *testing.T) {
		s := newSM(t, func(c *Cluster) { c.StopParallelism = 0 }).toGate(PhaseStop).approveStop()
		s.finish(s.launch()[0], "")
		for _, id := range s.launch() {
			s.finish(id, "")
		}
		leaves := s.launch()
		if len(leaves) != 4 {
			t.Fatalf("unbounded leaves launched %v", leaves)
		}
		s.finish(leaves[0], "exit status 1")
		s.wantStatus(PhaseStop, PhaseRunning) // others still in flight
		s.finish(leaves[1], "")
		s.finish(leaves[2], "")
		s.finish(leaves[3], "")
		s.wantStatus(PhaseStop, PhaseFailed)
		s.wantChoices(ActRetry, ActSkip, ActAbort)
	})
	t.Run("ResultForStepNotRunning", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseSnapshot)
		s.refused(StepResult{StepID: "snapshot/sales"}, "not running")
		s.refused(StepResult{StepID: "nope"}, "no step")
	})
}

func TestDetectionOff(t *testing.T) {
	s := newSM(t, nil).toGate(PhaseStop).approveStop()
	s.launch()
	s.finish("stop/MA01", "stop-node exited 1")
	s.wantStatus(PhaseStop, PhaseFailed)
	s.wantChoices(ActRetry, ActDetectionOff, ActAbort)
	s.refused(s.decide("U_APPROVER", ActSkip, "just go"), "cannot be skipped")
	if d := Describe(s.r, PhaseStop, s.now); !strings.Contains(d, "Detection-off") || !strings.Contains(d, "recovery") {
		t.Fatalf("Describe of the failed stop: %q", d)
	}
	s.ok("U_APPROVER", ActDetectionOff)
	var order []string
	for s.r.Current == PhaseStop {
		for _, id := range s.launch() {
			order = append(order, id)
			s.finish(id, "")
		}
	}
	want := []string{"stop/detection-off", "stop/CA01", "stop/CA02", "stop/LF01", "stop/LF02", "stop/LF03", "stop/LF04", "stop/MA01"}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("stop after detection-off ran %v, want %v", order, want)
	}
	if !s.r.DetectionChanged {
		t.Fatal("DetectionChanged not set")
	}
	s.ok("U_APPROVER", ActMaintenanceDone).ok("U_APPROVER", ActApprove).runPhase()
	if got := s.runPhase(); !reflect.DeepEqual(got, []string{"finalize/detection", "finalize/post-check"}) {
		t.Fatalf("finalize ran %v, want the detection restore first", got)
	}
	if lbl := s.r.Step("finalize/detection").Label; !strings.Contains(lbl, "= ON") {
		t.Fatalf("restore label %q, want it to restore ON", lbl)
	}
	if s.r.Status != RunSucceeded {
		t.Fatalf("status %s", s.r.Status)
	}

	t.Run("MAFailsAgainThenSkip", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseStop).approveStop()
		s.launch()
		s.finish("stop/MA01", "exit 1")
		s.ok("U_APPROVER", ActDetectionOff)
		for s.r.CurrentPhase().Status == PhaseRunning {
			for _, id := range s.launch() {
				err := ""
				if id == "stop/MA01" {
					err = "exit 1 again"
				}
				s.finish(id, err)
			}
		}
		s.wantStatus(PhaseStop, PhaseFailed)
		// Detection is off now: skipping the MA is safe, and detection-off
		// is not offered twice.
		s.wantChoices(ActRetry, ActSkip, ActAbort)
		s.in(s.decide("U_APPROVER", ActSkip, "MA host is the one under maintenance anyway"))
		s.wantStatus(PhaseMaintenance, PhaseWaiting)
	})
}

func TestAbort(t *testing.T) {
	for _, gate := range []PhaseName{PhaseBackup, PhaseSnapshot, PhaseSyncSnapshot, PhaseStop} {
		t.Run("BeforeDownAt_"+string(gate), func(t *testing.T) {
			s := newSM(t, nil).toGate(gate)
			if !strings.Contains(Describe(s.r, gate, s.now), "Abort ends the run") {
				t.Fatalf("Describe at %s: %q", gate, Describe(s.r, gate, s.now))
			}
			s.ok("U_APPROVER", ActAbort)
			if s.r.Status != RunAborted || s.r.Recovering || s.r.Current != "" {
				t.Fatalf("abort at %s: status %s recovering %v", gate, s.r.Status, s.r.Recovering)
			}
			s.wantStatus(gate, PhaseCanceled)
			s.wantStatus(PhaseFinalize, PhaseCanceled)
		})
	}
	t.Run("AfterMAStopFailed", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseStop).approveStop()
		s.launch()
		s.finish("stop/MA01", "exit 1")
		s.ok("U_APPROVER", ActAbort)
		if !s.r.Recovering || s.r.Current != PhaseStart {
			t.Fatalf("abort after a stop command: recovering %v current %s", s.r.Recovering, s.r.Current)
		}
		s.wantStatus(PhaseStop, PhaseCanceled)
		s.wantStatus(PhaseMaintenance, PhaseCanceled)
		s.wantStatus(PhaseStart, PhaseRunning)
		if a := s.phase(PhaseStart).Approval; a == nil || a.Action != ActAbort {
			t.Fatalf("start approval %+v, want the abort", a)
		}
		// Only the MA was touched: start it (it may be down) and wait for SQL.
		if got := s.runPhase(); !reflect.DeepEqual(got, []string{"start/MA01", "start/sql"}) {
			t.Fatalf("recovery ran %v", got)
		}
		s.runPhase()
		if s.r.Status != RunAborted || !strings.Contains(s.r.Note, "recovery finished") {
			t.Fatalf("after recovery: %s %q", s.r.Status, s.r.Note)
		}
	})
	t.Run("AtMaintenance", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseMaintenance)
		if !strings.Contains(Describe(s.r, PhaseMaintenance, s.now), "recovery") {
			t.Fatal("Describe at maintenance does not say abort means recovery")
		}
		s.ok("U_APPROVER", ActAbort)
		got := s.runPhase()
		want := []string{"start/LF01", "start/LF02", "start/LF03", "start/LF04", "start/recovered", "start/CA01", "start/CA02", "start/MA01", "start/sql"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("recovery ran %v, want %v", got, want)
		}
	})
	t.Run("AtStartGate", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseStart)
		s.ok("U_APPROVER", ActAbort)
		s.wantStatus(PhaseStart, PhaseRunning)
		if !s.r.Recovering {
			t.Fatal("not recovering")
		}
	})
	t.Run("WhenRecoveryFails", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseStart).ok("U_APPROVER", ActApprove)
		s.launch()
		s.finish("start/LF01", "exit 1")
		s.finish("start/LF02", "")
		s.wantStatus(PhaseStart, PhaseFailed)
		if !strings.Contains(Describe(s.r, PhaseStart, s.now), "leaving nodes as they are") {
			t.Fatalf("Describe: %q", Describe(s.r, PhaseStart, s.now))
		}
		s.ok("U_APPROVER", ActAbort)
		if s.r.Status != RunAborted || !strings.Contains(s.r.Note, "NODES MAY STILL BE DOWN") || !strings.Contains(s.r.Note, "LF01") {
			t.Fatalf("abort during start: %s %q", s.r.Status, s.r.Note)
		}
	})
}

func TestResumed(t *testing.T) {
	s := newSM(t, func(c *Cluster) { c.StopParallelism = 0 }).toGate(PhaseStop).approveStop()
	s.finish(s.launch()[0], "")
	cas := s.launch() // both CAs started, then the process died
	if len(cas) != 2 {
		t.Fatalf("launched %v", cas)
	}
	s.in(Resumed{Rechecks: map[string]Recheck{
		"stop/CA01": {Reached: true, Evidence: "list-nodes shows the node stopped"},
		"stop/CA02": {Evidence: "list-nodes shows the node not stopped"},
	}})
	ca1, ca2 := s.r.Step("stop/CA01"), s.r.Step("stop/CA02")
	if ca1.Status != StepDone || !strings.Contains(ca1.Evidence, "no command sent") {
		t.Fatalf("reached step %+v", ca1)
	}
	if ca2.Status != StepInterrupted || ca2.Attempts != 1 {
		t.Fatalf("unreached step %+v", ca2)
	}
	s.wantStatus(PhaseStop, PhaseFailed)
	s.wantChoices(ActRetry, ActSkip, ActAbort)
	s.ok("U_APPROVER", ActRetry)
	if got := s.launch(); !reflect.DeepEqual(got, []string{"stop/CA02"}) {
		t.Fatalf("retry launched %v, want only the interrupted CA", got)
	}

	t.Run("ReadOnlyRunsAgain", func(t *testing.T) {
		s := newSM(t, func(c *Cluster) { c.StopParallelism = 0 }).toGate(PhaseMaintenance).ok("U_APPROVER", ActMaintenanceDone).ok("U_APPROVER", ActApprove)
		for _, id := range s.launch() {
			s.finish(id, "")
		}
		if got := s.launch(); !reflect.DeepEqual(got, []string{"start/recovered"}) {
			t.Fatalf("launched %v, want the recovery wait", got)
		}
		s.in(Resumed{})
		if st := s.r.Step("start/recovered"); st.Status != StepPending {
			t.Fatalf("interrupted wait %+v, want pending again", st)
		}
		s.wantStatus(PhaseStart, PhaseRunning)
		if got := s.launch(); !reflect.DeepEqual(got, []string{"start/recovered"}) {
			t.Fatalf("after resume launched %v", got)
		}
	})
	t.Run("DatabaseStepWaits", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseSnapshot).ok("U_APPROVER", ActApprove)
		s.launch()
		s.in(Resumed{Rechecks: map[string]Recheck{"snapshot/sales": {}}})
		s.wantStatus(PhaseSnapshot, PhaseFailed)
		if st := s.r.Step("snapshot/sales"); st.Status != StepInterrupted {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("NothingRunning", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseSnapshot)
		next, eff, ref := Transition(s.r, Resumed{}, s.now)
		if next != s.r || eff != nil || ref != nil {
			t.Fatal("Resumed changed a run that had nothing running")
		}
	})
}

func TestPostCheckFailureIsDegraded(t *testing.T) {
	s := newSM(t, nil).toGate(PhaseFinalize)
	s.launch()
	s.in(StepResult{StepID: "finalize/post-check", Report: testReport(CheckNoOrphanPartitions)})
	if s.r.Status != RunDegraded || !strings.Contains(s.r.Note, "POST-CHECKS FAILED") || !strings.Contains(s.r.Note, CheckNoOrphanPartitions) {
		t.Fatalf("status %s note %q", s.r.Status, s.r.Note)
	}
	if sum := Summarize(s.r, s.now).String(); !strings.Contains(sum, "POST-CHECK FAILED") {
		t.Fatalf("summary does not shout: %s", sum)
	}

	t.Run("SkippedPostCheck", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseFinalize)
		s.launch()
		s.finish("finalize/post-check", "MA does not answer")
		s.in(s.decide("U_APPROVER", ActSkip, "checked by hand"))
		if s.r.Status != RunDegraded || !strings.Contains(s.r.Note, "SKIPPED") {
			t.Fatalf("status %s note %q", s.r.Status, s.r.Note)
		}
	})
}

func TestEmptyCluster(t *testing.T) {
	s := newSM(t, nil)
	s.launch()
	rep := testReport()
	rep.Databases = nil
	s.in(StepResult{StepID: "preflight", Report: rep})
	for _, p := range []PhaseName{PhaseBackup, PhaseSnapshot, PhaseSyncSnapshot} {
		s.wantStatus(p, PhaseSkipped)
	}
	s.wantStatus(PhaseStop, PhaseWaiting)
}

func TestUnknownInput(t *testing.T) {
	type bogus struct{ Continue }
	s := newSM(t, nil)
	s.refused(bogus{}, "unknown input")
	if _, _, ref := Transition(nil, Continue{}, t0); ref == nil {
		t.Fatal("nil run accepted")
	}
}
