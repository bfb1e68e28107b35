package runbook

import (
	"fmt"
	"strings"
	"time"
)

// Describe says, in words for the person about to decide, what deciding on
// phase of run will do at now: which statements, which nodes in which
// order, and what Abort means at this point. The terminal prints it at
// every gate; the bot puts it on the card.
func Describe(r *Run, phase PhaseName, now time.Time) string {
	p := r.Phase(phase)
	if p == nil {
		return fmt.Sprintf("The runbook has no phase %q.", phase)
	}
	var b strings.Builder
	switch p.Status {
	case PhaseFailed:
		describeFailure(&b, r, p)
	case PhaseBlocked:
		b.WriteString("Preflight did not pass: " + p.Note + ".\n")
		b.WriteString("Nothing can go forward: re-run preflight once the cluster is healthy, or end the run.")
		return b.String()
	default:
		b.WriteString(describePlan(r, p))
	}
	if r.Status.Open() && r.Current == phase && p.Status != PhaseRunning {
		b.WriteString("\n" + describeAbort(r, p))
	}
	if phase == PhaseStop && p.Status == PhaseWaiting && r.WindowClosed(now) {
		fmt.Fprintf(&b, "\nThe maintenance window ended at %s: opening this gate needs an explicit override.", r.WindowEnds.UTC().Format(time.RFC3339))
	}
	return b.String()
}

func describePlan(r *Run, p *Phase) string {
	dbs := func(kind StepKind) (names []string) {
		for _, s := range p.Steps {
			if s.Kind == kind {
				names = append(names, displayIdent(s.Target))
			}
		}
		return names
	}
	switch p.Name {
	case PhasePreflight:
		return "Reads the cluster, changing nothing: SHOW LEAVES, SHOW AGGREGATORS, SHOW CLUSTER STATUS, SHOW DATABASES, " +
			"leaf_failure_detection, EXPLAIN RESTORE REDUNDANCY and EXPLAIN REBALANCE PARTITIONS per database on the MA, " +
			"and sdb-admin list-nodes on the toolbox host."
	case PhaseBackup:
		if r.Settings.BackupTo == "" {
			return "Skipped: no backup target is configured."
		}
		return fmt.Sprintf("Runs BACKUP DATABASE ... TO %q on the MA for %s, one at a time.", r.Settings.BackupTo, strings.Join(dbs(StepBackup), ", "))
	case PhaseSnapshot:
		return fmt.Sprintf("Runs SNAPSHOT DATABASE on the MA for %s, one at a time.", strings.Join(dbs(StepSnapshot), ", "))
	case PhaseSyncSnapshot:
		return fmt.Sprintf("Runs _SYNC_SNAPSHOT on the MA for %s, one at a time, so that the replicas have a snapshot too.", strings.Join(dbs(StepSyncSnapshot), ", "))
	case PhaseStop:
		return describeStop(r, p)
	case PhaseMaintenance:
		return "Every node is stopped: the cluster is DOWN. Do the work on the hosts now, then say maintenance is done; start brings the cluster back."
	case PhaseStart:
		return describeStart(r, p)
	case PhaseFinalize:
		s := ""
		if r.DetectionChanged {
			s = "Sets leaf_failure_detection back to " + onOff(r.DetectionOriginal) + " (the run turned it off), then r"
		} else {
			s = "R"
		}
		return s + "uns the preflight checks again as post-checks and writes the summary (downtime, time per phase, who approved what)."
	}
	return ""
}

func describeStop(r *Run, p *Phase) string {
	var ma, cas, leaves []*Step
	detectionOff, recheck := false, false
	for _, s := range p.Steps {
		switch {
		case s.Kind == StepPreStopCheck:
			recheck = s.Status != StepDone && s.Status != StepSkipped
		case s.Kind == StepDetectionOff:
			detectionOff = true
		case s.Role == RoleMaster:
			ma = append(ma, s)
		case s.Role == RoleAggregator:
			cas = append(cas, s)
		case s.Role == RoleLeaf:
			leaves = append(leaves, s)
		}
	}
	lead := "Stops "
	if detectionOff {
		lead = "Sets leaf_failure_detection OFF on the MA, then stops "
	}
	if recheck {
		// Approvals can come hours after preflight: the checks run again
		// before the first stop command.
		lead = "Re-checks that every node is online and nothing is orphaned, then " + strings.ToLower(lead[:1]) + lead[1:]
	}
	var b strings.Builder
	b.WriteString(lead)
	if !detectionOff && len(ma) > 0 {
		b.WriteString("the MA " + nodeNames(ma) + ", then ")
	}
	fmt.Fprintf(&b, "%d child %s in parallel%s, then %d %s %s%s", len(cas), plural(len(cas), "aggregator", "aggregators"), nodeList(cas),
		len(leaves), plural(len(leaves), "leaf", "leaves"), parallelism(r, len(leaves)), nodeList(leaves))
	if detectionOff && len(ma) > 0 {
		b.WriteString(", then tries the MA " + nodeNames(ma) + " again, last")
	}
	b.WriteString(", with sdb-admin stop-node; list-nodes confirms each. The cluster is DOWN from here until start finishes.")
	return b.String()
}

