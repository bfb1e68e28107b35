package runbook

import (
	"slices"
	"time"
)

// Clone returns a deep copy of the run: changing the copy never changes r.
// The engine hands out clones, so a snapshot in an Event stays as it was.
func (r *Run) Clone() *Run {
	if r == nil {
		return nil
	}
	c := *r
	c.Settings.AutoApprove = slices.Clone(r.Settings.AutoApprove)
	c.Preflight = r.Preflight.Clone()
	c.PostCheck = r.PostCheck.Clone()
	if r.Phases != nil {
		c.Phases = make([]*Phase, len(r.Phases))
		for i, p := range r.Phases {
			c.Phases[i] = p.Clone()
		}
	}
	return &c
}

// Clone returns a deep copy of the phase.
func (p *Phase) Clone() *Phase {
	if p == nil {
		return nil
	}
	c := *p
	if p.Approval != nil {
		a := *p.Approval
		c.Approval = &a
	}
	if p.Steps != nil {
		c.Steps = make([]*Step, len(p.Steps))
		for i, s := range p.Steps {
			st := *s
			c.Steps[i] = &st
		}
	}
	return &c
}

// Clone returns a deep copy of the report.
func (r *Report) Clone() *Report {
	if r == nil {
		return nil
	}
	c := *r
	c.Checks = slices.Clone(r.Checks)
	c.Databases = slices.Clone(r.Databases)
	c.Nodes = slices.Clone(r.Nodes)
	return &c
}

// CurrentPhase returns the phase that runs or waits, or nil once the run is
// over.
func (r *Run) CurrentPhase() *Phase {
	if r.Current == "" {
		return nil
	}
	return r.Phase(r.Current)
}

// Step returns the step with the given ID, or nil.
func (r *Run) Step(id string) *Step {
	for _, p := range r.Phases {
		for _, s := range p.Steps {
			if s.ID == id {
				return s
			}
		}
	}
	return nil
}

// NodesMayBeDown reports whether a stop command may have been sent to any
// node: from then on, abort means recovery rather than just ending the run.
func (r *Run) NodesMayBeDown() bool {
	if p := r.Phase(PhaseStart); p != nil && p.Status != PhasePending && p.Status != PhaseCanceled {
		return true
	}
	if p := r.Phase(PhaseStop); p != nil {
		for _, s := range p.Steps {
			if s.Kind == StepStopNode && s.Attempts > 0 {
				return true
			}
		}
	}
	return false
}

// Waiting reports whether the run waits for a person: at a gate, after a
// failed step, or with a blocked preflight.
func (r *Run) Waiting() bool {
	p := r.CurrentPhase()
	if !r.Status.Open() || p == nil {
		return false
	}
	switch p.Status {
	case PhaseWaiting, PhaseFailed, PhaseBlocked:
		return true
	}
	return false
}

// WindowClosed reports whether the run was opened by a maintenance window
// that has ended at now.
func (r *Run) WindowClosed(now time.Time) bool {
	return !r.WindowEnds.IsZero() && !now.Before(r.WindowEnds)
}

// Progress counts the node steps of the phase for nodes of role: how many
// have finished (done) and how many there are. The terminal and the bot
// print it as "3/32 leaves stopped".
func (p *Phase) Progress(role Role) (done, total int) {
	for _, s := range p.Steps {
		if s.Role != role || (s.Kind != StepStopNode && s.Kind != StepStartNode) {
			continue
		}
		total++
		if s.Status == StepDone {
			done++
		}
	}
	return done, total
}

// gated reports whether the phase waits for a decision before it runs.
// Preflight and finalize have no gate.
func gated(name PhaseName) bool {
	return name != PhasePreflight && name != PhaseFinalize
}

// Choices returns the actions a person may take on the run at now, in the
// order a user interface should offer them: the gate's own action first,
// Abort (or End run) last. It is empty while a phase runs and after the run
// ended. Decide accepts exactly these actions (from an approver).
func Choices(r *Run, now time.Time) []Action {
	p := r.CurrentPhase()
	if !r.Status.Open() || p == nil {
		return nil
	}
	switch p.Status {
	case PhaseWaiting:
		switch p.Name {
		case PhaseMaintenance:
			return []Action{ActMaintenanceDone, ActAbort}
		case PhaseBackup:
			return []Action{ActApprove, ActSkipPhase, ActAbort}
		case PhaseStop:
			if r.WindowClosed(now) {
				return []Action{ActOverride, ActAbort}
			}
			return []Action{ActApprove, ActAbort}
		}
		return []Action{ActApprove, ActAbort}
	case PhaseBlocked:
		return []Action{ActRerunPreflight, ActEndRun}
	case PhaseFailed:
		out := []Action{ActRetry}
		if canSkip(r, p) {
			out = append(out, ActSkip)
		}
		if canDetectionOff(r, p) {
			out = append(out, ActDetectionOff)
		}
		return append(out, ActAbort)
	}
	return nil
}

// maStopUnsafeToSkip reports whether step is the MA's stop while leaf
// failure detection may still be on: skipping it would stop leaves under a
// running MA that fails their partitions over. The way out is detection-off.
func maStopUnsafeToSkip(r *Run, s *Step) bool {
	detectionOn := !r.DetectionChanged && r.DetectionOriginal
	switch s.Kind {
	case StepStopNode:
		return s.Role == RoleMaster && detectionOn
	case StepDetectionOff:
		// Skipping a failed SET GLOBAL ... OFF would go on to stop the
		// leaves under a running MA with detection still ON.
		return detectionOn
	}
	return false
}

func canSkip(r *Run, p *Phase) bool {
	any := false
	for _, s := range p.Steps {
		if s.Status == StepFailed || s.Status == StepInterrupted {
			if maStopUnsafeToSkip(r, s) {
				return false
			}
			any = true
		}
	}
	return any
}

// canDetectionOff reports whether the runbook's way out is open: the MA
// would not stop (its stop step failed or was interrupted) and the run has
// not turned leaf_failure_detection off yet.
func canDetectionOff(r *Run, p *Phase) bool {
	if p.Name != PhaseStop || r.DetectionChanged {
		return false
	}
	for _, s := range p.Steps {
		if s.Kind == StepDetectionOff {
			return false
		}
		if s.Kind == StepStopNode && s.Role == RoleMaster && (s.Status == StepFailed || s.Status == StepInterrupted) {
			return true
		}
	}
	return false
}
