package runbook_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/runbooktest"
)

// TestScenarioLeafOfflineBeforeStop: the snapshots are done and the stop
// gate waits (for hours, in real life); meanwhile a leaf goes offline. The
// approver approves stop: the re-check fails naming the leaf, and no node
// is stopped. The operator brings the leaf back, but with
// leaf_failure_detection ON the MA failed its partitions over while it was
// away, so its copies are orphans now and Retry fails again, naming them.
// From there the operator either aborts (the run ends, nothing was
// stopped) or knowingly skips the re-check with a reason and stops the
// cluster as it is; finalize's post-check then reports the orphans.
func TestScenarioLeafOfflineBeforeStop(t *testing.T) {
	t.Parallel()
	for _, then := range []runbook.Action{runbook.ActAbort, runbook.ActSkip} {
		t.Run(string(then), func(t *testing.T) {
			t.Parallel()
			s := newScenario(t, runbooktest.Options{})
			r := s.start()
			for r.Current != runbook.PhaseStop {
				s.decide(approver, runbook.ActApprove, "")
				r = s.awaitWaiting("")
			}
			if d := s.eng.Describe(r, runbook.PhaseStop); !strings.HasPrefix(d, "Re-checks that every node is online and nothing is orphaned, then stops the MA") {
				t.Fatalf("Describe(stop) = %q, want the re-check first", d)
			}
			leaf := s.sim.NodeID(t, "leaf", 1)
			addr := leafAddr(t, s, leaf)
			if err := s.sim.Sim.Inject("leaf-offline:" + leaf); err != nil {
				t.Fatal(err)
			}

			s.decide(approver, runbook.ActApprove, "")
			r = s.awaitWaiting(runbook.PhaseStop)
			check := failedRecheck(t, r)
			if !strings.Contains(check.Error, runbook.CheckLeavesOnline+":") || !strings.Contains(check.Error, addr+" (availability group") {
				t.Fatalf("the re-check says %q; want it to name %s and the leaf at %s", check.Error, runbook.CheckLeavesOnline, addr)
			}
			s.wantChoices(r, runbook.ActRetry, runbook.ActSkip, runbook.ActAbort)
			if r.Preflight == nil || r.Preflight.OK {
				t.Fatalf("the run's latest report %+v, want the failing re-check's", r.Preflight)
			}
			noNodeCommands(t, s)

			// The leaf comes back; its old copies are orphans now.
			if err := s.sim.Sim.Inject("clear:leaf-offline:" + leaf); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if _, err := s.sim.Sim.Wait(ctx, func(st sim.State) bool { return runbooktest.AllOnline(st) && st.Partitions.Orphan > 0 }); err != nil {
				t.Fatalf("the leaf did not come back with orphans: %v", err)
			}
			s.decide(approver, runbook.ActRetry, "")
			r = s.awaitWaiting(runbook.PhaseStop)
			check = failedRecheck(t, r)
			if !strings.Contains(check.Error, runbook.CheckNoOrphanPartitions+":") || strings.Contains(check.Error, runbook.CheckLeavesOnline) || check.Attempts != 2 {
				t.Fatalf("the retried re-check (attempt %d) says %q; want only the orphans", check.Attempts, check.Error)
			}
			noNodeCommands(t, s)

			switch then {
			case runbook.ActAbort:
				s.decide(approver, runbook.ActAbort, "orphans need a look first")
				r = s.awaitFinished()
				if r.Status != runbook.RunAborted || r.Recovering || !strings.Contains(r.Note, "no node was stopped") {
					t.Fatalf("abort at the re-check: %s (recovering %v): %s", r.Status, r.Recovering, r.Note)
				}
				noNodeCommands(t, s)
			case runbook.ActSkip:
				const reason = "orphans are known, cleaned up after the maintenance"
				s.decide(approver, runbook.ActSkip, reason)
				r = s.approveAll(s.awaitWaiting(runbook.PhaseMaintenance))
				if r.Status != runbook.RunDegraded || !strings.Contains(r.Note, runbook.CheckNoOrphanPartitions) {
					t.Fatalf("after stopping a cluster with orphans the run ended %s: %q; want degraded, naming the orphans", r.Status, r.Note)
				}
				if st := r.Step(check.ID); st.Status != runbook.StepSkipped || !strings.Contains(st.SkipReason, reason) {
					t.Fatalf("the skipped re-check is recorded as %+v", st)
				}
				wantSafeOrder(t, s.sim.NodeCommands())
				audit, err := s.eng.AuditLog(context.Background(), r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !hasAudit(audit, approver, "skip", "reason: "+reason) {
					t.Fatalf("the audit log does not record the skip and its reason:\n%+v", audit)
				}
			}
			s.finalChecks()
		})
	}
}

// failedRecheck returns the stop phase's failed re-check, the only failed
// step, and fails the test otherwise.
func failedRecheck(t *testing.T, r *runbook.Run) *runbook.Step {
	t.Helper()
	p := r.CurrentPhase()
	if r.Current != runbook.PhaseStop || p.Status != runbook.PhaseFailed {
		t.Fatalf("the run is at %s (%s), want a failed stop", r.Current, p.Status)
	}
	var failed []*runbook.Step
	for _, st := range p.Steps {
		if st.Status == runbook.StepFailed {
			failed = append(failed, st)
		}
	}
	if len(failed) != 1 || failed[0].Kind != runbook.StepPreStopCheck {
		t.Fatalf("failed steps %+v, want the re-check alone", failed)
	}
	if d := runbook.Describe(r, r.Current, time.Now()); !strings.Contains(d, failed[0].Error) || !strings.Contains(d, "no node has been stopped") {
		t.Fatalf("Describe of the failed re-check: %q", d)
	}
	return failed[0]
}

func noNodeCommands(t *testing.T, s *scenario) {
	t.Helper()
	if cmds := s.sim.NodeCommands(); len(cmds) != 0 {
		t.Fatalf("node commands went out: %v", cmds)
	}
}

func leafAddr(t *testing.T, s *scenario, id string) string {
	t.Helper()
	for _, n := range s.sim.Sim.State().Nodes {
		if n.ID == id {
			return fmt.Sprintf("%s:%d", n.Host, n.Port)
		}
	}
	t.Fatalf("no node %s", id)
	return ""
}

func hasAudit(audit []runbook.Audit, who, what, result string) bool {
	for _, a := range audit {
		if a.Who == who && a.What == what && strings.Contains(a.Result, result) {
			return true
		}
	}
	return false
}
