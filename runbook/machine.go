package runbook

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// This file is the run state machine: Transition is a pure function of
// (run, input, now) that returns the next run and the effects the engine
// must carry out, in order. It does no I/O and reads no clock, so every
// rule of the runbook is table-tested in microseconds (machine_test.go).

// Input is something that happens to a run: a person's decision, a step's
// result, a restart, or the engine asking the run to go on.
type Input interface{ input() }

// Continue asks the run to start the steps that may start now. The engine
// feeds it after every other input unless it is draining, which is how
// "stop at the next step boundary" works: no Continue, no new step.
type Continue struct{}

// StepResult reports that a step's work returned. Err is empty on success
// and otherwise says what failed, safe to show.
type StepResult struct {
	StepID   string
	Err      string
	Evidence string  // how success was established ("list-nodes: process stopped")
	Report   *Report // preflight and post-check steps
}

// Decide is a person's decision with what the engine found out about the
// person: whether the approver policy lets them decide on this cluster, and
// whether the two-person rule applies.
type Decide struct {
	Decision
	MayApprove    bool
	TwoPersonRule bool
}

// Resumed tells a reloaded run what re-reading the cluster found for each
// step that was started and never finished (keyed by step ID).
type Resumed struct {
	Rechecks map[string]Recheck
}

// Recheck is what the cluster showed for an interrupted step's target.
type Recheck struct {
	Reached  bool   // the target is already in the state the step wanted
	Evidence string // what was read, for the record
}

func (Continue) input()   {}
func (StepResult) input() {}
func (Decide) input()     {}
func (Resumed) input()    {}

// Refusal says why an input changed nothing, in words for the person who
// sent it. Already is set when the gate was decided before.
type Refusal struct {
	Reason  string
	Already *Approval
}

// Effect is something the engine must do after a transition, in order.
type Effect interface{ effect() }

// Save writes the new run, compare-and-set on the version the transition
// started from, with the approval of Approval's gate (when set) and the
// audit lines, in one transaction. It always comes first: nothing is
// published or executed before the store has it.
type Save struct {
	Approval PhaseName
	Audit    []Audit
}

// RecordAudit appends one audit line without changing the run: a refusal.
type RecordAudit struct{ Audit Audit }

// Publish tells subscribers what happened.
type Publish struct {
	Kind   EventKind
	Phase  PhaseName
	StepID string
}

// Exec runs the step, which the saved run already shows as started.
type Exec struct{ StepID string }

func (Save) effect()        {}
func (RecordAudit) effect() {}
func (Publish) effect()     {}
func (Exec) effect()        {}

// Who the audit log names for what sdbmaint itself does.
const (
	whoEngine = "sdbmaint"
	whoAuto   = "auto_approve"
)

// Transition applies in to run at now. It never changes run: it returns a
// new run (Version one higher) and its effects, or run itself with no Save
// when nothing changed. A refused input returns the refusal, run unchanged,
// and for decisions a RecordAudit effect so that every refusal is logged.
func Transition(run *Run, in Input, now time.Time) (*Run, []Effect, *Refusal) {
	if run == nil {
		return nil, nil, &Refusal{Reason: "no such run"}
	}
	m := &machine{r: run.Clone(), now: now}
	var ref *Refusal
	switch in := in.(type) {
	case Continue:
		m.settle()
		m.launch()
	case StepResult:
		ref = m.stepResult(in)
	case Decide:
		ref = m.decide(in)
	case Resumed:
		m.resumed(in)
	default:
		ref = &Refusal{Reason: fmt.Sprintf("unknown input %T", in)}
	}
	if ref != nil {
		var eff []Effect
		if d, ok := in.(Decide); ok {
			eff = []Effect{RecordAudit{Audit{At: now, RunID: run.ID, Cluster: run.Cluster, Phase: d.Phase,
				Who: d.By, What: "refused " + string(d.Action), Result: ref.Reason}}}
		}
		return run, eff, ref
	}
	if !m.changed {
		return run, nil, nil
	}
	m.r.Version = run.Version + 1
	return m.r, append([]Effect{Save{Approval: m.approval, Audit: m.audit}}, m.effects...), nil
}

type machine struct {
	r        *Run
	now      time.Time
	changed  bool
	approval PhaseName
	audit    []Audit
	effects  []Effect
}

func (m *machine) publish(kind EventKind, phase PhaseName, stepID string) {
	m.changed = true
	m.effects = append(m.effects, Publish{Kind: kind, Phase: phase, StepID: stepID})
}