func describeStart(r *Run, p *Phase) string {
	var leaves, cas, ma []*Step
	for _, s := range p.Steps {
		if s.Kind != StepStartNode {
			continue
		}
		switch s.Role {
		case RoleLeaf:
			leaves = append(leaves, s)
		case RoleAggregator:
			cas = append(cas, s)
		default:
			ma = append(ma, s)
		}
	}
	if len(p.Steps) == 0 {
		return "Starts every node that stop stopped: leaves, then child aggregators, then the MA."
	}
	var b strings.Builder
	if len(leaves) > 0 {
		fmt.Fprintf(&b, "Starts %d %s %s%s, waits until every leaf is fully recovered (up to %s), then ", len(leaves),
			plural(len(leaves), "leaf", "leaves"), parallelism(r, len(leaves)), nodeList(leaves), recoveryTimeout(r))
	} else {
		b.WriteString("Starts ")
	}
	if len(cas) > 0 {
		fmt.Fprintf(&b, "%d child %s%s, then ", len(cas), plural(len(cas), "aggregator", "aggregators"), nodeList(cas))
	}
	if len(ma) > 0 {
		b.WriteString("the MA " + nodeNames(ma) + ", then ")
	}
	b.WriteString("waits until the MA answers SQL.")
	return b.String()
}

// parallelism says how many leaves go at once.
func parallelism(r *Run, leaves int) string {
	if n := r.Settings.Parallelism; n > 0 && n < leaves {
		return fmt.Sprintf("%d at a time", n)
	}
	return "all at once"
}

// nodeList is " (A…, B…)" for up to six nodes, or the first six and how
// many more.
func nodeList(steps []*Step) string {
	if len(steps) == 0 {
		return ""
	}
	return " (" + nodeNames(steps) + ")"
}

func nodeNames(steps []*Step) string {
	const show = 6
	var names []string
	for i, s := range steps {
		if i == show {
			names = append(names, fmt.Sprintf("and %d more", len(steps)-show))
			break
		}
		names = append(names, ShortID(s.Target))
	}
	return strings.Join(names, ", ")
}

func describeFailure(b *strings.Builder, r *Run, p *Phase) {
	for _, s := range p.Steps {
		switch s.Status {
		case StepFailed:
			fmt.Fprintf(b, "%s failed: %s: %s\n", p.Name, s.Label, s.Error)
		case StepInterrupted:
			fmt.Fprintf(b, "%s was interrupted: %s: %s\n", p.Name, s.Label, s.Error)
		}
	}
	recheck := failedKind(p, StepPreStopCheck)
	if recheck {
		b.WriteString("Retry runs the checks again (fix the cluster first).")
	} else {
		b.WriteString("Retry runs the failed steps again.")
	}
	switch {
	case recheck && canSkip(r, p):
		b.WriteString(" Skip stops the cluster anyway, as it is now (give a reason; it is recorded).")
	case canSkip(r, p):
		b.WriteString(" Skip goes on without them (give a reason; it is recorded).")
	default:
		b.WriteString(" The MA's stop cannot be skipped while leaf_failure_detection is ON.")
	}
	if canDetectionOff(r, p) {
		b.WriteString(" Detection-off is the runbook's way out: SET GLOBAL leaf_failure_detection=OFF on the MA (it still answers), " +
			"stop the child aggregators and leaves, try the MA again last, and restore the setting in finalize.")
	}
}

func describeAbort(r *Run, p *Phase) string {
	switch {
	case !r.NodesMayBeDown():
		return "Abort ends the run; no node has been stopped."
	case r.Recovering || p.Name == PhaseFinalize || (p.Name == PhaseStart && p.Status != PhaseWaiting):
		return "Abort stops trying and ends the run, leaving nodes as they are now."
	}
	return "Abort means recovery: start what is stopped (leaves, wait until recovered, child aggregators, MA), then finalize."
}
