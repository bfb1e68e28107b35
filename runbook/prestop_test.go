package runbook

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// The stop phase's re-check: approvals can come hours after preflight, so
// before the first stop command the checks run again, and a failing
// blocking check stops the phase while every node is still up.

// recheckReport is a re-check's report at a later time than preflight's,
// with an advisory warning that must never fail it.
func recheckReport(failing ...string) *Report {
	rep := testReport(failing...)
	rep.At = t0.Add(3 * time.Hour)
	rep.Checks = append(rep.Checks, Check{Name: CheckRebalancePlan, Status: Warn, Detail: "2 steps on `web`"})
	return rep
}

// atRecheck approves stop and launches its first step, which must be the
// re-check alone.
func atRecheck(t *testing.T) *sm {
	t.Helper()
	s := newSM(t, nil).toGate(PhaseStop)
	s.ok("U_APPROVER", ActApprove)
	if got := s.launch(); !reflect.DeepEqual(got, []string{"stop/recheck"}) {
		t.Fatalf("approved stop launched %v, want the re-check alone", got)
	}
	st := s.r.Step("stop/recheck")
	if st.Kind != StepPreStopCheck || !st.Kind.ReadOnly() || st.Status != StepRunning {
		t.Fatalf("re-check step %+v, want a running read-only %s", st, StepPreStopCheck)
	}
	// Nothing else starts while it runs.
	if got := s.launch(); len(got) != 0 {
		t.Fatalf("while the re-check runs, Continue launched %v", got)
	}
	return s
}

// wantNoStopYet checks that no stop command may have gone out.
func (s *sm) wantNoStopYet() {
	s.t.Helper()
	if s.r.NodesMayBeDown() || !s.r.DownSince.IsZero() {
		s.t.Fatalf("nodes may be down (down since %v):%s", s.r.DownSince, dumpRun(s.r))
	}
	for _, st := range s.phase(PhaseStop).Steps {
		if st.Kind == StepStopNode && st.Attempts > 0 {
			s.t.Fatalf("stop step %s was started", st.ID)
		}
	}
}