func (m *machine) log(phase PhaseName, who, what, result string) {
	m.changed = true
	m.audit = append(m.audit, Audit{At: m.now, RunID: m.r.ID, Cluster: m.r.Cluster, Phase: phase, Who: who, What: what, Result: result})
}

// launch starts the pending steps of the current phase's active tier, up to
// the parallelism limit for leaves. Nothing starts while a step of the phase
// is failed or interrupted: a failed step stops its phase.
func (m *machine) launch() {
	r := m.r
	p := r.CurrentPhase()
	if !r.Status.Open() || p == nil || p.Status != PhaseRunning {
		return
	}
	tier, ok := activeTier(p)
	if !ok {
		return
	}
	running, limit := 0, 0
	for _, s := range p.Steps {
		switch s.Status {
		case StepFailed, StepInterrupted:
			return
		case StepRunning:
			if s.Tier == tier {
				running++
			}
		}
	}
	for _, s := range p.Steps {
		if s.Tier == tier && s.Role == RoleLeaf && (s.Kind == StepStopNode || s.Kind == StepStartNode) {
			limit = r.Settings.Parallelism
			break
		}
	}
	for _, s := range p.Steps {
		if s.Tier != tier || s.Status != StepPending {
			continue
		}
		if limit > 0 && running >= limit {
			break
		}
		running++
		s.Status = StepRunning
		s.Attempts++
		s.StartedAt = m.now
		s.EndedAt = time.Time{}
		s.Error = ""
		if s.Kind == StepStopNode && r.DownSince.IsZero() {
			r.DownSince = m.now
		}
		m.publish(EventStepStarted, p.Name, s.ID)
		m.effects = append(m.effects, Exec{StepID: s.ID})
	}
}

// activeTier is the lowest tier with a step that is not finished.
func activeTier(p *Phase) (int, bool) {
	tier, ok := 0, false
	for _, s := range p.Steps {
		if s.Status == StepDone || s.Status == StepSkipped {
			continue
		}
		if !ok || s.Tier < tier {
			tier, ok = s.Tier, true
		}
	}
	return tier, ok
}

// settle moves a running phase on when its steps allow: failed once nothing
// runs and a step failed, done once every step is done or skipped (and then
// into the next phase, which may itself settle at once).
func (m *machine) settle() {
	for {
		r := m.r
		p := r.CurrentPhase()
		if !r.Status.Open() || p == nil || p.Status != PhaseRunning {
			return
		}
		running, failed, unfinished := false, false, false
		for _, s := range p.Steps {
			switch s.Status {
			case StepRunning:
				running = true
			case StepFailed, StepInterrupted:
				failed = true
			case StepPending:
				unfinished = true
			}
		}
		switch {
		case running:
			return
		case failed:
			p.Status = PhaseFailed
			m.publish(EventGateWaiting, p.Name, "")
			return
		case unfinished:
			return
		}
		m.completePhase(p)
	}
}

func (m *machine) completePhase(p *Phase) {
	p.Status = PhaseDone
	p.EndedAt = m.now
	m.publish(EventPhaseFinished, p.Name, "")
	m.enterAfter(p.Name)
}

// enterAfter moves the run into the phase after name, or ends it after
// finalize.
func (m *machine) enterAfter(name PhaseName) {
	i := slices.Index(Phases, name)
	if i < 0 || i+1 >= len(Phases) {
		m.finishAfterFinalize()
		return
	}
	m.enter(Phases[i+1])
}

// enter makes name the current phase: skipped when there is nothing to do,
// running when it has no gate or is auto-approved, otherwise waiting.
func (m *machine) enter(name PhaseName) {
	r := m.r
	r.Current = name
	p := r.Phase(name)
	switch name {
	case PhaseStart:
		planStart(r)
	case PhaseFinalize:
		planFinalize(r)
	case PhaseMaintenance:
		// The humans' time starts when the cluster is down, not when they
		// press the button.
		p.StartedAt = m.now
	}
	skip := ""
	switch {
	case name == PhaseBackup && r.Settings.BackupTo == "":
		skip = "skipped: no backup target configured"
	case name != PhaseMaintenance && len(p.Steps) == 0:
		skip = "skipped: nothing to do (no user databases)"
	}
	if skip != "" {
		p.Status = PhaseSkipped
		p.Note = skip
		p.StartedAt, p.EndedAt = m.now, m.now
		m.publish(EventPhaseFinished, name, "")
		m.enterAfter(name)
		return
	}
	auto := slices.Contains(r.Settings.AutoApprove, name) && !(name == PhaseStop && r.WindowClosed(m.now))
	if gated(name) && !auto {
		p.Status = PhaseWaiting
		m.publish(EventGateWaiting, name, "")
		return
	}
	if gated(name) {
		p.Auto = true
		m.log(name, whoAuto, "approve", "auto-approved by the cluster's auto_approve")
	}
	if name == PhaseMaintenance {
		p.Status = PhaseDone
		p.EndedAt = m.now
		m.publish(EventPhaseFinished, name, "")
		m.enterAfter(name)
		return
	}
	p.Status = PhaseRunning
	p.StartedAt = m.now
	m.publish(EventRunUpdated, name, "")
}

