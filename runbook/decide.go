package runbook

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// needsSecondPerson lists the actions the two-person rule forbids to the
// person who started the run: everything that moves the run forward.
// Stopping (abort, end run) and re-reading (rerun preflight) stay open to
// them.
func needsSecondPerson(a Action) bool {
	switch a {
	case ActAbort, ActEndRun, ActRerunPreflight:
		return false
	}
	return true
}

// already is the refusal for a gate decided before.
func already(p *Phase) *Refusal {
	a := *p.Approval
	return &Refusal{
		Reason:  fmt.Sprintf("%s was already decided: %s by %s at %s", p.Name, a.Action, a.By, a.At.UTC().Format(time.RFC3339)),
		Already: &a,
	}
}

func (m *machine) decide(in Decide) *Refusal {
	r := m.r
	d := in.Decision
	if strings.TrimSpace(d.By) == "" {
		return &Refusal{Reason: "a decision must name who made it"}
	}
	if d.RunID != "" && d.RunID != r.ID {
		return &Refusal{Reason: fmt.Sprintf("decision for run %s sent to run %s", d.RunID, r.ID)}
	}
	p := r.Phase(d.Phase)
	if p == nil {
		return &Refusal{Reason: fmt.Sprintf("run has no phase %q", d.Phase)}
	}
	if !r.Status.Open() {
		if p.Approval != nil {
			return already(p)
		}
		return &Refusal{Reason: fmt.Sprintf("the run is over (%s)", r.Status)}
	}
	if !in.MayApprove {
		return &Refusal{Reason: fmt.Sprintf("%s is not an approver for cluster %s", d.By, r.Cluster)}
	}
	if d.Phase != r.Current {
		if p.Approval != nil {
			return already(p)
		}
		return &Refusal{Reason: fmt.Sprintf("%s is not the current phase; the run is at %s", d.Phase, r.Current)}
	}
	if d.Version != r.Version {
		if p.Approval != nil {
			return already(p)
		}
		return &Refusal{Reason: fmt.Sprintf("stale: this was drawn on version %d of the run, which is now at version %d; look at the latest card", d.Version, r.Version)}
	}
	if in.TwoPersonRule && d.By == r.StartedBy && needsSecondPerson(d.Action) {
		return &Refusal{Reason: fmt.Sprintf("two-person rule: %s started this run and cannot %s its gates; ask another approver", d.By, d.Action)}
	}
	if p.Status == PhaseRunning {
		return &Refusal{Reason: fmt.Sprintf("%s is running; decisions are taken when it waits or a step fails", p.Name)}
	}
	choices := Choices(r, m.now)
	if !slices.Contains(choices, d.Action) {
		return &Refusal{Reason: notAChoice(r, p, d.Action, choices)}
	}
	reason := strings.TrimSpace(d.Reason)
	if (d.Action == ActSkip || d.Action == ActSkipPhase) && reason == "" {
		return &Refusal{Reason: "skip needs a reason; it is recorded in the audit log"}
	}
	result := "accepted"
	switch d.Action {
	case ActApprove, ActOverride:
		m.approve(p, d)
		p.Status = PhaseRunning
		p.StartedAt = m.now
		m.publish(EventRunUpdated, p.Name, "")
	case ActMaintenanceDone:
		m.approve(p, d)
		m.completePhase(p)
	case ActSkipPhase:
		m.approve(p, d)
		p.Status = PhaseSkipped
		p.Note = fmt.Sprintf("skipped by %s: %s", d.By, reason)
		p.StartedAt, p.EndedAt = m.now, m.now
		for _, s := range p.Steps {
			s.Status = StepSkipped
			s.SkipReason = reason
		}
		m.publish(EventPhaseFinished, p.Name, "")
		m.enterAfter(p.Name)
	case ActRetry:
		var ids []string
		for _, s := range p.Steps {
			if s.Status == StepFailed || s.Status == StepInterrupted {
				s.Status = StepPending
				ids = append(ids, s.ID)
			}
		}
		p.Status = PhaseRunning
		result = "retry " + strings.Join(ids, ", ")
		m.publish(EventRunUpdated, p.Name, "")
	case ActSkip:
		var ids []string
		for _, s := range p.Steps {
			if s.Status == StepFailed || s.Status == StepInterrupted {
				s.Status = StepSkipped
				s.SkipReason = fmt.Sprintf("%s (skipped by %s)", reason, d.By)
				ids = append(ids, s.ID)
			}
		}
		p.Status = PhaseRunning
		result = "skipped " + strings.Join(ids, ", ")
		m.publish(EventRunUpdated, p.Name, "")
		m.settle()
	case ActDetectionOff:
		planDetectionOff(r)
		p.Status = PhaseRunning
		result = "turn leaf_failure_detection OFF on the MA, stop the child aggregators and leaves, then try the MA again last"
		m.publish(EventRunUpdated, p.Name, "")
	case ActRerunPreflight:
		s := r.Step(stepIDPreflight)
		s.Status = StepPending
		p.Status = PhaseRunning
		p.Note = ""
		m.publish(EventRunUpdated, p.Name, "")
	case ActEndRun:
		note := fmt.Sprintf("ended by %s at a blocked preflight", d.By)
		if reason != "" {
			note += ": " + reason
		}
		m.log(p.Name, d.By, string(d.Action), result)
		m.finish(RunEnded, note)
		return nil
	case ActAbort:
		result = m.abort(p, d)
	}
	m.log(p.Name, d.By, string(d.Action), withReason(result, reason))
	return nil
}