func TestPreStopCheck(t *testing.T) {
	t.Run("PlannedFirstAndDescribed", func(t *testing.T) {
		s := newSM(t, nil).toGate(PhaseStop)
		first := s.phase(PhaseStop).Steps[0]
		if first.ID != "stop/recheck" || first.Kind != StepPreStopCheck || first.Tier >= s.r.Step("stop/MA01").Tier {
			t.Fatalf("first stop step %+v, want the re-check in a tier before the MA's", first)
		}
		d := Describe(s.r, PhaseStop, s.now)
		if !strings.HasPrefix(d, "Re-checks that every node is online and nothing is orphaned, then stops the MA MA01") {
			t.Fatalf("Describe(stop) = %q, want it to start with the re-check", d)
		}
	})
	t.Run("Passes", func(t *testing.T) {
		s := atRecheck(t)
		rep := recheckReport()
		s.in(StepResult{StepID: "stop/recheck", Report: rep, Evidence: "7 checks, 0 failed"})
		if st := s.r.Step("stop/recheck"); st.Status != StepDone || st.Error != "" {
			t.Fatalf("re-check %+v, want done: a warning does not fail it", st)
		}
		if !s.r.Preflight.At.Equal(rep.At) {
			t.Fatalf("the run's latest report is from %v, want the re-check's (%v)", s.r.Preflight.At, rep.At)
		}
		s.wantStatus(PhaseStop, PhaseRunning)
		if got := s.launch(); !reflect.DeepEqual(got, []string{"stop/MA01"}) {
			t.Fatalf("after the re-check launched %v, want the MA", got)
		}
		if d := Describe(s.r, PhaseStop, s.now); strings.Contains(d, "Re-checks") {
			t.Fatalf("Describe still promises the re-check once it is done: %q", d)
		}
	})
	t.Run("FailingChecksFailThePhase", func(t *testing.T) {
		s := atRecheck(t)
		before := s.r.Preflight
		rep := recheckReport(CheckLeavesOnline, CheckNoOrphanPartitions)
		s.in(StepResult{StepID: "stop/recheck", Report: rep, Evidence: "7 checks, 2 failed"})
		s.wantStatus(PhaseStop, PhaseFailed)
		st := s.r.Step("stop/recheck")
		for _, want := range []string{"2 blocking checks failed", "leaves_online: detail of leaves_online", "no_orphan_partitions: detail of no_orphan_partitions"} {
			if !strings.Contains(st.Error, want) {
				t.Errorf("re-check error %q does not name %q", st.Error, want)
			}
		}
		if st.Status != StepFailed || st.Evidence != "" || strings.Contains(st.Error, CheckRebalancePlan) {
			t.Fatalf("re-check %+v, want failed, without evidence or the warning", st)
		}
		if before.At.Equal(rep.At) || !s.r.Preflight.At.Equal(rep.At) || s.r.Preflight.OK {
			t.Fatalf("the failing report was not kept as the run's latest: %+v", s.r.Preflight)
		}
		save := s.eff[0].(Save)
		if len(save.Audit) != 1 || save.Audit[0].What != "step failed" || !strings.HasPrefix(save.Audit[0].Result, "stop/recheck: 2 blocking checks") {
			t.Fatalf("audit %+v, want the failure", save.Audit)
		}
		s.wantChoices(ActRetry, ActSkip, ActAbort)
		s.refused(s.decide("U_APPROVER", ActDetectionOff, ""), "only when the MA would not stop")
		s.refused(s.decide("U_APPROVER", ActApprove, ""), "not possible now")
		if got := s.launch(); len(got) != 0 {
			t.Fatalf("a failed re-check let Continue launch %v", got)
		}
		s.wantNoStopYet()
		d := Describe(s.r, PhaseStop, s.now)
		for _, want := range []string{st.Label, st.Error, "Retry runs the checks again", "Skip stops the cluster anyway", "Abort ends the run; no node has been stopped"} {
			if !strings.Contains(d, want) {
				t.Errorf("Describe of the failed re-check lacks %q:\n%s", want, d)
			}
		}
	})
	t.Run("NodesChangedSincePreflight", func(t *testing.T) {
		s := atRecheck(t)
		rep := recheckReport()
		// LF04 is gone and a new leaf joined: the plan made at preflight
		// would leave the new leaf running under the stop.
		rep.Nodes = append(rep.Nodes[:6:6], Node{ID: "LF0500000000AA", Role: RoleLeaf, Host: "10.0.1.5", Port: 3307, Running: true, RecoveryState: "Online"})
		s.in(StepResult{StepID: "stop/recheck", Report: rep, Evidence: "7 checks, 0 failed"})
		s.wantStatus(PhaseStop, PhaseFailed)
		st := s.r.Step("stop/recheck")
		for _, want := range []string{"nodes changed since preflight", "new: leaf LF050000…", "gone: LF04", "start a new run"} {
			if !strings.Contains(st.Error, want) {
				t.Errorf("re-check error %q does not name %q", st.Error, want)
			}
		}
		s.wantChoices(ActRetry, ActSkip, ActAbort)
		s.wantNoStopYet()
	})
	t.Run("CouldNotRun", func(t *testing.T) {
		s := atRecheck(t)
		before := s.r.Preflight
		s.finish("stop/recheck", `ssh 127.0.0.1:2222: "sdb-admin list-nodes --json": the session dropped`)
		s.wantStatus(PhaseStop, PhaseFailed)
		s.wantChoices(ActRetry, ActSkip, ActAbort)
		if !s.r.Preflight.At.Equal(before.At) {
			t.Fatal("a re-check that could not run replaced the report")
		}
		s.wantNoStopYet()
	})
	t.Run("MissingReport", func(t *testing.T) {
		s := atRecheck(t)
		s.in(StepResult{StepID: "stop/recheck"})
		if st := s.r.Step("stop/recheck"); st.Status != StepFailed || !strings.Contains(st.Error, "no report") {
			t.Fatalf("re-check without a report: %+v", st)
		}
	})
	t.Run("RetryRunsTheChecksAgain", func(t *testing.T) {
		s := atRecheck(t)
		s.in(StepResult{StepID: "stop/recheck", Report: recheckReport(CheckAggregatorsOnline)})
		s.ok("U_APPROVER", ActRetry)
		if got := s.launch(); !reflect.DeepEqual(got, []string{"stop/recheck"}) {
			t.Fatalf("retry launched %v, want the re-check alone", got)
		}
		if st := s.r.Step("stop/recheck"); st.Attempts != 2 || st.Error != "" {
			t.Fatalf("retried re-check %+v", st)
		}
		s.wantNoStopYet()
		s.in(StepResult{StepID: "stop/recheck", Report: recheckReport()})
		if got := s.launch(); !reflect.DeepEqual(got, []string{"stop/MA01"}) {
			t.Fatalf("after a passing retry launched %v, want the MA", got)
		}
	})
	t.Run("SkipNeedsAReasonAndStopsAnyway", func(t *testing.T) {
		s := atRecheck(t)
		s.in(StepResult{StepID: "stop/recheck", Report: recheckReport(CheckLeavesOnline)})
		s.refused(s.decide("U_APPROVER", ActSkip, " "), "needs a reason")
		s.in(s.decide("U_APPROVER", ActSkip, "LF02 is the host we are replacing"))
		st := s.r.Step("stop/recheck")
		if st.Status != StepSkipped || !strings.Contains(st.SkipReason, "LF02 is the host we are replacing") || !strings.Contains(st.SkipReason, "U_APPROVER") {
			t.Fatalf("skipped re-check %+v", st)
		}
		save := s.eff[0].(Save)
		if len(save.Audit) != 1 || save.Audit[0].Who != "U_APPROVER" || !strings.Contains(save.Audit[0].Result, "skipped stop/recheck; reason: LF02") {
			t.Fatalf("skip audit %+v", save.Audit)
		}
		s.wantStatus(PhaseStop, PhaseRunning)
		if got := s.launch(); !reflect.DeepEqual(got, []string{"stop/MA01"}) {
			t.Fatalf("after the skip launched %v, want the MA", got)
		}
		if s.r.DownSince.IsZero() {
			t.Fatal("DownSince not set by the MA's stop")
		}
	})
	t.Run("AbortEndsTheRun", func(t *testing.T) {
		s := atRecheck(t)
		s.in(StepResult{StepID: "stop/recheck", Report: recheckReport(CheckLeavesOnline)})
		s.ok("U_APPROVER", ActAbort)
		if s.r.Status != RunAborted || s.r.Recovering || s.r.Current != "" || !strings.Contains(s.r.Note, "no node was stopped") {
			t.Fatalf("abort at the failed re-check: %s recovering %v note %q", s.r.Status, s.r.Recovering, s.r.Note)
		}
		// The stop phase keeps its failure on record, as any phase that
		// failed before an abort does; what never ran is canceled.
		s.wantStatus(PhaseStop, PhaseFailed)
		s.wantStatus(PhaseMaintenance, PhaseCanceled)
		s.wantStatus(PhaseStart, PhaseCanceled)
		if n := len(s.phase(PhaseStart).Steps); n != 0 {
			t.Fatalf("abort planned %d start steps; nothing was stopped", n)
		}
		s.wantNoStopYet()
	})
	t.Run("ResumeRunsItAgain", func(t *testing.T) {
		s := atRecheck(t)
		s.in(Resumed{})
		st := s.r.Step("stop/recheck")
		if st.Status != StepPending || !strings.Contains(st.Evidence, "runs again") {
			t.Fatalf("re-check after a restart %+v, want pending to run again", st)
		}
		s.wantStatus(PhaseStop, PhaseRunning)
		if got := s.launch(); !reflect.DeepEqual(got, []string{"stop/recheck"}) {
			t.Fatalf("after resume launched %v, want the re-check again", got)
		}
		s.wantNoStopYet()
	})
}