func (m *machine) finishAfterFinalize() {
	r := m.r
	switch {
	case r.Recovering:
		note := "aborted; recovery finished: the stopped nodes were started again"
		if f := postCheckProblem(r); f != "" {
			note += "; " + f
		}
		m.finish(RunAborted, note)
	case postCheckProblem(r) != "":
		m.finish(RunDegraded, postCheckProblem(r))
	default:
		m.finish(RunSucceeded, "maintenance finished; post-checks passed")
	}
}

// postCheckProblem says, loudly, what is wrong with the post-checks: failed
// checks or a skipped post-check. "" when they passed.
func postCheckProblem(r *Run) string {
	var problems []string
	// A skipped restore leaves the cluster with leaf_failure_detection
	// different from what the run found: never a success.
	if s := r.Step(stepIDRestoreDetection); s != nil && s.Status == StepSkipped {
		problems = append(problems, fmt.Sprintf("LEAF_FAILURE_DETECTION NOT RESTORED: it was %s before the run and the restore was skipped (%s); run SET GLOBAL leaf_failure_detection=%s on the MA",
			onOff(r.DetectionOriginal), s.SkipReason, onOff(r.DetectionOriginal)))
	}
	if s := r.Step(stepIDPostCheck); s != nil && s.Status == StepSkipped {
		problems = append(problems, "POST-CHECKS SKIPPED by a person: "+s.SkipReason)
	} else if r.PostCheck != nil {
		var bad []string
		for _, c := range r.PostCheck.Failed() {
			bad = append(bad, c.Name+": "+c.Detail)
		}
		if len(bad) > 0 {
			problems = append(problems, "POST-CHECKS FAILED: "+strings.Join(bad, "; "))
		}
	}
	return strings.Join(problems, "; ")
}

// finish ends the run. Phases that never ran are canceled.
func (m *machine) finish(status RunStatus, note string) {
	r := m.r
	r.Status = status
	r.Current = ""
	r.EndedAt = m.now
	r.Note = note
	for _, p := range r.Phases {
		if p.Status == PhasePending || p.Status == PhaseWaiting {
			p.Status = PhaseCanceled
		}
	}
	m.log("", whoEngine, "run "+string(status), note)
	m.publish(EventRunFinished, "", "")
}

func (m *machine) stepResult(res StepResult) *Refusal {
	r := m.r
	s := r.Step(res.StepID)
	if s == nil {
		return &Refusal{Reason: fmt.Sprintf("run %s has no step %q", r.ID, res.StepID)}
	}
	if s.Status != StepRunning || !r.Status.Open() {
		return &Refusal{Reason: fmt.Sprintf("step %s is %s, not running", s.ID, s.Status)}
	}
	p := r.Phase(s.Phase)
	s.EndedAt = m.now
	if res.Err == "" && (s.Kind == StepPreflight || s.Kind == StepPreStopCheck || s.Kind == StepPostCheck) && res.Report == nil {
		res.Err = "the checks returned no report"
	}
	if s.Kind == StepPreStopCheck && res.Err == "" {
		// The re-check's report is the run's latest: the card and the
		// history show the cluster as it was right before the stop.
		r.Preflight = res.Report.Clone()
		if msg := blockingFailures(res.Report); msg != "" {
			res.Err, res.Evidence = msg, ""
		} else if msg := nodesChanged(r, res.Report); msg != "" {
			res.Err, res.Evidence = msg, ""
		}
	}
	if res.Err != "" {
		s.Status = StepFailed
		s.Error = res.Err
		m.log(p.Name, whoEngine, "step failed", s.ID+": "+res.Err)
		m.publish(EventStepFinished, p.Name, s.ID)
		if s.Kind == StepPreflight {
			m.block(p, "preflight could not run: "+res.Err)
			return nil
		}
		m.settle()
		return nil
	}
	s.Status = StepDone
	s.Evidence = res.Evidence
	m.publish(EventStepFinished, p.Name, s.ID)
	switch s.Kind {
	case StepPreflight:
		r.Preflight = res.Report.Clone()
		if failed := res.Report.Failed(); len(failed) > 0 {
			names := make([]string, len(failed))
			for i, c := range failed {
				names[i] = c.Name
			}
			m.block(p, "blocked by failing checks: "+strings.Join(names, ", "))
			return nil
		}
		if err := planFromPreflight(r, res.Report); err != nil {
			m.block(p, "blocked: "+err.Error())
			return nil
		}
		r.DetectionOriginal = res.Report.LeafFailureDetection
		p.Note = ""
	case StepPostCheck:
		r.PostCheck = res.Report.Clone()
	case StepDetectionOff:
		r.DetectionChanged = r.DetectionOriginal
	case StepWaitSQL:
		r.UpAt = m.now
	}
	m.settle()
	return nil
}