func withReason(result, reason string) string {
	if reason == "" {
		return result
	}
	return result + "; reason: " + reason
}

func (m *machine) approve(p *Phase, d Decision) {
	p.Approval = &Approval{By: d.By, At: m.now, Action: d.Action, Reason: strings.TrimSpace(d.Reason)}
	m.approval = p.Name
}

// notAChoice explains, for the person who clicked, why the action is not
// possible now.
func notAChoice(r *Run, p *Phase, a Action, choices []Action) string {
	switch {
	case p.Name == PhaseStop && p.Status == PhaseWaiting && a == ActApprove:
		return fmt.Sprintf("the maintenance window ended at %s; opening the stop gate now needs an explicit override from an approver", r.WindowEnds.UTC().Format(time.RFC3339))
	case p.Name == PhaseMaintenance && a == ActApprove:
		return "the maintenance gate opens with maintenance-done, once the work on the hosts is finished"
	case a == ActSkip && p.Status == PhaseFailed && failedKind(p, StepDetectionOff):
		return "turning leaf_failure_detection OFF failed and cannot be skipped: the leaves would fail over under a running MA; retry it or abort"
	case a == ActSkip && p.Status == PhaseFailed:
		return "the MA's stop cannot be skipped while leaf_failure_detection is ON: the leaves would fail over under a running MA; choose detection-off (the runbook's way out), retry or abort"
	case a == ActDetectionOff:
		return "detection-off is offered only when the MA would not stop, once per run"
	case a == ActSkipPhase:
		return "only the backup phase can be skipped as a whole"
	}
	names := make([]string, len(choices))
	for i, c := range choices {
		names[i] = string(c)
	}
	return fmt.Sprintf("%s is not possible now: %s is %s; choices: %s", a, p.Name, p.Status, strings.Join(names, ", "))
}

// abort carries out an accepted abort and returns what it did. Before any
// stop command it ends the run. Once nodes may be down it turns into
// recovery: the start phase runs at once, in the safe order, then finalize.
// If recovery itself is what is failing (start or finalize), abort stops
// trying and ends the run, saying loudly what may still be down.
func (m *machine) abort(p *Phase, d Decision) string {
	r := m.r
	switch {
	case !r.NodesMayBeDown():
		m.finish(RunAborted, fmt.Sprintf("aborted by %s at %s; no node was stopped", d.By, p.Name))
		return "run ended; no node was stopped"
	case r.Recovering || p.Name == PhaseFinalize || (p.Name == PhaseStart && p.Status != PhaseWaiting):
		note := fmt.Sprintf("aborted by %s during %s", d.By, p.Name)
		if down := mayBeDown(r); len(down) > 0 {
			note += "; NODES MAY STILL BE DOWN: " + strings.Join(down, ", ")
		}
		if r.DetectionChanged {
			if s := r.Step(stepIDRestoreDetection); s == nil || s.Status != StepDone {
				note += "; LEAF_FAILURE_DETECTION IS STILL OFF (it was " + onOff(r.DetectionOriginal) + ")"
			}
		}
		m.finish(RunAborted, note)
		return "run ended during recovery"
	}
	r.Recovering = true
	for _, name := range []PhaseName{PhaseStop, PhaseMaintenance} {
		q := r.Phase(name)
		if q.Status == PhaseDone || q.Status == PhaseSkipped {
			continue
		}
		for _, s := range q.Steps {
			if s.Status == StepPending || s.Status == StepFailed || s.Status == StepInterrupted {
				s.Status = StepSkipped
				s.SkipReason = "aborted by " + d.By
			}
		}
		if q.Status == PhaseFailed || q.Status == PhaseWaiting || q.Status == PhaseRunning {
			q.EndedAt = m.now
		}
		q.Status = PhaseCanceled
		q.Note = "aborted by " + d.By + "; recovering"
	}
	r.Current = PhaseStart
	start := r.Phase(PhaseStart)
	planStart(r)
	start.Approval = &Approval{By: d.By, At: m.now, Action: ActAbort, Reason: strings.TrimSpace(d.Reason)}
	m.approval = PhaseStart
	start.Status = PhaseRunning
	start.StartedAt = m.now
	start.Note = "recovery after abort by " + d.By
	m.publish(EventRunUpdated, PhaseStart, "")
	return "recovery: start what is stopped (leaves, wait recovered, child aggregators, MA), then finalize"
}

// mayBeDown lists the nodes whose stop may have been sent and whose start
// has not been confirmed.
func mayBeDown(r *Run) []string {
	started := map[string]bool{}
	for _, s := range r.Phase(PhaseStart).Steps {
		if s.Kind == StepStartNode && s.Status == StepDone {
			started[s.Target] = true
		}
	}
	var out []string
	for _, s := range r.Phase(PhaseStop).Steps {
		if s.Kind == StepStopNode && s.Attempts > 0 && !started[s.Target] {
			out = append(out, roleShort(s.Role)+" "+s.Target)
		}
	}
	return out
}

// failedKind reports whether a step of kind failed or was interrupted in p.
func failedKind(p *Phase, kind StepKind) bool {
	for _, s := range p.Steps {
		if s.Kind == kind && (s.Status == StepFailed || s.Status == StepInterrupted) {
			return true
		}
	}
	return false
}