// blockingFailures says which blocking checks of rep failed and why, or ""
// when none did. Warnings never count: they did not block preflight either.
func blockingFailures(rep *Report) string {
	failed := rep.Failed()
	if len(failed) == 0 {
		return ""
	}
	parts := make([]string, len(failed))
	for i, c := range failed {
		parts[i] = c.Name + ": " + c.Detail
	}
	return fmt.Sprintf("%d blocking %s failed, so no node was stopped: %s", len(failed), plural(len(failed), "check", "checks"), strings.Join(parts, "; "))
}

// nodesChanged compares the nodes the toolbox lists now with the nodes the
// stop phase was planned for at preflight. A node added since then would
// not be stopped (and would fail over its partitions under the stop); a
// node gone would make a stop step fail half-way. Either way the plan no
// longer fits the cluster, and only a new run plans again.
func nodesChanged(r *Run, rep *Report) string {
	planned := map[string]bool{}
	if p := r.Phase(PhaseStop); p != nil {
		for _, s := range p.Steps {
			if s.Kind == StepStopNode {
				planned[s.Target] = true
			}
		}
	}
	if len(planned) == 0 {
		return ""
	}
	var added, gone []string
	now := map[string]bool{}
	for _, n := range rep.Nodes {
		now[n.ID] = true
		if !planned[n.ID] {
			added = append(added, fmt.Sprintf("%s %s", roleShort(n.Role), ShortID(n.ID)))
		}
	}
	for id := range planned {
		if !now[id] {
			gone = append(gone, ShortID(id))
		}
	}
	if len(added) == 0 && len(gone) == 0 {
		return ""
	}
	sort.Strings(gone)
	var parts []string
	if len(added) > 0 {
		parts = append(parts, "new: "+strings.Join(added, ", "))
	}
	if len(gone) > 0 {
		parts = append(parts, "gone: "+strings.Join(gone, ", "))
	}
	return fmt.Sprintf("the cluster's nodes changed since preflight (%s), so no node was stopped: the stop plan no longer covers the cluster; abort and start a new run, whose preflight plans again",
		strings.Join(parts, "; "))
}

func (m *machine) block(p *Phase, note string) {
	p.Status = PhaseBlocked
	p.Note = note
	m.log(p.Name, whoEngine, "preflight blocked", note)
	m.publish(EventGateWaiting, p.Name, "")
}

func (m *machine) resumed(in Resumed) {
	r := m.r
	if !r.Status.Open() {
		return
	}
	for _, p := range r.Phases {
		for _, s := range p.Steps {
			if s.Status != StepRunning {
				continue
			}
			rc := in.Rechecks[s.ID]
			switch {
			case s.Kind.ReadOnly():
				s.Status = StepPending
				s.Evidence = "interrupted by a restart; runs again (it only reads the cluster)"
				m.log(p.Name, whoEngine, "step interrupted", s.ID+": read-only, runs again")
				m.publish(EventRunUpdated, p.Name, s.ID)
			case rc.Reached:
				s.Status = StepDone
				s.EndedAt = m.now
				s.Evidence = "after a restart, no command sent: " + rc.Evidence
				if s.Kind == StepDetectionOff {
					r.DetectionChanged = r.DetectionOriginal
				}
				m.log(p.Name, whoEngine, "step done after restart", s.ID+": "+rc.Evidence)
				m.publish(EventStepFinished, p.Name, s.ID)
			default:
				s.Status = StepInterrupted
				s.EndedAt = m.now
				s.Error = "interrupted: sdbmaint stopped before this step finished; Retry runs it again"
				if rc.Evidence != "" {
					s.Error += " (" + rc.Evidence + ")"
				}
				m.log(p.Name, whoEngine, "step interrupted", s.ID)
				m.publish(EventStepFinished, p.Name, s.ID)
			}
		}
	}
	m.settle()
}
