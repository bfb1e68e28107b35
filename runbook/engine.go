package runbook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Approvers is the approver policy: who may decide on a cluster's runs. The
// caller (Slack, the terminal) supplies the identity; the engine asks.
type Approvers interface {
	// MayApprove reports whether user may decide on cluster's runs. An
	// error (Unavailable) means the policy could not be consulted.
	MayApprove(ctx context.Context, cluster, user string) (bool, error)
}

// AllowAll is the approver policy of the terminal: whoever runs sdbmaint on
// the host may decide.
type AllowAll struct{}

// MayApprove always allows.
func (AllowAll) MayApprove(context.Context, string, string) (bool, error) { return true, nil }

// EngineConfig is what an Engine needs.
type EngineConfig struct {
	Store    Store
	Clusters ClusterSource
	Clock    Clock // nil = RealClock
	// Approvers decides who may decide; nil lets everyone (as AllowAll).
	Approvers Approvers
	// TwoPersonRule forbids the person who started a run to move it forward.
	TwoPersonRule bool
	Logger        *slog.Logger // nil = discard
}

// StartRequest asks for a new run.
type StartRequest struct {
	Cluster string
	By      string // who starts it: a Slack user ID or "terminal:USER"
	Window  string // the maintenance window that opens it, if any
	// WindowEnds is when that window closes: the stop gate needs an
	// override after it.
	WindowEnds time.Time
}

// StartResult is the answer to Start: the new run, or the cluster's open run
// that prevented it (who started it and when), as data.
type StartResult struct {
	Run      *Run
	Existing *Run
}

// Engine runs the runbook: it starts runs, takes decisions, executes
// approved phases step by step through the cluster interfaces, writes every
// change to the Store before the next thing happens, and publishes events.
// Decisions on one run are serialised; runs of different clusters proceed
// independently. All methods are safe for concurrent use.
type Engine struct {
	store     Store
	clusters  ClusterSource
	clock     Clock
	approvers Approvers
	twoPerson bool
	log       *slog.Logger
	bus       *bus
	output    *outputLog

	// ctx is canceled only by a Drain that runs out of time: step work is
	// not tied to the request that approved it.
	ctx    context.Context
	cancel context.CancelFunc
	steps  sync.WaitGroup

	mu       sync.Mutex
	runs     map[string]*runState
	listers  map[*Cluster]*lister
	draining bool
}

// runState is one open run in memory; mu serialises everything that
// happens to it.
type runState struct {
	name    string // the cluster's name; never changes, so read without mu
	mu      sync.Mutex
	run     *Run
	cluster *Cluster
	log     *slog.Logger

	qmu   sync.Mutex
	queue []*queuedResult // step results waiting for mu
}

// NewEngine returns an engine. Call Resume to pick up runs that were open
// when the program last stopped.
func NewEngine(cfg EngineConfig) *Engine {
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.Approvers == nil {
		cfg.Approvers = AllowAll{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := newBus()
	return &Engine{
		store: cfg.Store, clusters: cfg.Clusters, clock: cfg.Clock, approvers: cfg.Approvers,
		twoPerson: cfg.TwoPersonRule, log: cfg.Logger, bus: b, output: newOutputLog(cfg.Store, b, cfg.Logger),
		ctx: ctx, cancel: cancel, runs: map[string]*runState{}, listers: map[*Cluster]*lister{},
	}
}

// Subscribe returns a subscription to every event from now on.
func (e *Engine) Subscribe() *Subscription { return e.bus.subscribe() }

func (e *Engine) isDraining() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.draining
}

var errDraining = Errorf(Unavailable, "sdbmaint is shutting down; try again in a moment")

// Start opens a run of req.Cluster and starts its preflight. If the cluster
// has an open run, nothing starts and the result names that run. An
// unknown cluster is Invalid.
func (e *Engine) Start(ctx context.Context, req StartRequest) (StartResult, error) {
	if e.isDraining() {
		return StartResult{}, errDraining
	}
	if strings.TrimSpace(req.By) == "" {
		return StartResult{}, Errorf(Invalid, "a run must name who starts it")
	}
	c, err := e.clusters.Cluster(ctx, req.Cluster)
	if err != nil {
		return StartResult{}, err
	}
	run := NewRun(newRunID(), req, c, e.clock.Now())
	existing, err := e.store.CreateRun(ctx, run)
	if err != nil {
		return StartResult{}, fmt.Errorf("create run: %w", err)
	}
	audit := Audit{At: run.StartedAt, RunID: run.ID, Cluster: run.Cluster, Who: req.By, What: "start"}
	if existing != nil {
		audit.RunID = existing.ID
		audit.What = "refused start"
		audit.Result = fmt.Sprintf("run %s is open, started by %s at %s", existing.ID, existing.StartedBy, existing.StartedAt.UTC().Format(time.RFC3339))
		if err := e.store.AppendAudit(ctx, audit); err != nil {
			e.log.Error("audit refused start", "cluster", req.Cluster, "err", err)
		}
		return StartResult{Existing: existing}, nil
	}
	audit.Result = "run " + run.ID
	if req.Window != "" {
		audit.Result += " for window " + req.Window
	}
	if err := e.store.AppendAudit(ctx, audit); err != nil {
		e.log.Error("audit start", "run", run.ID, "err", err)
	}
	rs := e.register(run, c)
	rs.log.Info("run started", "by", req.By)
	e.bus.publish(Event{Kind: EventRunStarted, At: run.StartedAt, Run: run.Clone(), Phase: PhasePreflight})
	snap, _, err := e.input(ctx, rs, Continue{})
	if err != nil {
		return StartResult{}, err
	}
	return StartResult{Run: snap}, nil
}

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func (e *Engine) register(run *Run, c *Cluster) *runState {
	e.mu.Lock()
	defer e.mu.Unlock()
	if rs, ok := e.runs[run.ID]; ok {
		return rs
	}
	rs := &runState{name: run.Cluster, run: run, cluster: c, log: e.log.With("run", run.ID, "cluster", run.Cluster)}
	e.runs[run.ID] = rs
	return rs
}

// Decide applies a person's decision. A refusal (not an approver, the
// two-person rule, a stale or already decided gate, an action that is not
// possible now) is an Outcome with Accepted false and the reason; errors
// are for failures to decide at all (the store, the approver policy).
func (e *Engine) Decide(ctx context.Context, d Decision) (Outcome, error) {
	if e.isDraining() {
		return Outcome{}, errDraining
	}
	rs, err := e.state(ctx, d.RunID)
	if err != nil {
		return Outcome{}, err
	}
	may, err := e.approvers.MayApprove(ctx, rs.name, d.By)
	if err != nil {
		return Outcome{}, Wrap(Unavailable, err, "could not check whether %s may approve", d.By)
	}
	run, ref, err := e.input(ctx, rs, Decide{Decision: d, MayApprove: may, TwoPersonRule: e.twoPerson})
	if err != nil {
		return Outcome{}, err
	}
	if ref != nil {
		rs.log.Info("decision refused", "phase", d.Phase, "by", d.By, "action", d.Action, "reason", ref.Reason)
		return Outcome{Reason: ref.Reason, Already: ref.Already, Run: run}, nil
	}
	rs.log.Info("decision", "phase", d.Phase, "by", d.By, "action", d.Action)
	return Outcome{Accepted: true, Run: run}, nil
}

// state returns the run's in-memory state. An open run that this engine
// does not hold yet is resumed first (as Resume would); a finished run gets
// a state of its own that only answers refusals.
func (e *Engine) state(ctx context.Context, id string) (*runState, error) {
	e.mu.Lock()
	rs, ok := e.runs[id]
	e.mu.Unlock()
	if ok {
		return rs, nil
	}
	run, err := e.store.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if !run.Status.Open() {
		return &runState{name: run.Cluster, run: run, log: e.log.With("run", run.ID, "cluster", run.Cluster)}, nil
	}
	return e.resumeRun(ctx, run)
}

// input runs in through the state machine under the run's lock and, unless
// in was refused or the engine drains, lets the run start what may start
// now; the result is saved in one write before any effect is carried out.
// It returns a snapshot of the run after.
func (e *Engine) input(ctx context.Context, rs *runState, in Input) (*Run, *Refusal, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	refs, err := e.applyLocked(ctx, rs, []Input{in})
	e.forgetIfOver(rs)
	var ref *Refusal
	if len(refs) > 0 {
		ref = refs[0]
	}
	return rs.run.Clone(), ref, err
}

// queuedResult is a step result waiting for the run's lock.
type queuedResult struct {
	res  StepResult
	done chan queuedDone
}

type queuedDone struct {
	ref *Refusal
	err error
}

// stepResult records a step's result. Results that arrive while another
// is being saved are committed as a group: whoever gets the run's lock
// applies every queued result, and the steps they let start, in one
// transaction. A tier of 32 leaves that finish together then costs a few
// writes instead of 32 in a row.
func (e *Engine) stepResult(rs *runState, res StepResult) (*Refusal, error) {
	q := &queuedResult{res: res, done: make(chan queuedDone, 1)}
	rs.qmu.Lock()
	rs.queue = append(rs.queue, q)
	rs.qmu.Unlock()
	rs.mu.Lock()
	rs.qmu.Lock()
	batch := rs.queue
	rs.queue = nil
	rs.qmu.Unlock()
	if len(batch) > 0 {
		ins := make([]Input, len(batch))
		for i, b := range batch {
			ins[i] = b.res
		}
		refs, err := e.applyLocked(context.Background(), rs, ins)
		for i, b := range batch {
			d := queuedDone{err: err}
			if err == nil {
				d.ref = refs[i]
			}
			b.done <- d
		}
		e.forgetIfOver(rs)
	}
	rs.mu.Unlock()
	d := <-q.done
	return d.ref, d.err
}

func (e *Engine) forgetIfOver(rs *runState) {
	if !rs.run.Status.Open() {
		e.mu.Lock()
		delete(e.runs, rs.run.ID)
		e.mu.Unlock()
	}
}

// applyLocked applies ins one after another, then (if any was accepted and
// the engine does not drain) Continue, saves the resulting run once,
// compare-and-set on the version it started from, and then carries out
// the effects in order. It returns each input's refusal.
func (e *Engine) applyLocked(ctx context.Context, rs *runState, ins []Input) ([]*Refusal, error) {
	for attempt := 0; ; attempt++ {
		now := e.clock.Now()
		cur := rs.run
		refs := make([]*Refusal, len(ins))
		var effects []Effect
		var save *Save
		apply := func(in Input) *Refusal {
			next, eff, ref := Transition(cur, in, now)
			for _, ef := range eff {
				if sv, ok := ef.(Save); ok {
					if save == nil {
						save = &Save{}
					}
					if sv.Approval != "" {
						save.Approval = sv.Approval // decisions come one at a time
					}
					save.Audit = append(save.Audit, sv.Audit...)
					continue
				}
				effects = append(effects, ef)
			}
			cur = next
			return ref
		}
		accepted := false
		for i, in := range ins {
			refs[i] = apply(in)
			accepted = accepted || refs[i] == nil
		}
		if accepted && !e.isDraining() {
			apply(Continue{})
		}
		if save != nil {
			err := e.store.UpdateRun(ctx, Update{Run: cur, Prev: rs.run.Version, Approval: save.Approval, Audit: save.Audit})
			if ErrorKind(err) == Conflict && attempt < 2 {
				// The stored run moved on without us (another process,
				// or an approval that won in the store): decide again on
				// what is stored.
				fresh, gerr := e.store.GetRun(ctx, rs.run.ID)
				if gerr != nil {
					return nil, fmt.Errorf("reload run %s after conflict: %w", rs.run.ID, gerr)
				}
				rs.run = fresh
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("save run %s: %w", rs.run.ID, err)
			}
		}
		rs.run = cur
		e.carryOut(rs, effects, now)
		return refs, nil
	}
}

// carryOut performs the effects after the save: audit refusals, publish
// events (all sharing one snapshot of the run), launch steps.
func (e *Engine) carryOut(rs *runState, effects []Effect, now time.Time) {
	var snap *Run
	for _, ef := range effects {
		switch ef := ef.(type) {
		case RecordAudit:
			if err := e.store.AppendAudit(context.Background(), ef.Audit); err != nil {
				rs.log.Error("audit", "what", ef.Audit.What, "err", err)
			}
		case Publish:
			if snap == nil {
				snap = rs.run.Clone()
			}
			ev := Event{Kind: ef.Kind, At: now, Run: snap, Phase: ef.Phase}
			if ef.StepID != "" {
				ev.Step = snap.Step(ef.StepID)
			}
			if ev.Phase == "" {
				ev.Phase = snap.Current
			}
			e.bus.publish(ev)
		case Exec:
			e.launch(rs, ef.StepID)
		}
	}
}

// launch runs a step that the store already shows as started. Its result
// goes back through the state machine. If the engine was stopped hard
// meanwhile, the result is dropped: the step stays started-not-finished and
// is re-read after the restart, which is the truth about it.
func (e *Engine) launch(rs *runState, stepID string) {
	run := rs.run.Clone()
	step := run.Step(stepID)
	e.steps.Add(1)
	go func() {
		defer e.steps.Done()
		log := rs.log.With("phase", step.Phase, "step", step.ID)
		if step.Target != "" && (step.Kind == StepStopNode || step.Kind == StepStartNode) {
			log = log.With("node", step.Target)
		}
		log.Info("step started", "attempt", step.Attempts)
		res := e.execute(e.ctx, rs.cluster, run, step, log)
		if e.ctx.Err() != nil {
			log.Warn("step left unfinished: sdbmaint is stopping; it is re-read on resume")
			return
		}
		if res.Err != "" {
			log.Warn("step failed", "err", res.Err)
		} else {
			log.Info("step done", "evidence", res.Evidence)
		}
		if ref, err := e.stepResult(rs, res); err != nil {
			log.Error("record step result", "err", err)
		} else if ref != nil {
			log.Error("step result refused", "reason", ref.Reason)
		}
	}()
}

// Get returns a snapshot of the run. An unknown ID is Invalid.
func (e *Engine) Get(ctx context.Context, runID string) (*Run, error) {
	e.mu.Lock()
	rs, ok := e.runs[runID]
	e.mu.Unlock()
	if ok {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		return rs.run.Clone(), nil
	}
	return e.store.GetRun(ctx, runID)
}

// OpenRun returns the cluster's open run, or nil and no error.
func (e *Engine) OpenRun(ctx context.Context, cluster string) (*Run, error) {
	return e.store.OpenRun(ctx, cluster)
}

// OpenRuns returns every open run.
func (e *Engine) OpenRuns(ctx context.Context) ([]*Run, error) { return e.store.OpenRuns(ctx) }

// History returns the cluster's runs ("" = all), newest first, at most
// limit (0 = all).
func (e *Engine) History(ctx context.Context, cluster string, limit int) ([]*Run, error) {
	return e.store.History(ctx, cluster, limit)
}

// AuditLog returns the run's audit lines ("" = all runs) in order.
func (e *Engine) AuditLog(ctx context.Context, runID string) ([]Audit, error) {
	return e.store.Audit(ctx, runID)
}

// Output returns the step's output ("" = the whole run) in order.
func (e *Engine) Output(ctx context.Context, runID, stepID string) ([]Chunk, error) {
	return e.store.Output(ctx, runID, stepID)
}

// Describe says, for people, what deciding on phase will do now.
func (e *Engine) Describe(run *Run, phase PhaseName) string {
	return Describe(run, phase, e.clock.Now())
}

// Resume reloads every open run after a restart. Finished steps are never
// run again. A step that was started and not finished is re-read first:
// a node step whose node already is in the wanted state is recorded done
// with that evidence and no command is sent; steps that only read run
// again; everything else is shown interrupted and waits for a Retry. An
// approved phase whose steps had not started goes on. Runs whose cluster is
// no longer configured are reported in the error and left as they are.
func (e *Engine) Resume(ctx context.Context) error {
	if e.isDraining() {
		return errDraining
	}
	runs, err := e.store.OpenRuns(ctx)
	if err != nil {
		return fmt.Errorf("load open runs: %w", err)
	}
	var errs []error
	for _, run := range runs {
		e.mu.Lock()
		_, loaded := e.runs[run.ID]
		e.mu.Unlock()
		if loaded {
			continue
		}
		if _, err := e.resumeRun(ctx, run); err != nil {
			errs = append(errs, fmt.Errorf("resume run %s of %s: %w", run.ID, run.Cluster, err))
		}
	}
	return errors.Join(errs...)
}

// ResumeRun reloads one open run, as Resume does for all of them, and
// returns it. The terminal uses it to continue its own cluster's run
// without taking over the runs of other clusters. A run that has ended is
// Invalid.
func (e *Engine) ResumeRun(ctx context.Context, runID string) (*Run, error) {
	if e.isDraining() {
		return nil, errDraining
	}
	e.mu.Lock()
	_, loaded := e.runs[runID]
	e.mu.Unlock()
	if !loaded {
		run, err := e.store.GetRun(ctx, runID)
		if err != nil {
			return nil, err
		}
		if !run.Status.Open() {
			return nil, Errorf(Invalid, "run %s has ended (%s)", runID, run.Status)
		}
		if _, err := e.resumeRun(ctx, run); err != nil {
			return nil, err
		}
	}
	return e.Get(ctx, runID)
}

func (e *Engine) resumeRun(ctx context.Context, run *Run) (*runState, error) {
	c, err := e.clusters.Cluster(ctx, run.Cluster)
	if err != nil {
		return nil, err
	}
	rs := e.register(run, c)
	rs.mu.Lock()
	rechecks := e.recheck(ctx, rs)
	rs.mu.Unlock()
	rs.log.Info("resuming run", "phase", run.Current, "interrupted", len(rechecks))
	snap, _, err := e.input(ctx, rs, Resumed{Rechecks: rechecks})
	if err != nil {
		return nil, err
	}
	// Tell every watcher where the run stands now: a gate that waited
	// before the restart waits again.
	kind := EventRunUpdated
	if snap.Waiting() {
		kind = EventGateWaiting
	}
	e.bus.publish(Event{Kind: kind, At: e.clock.Now(), Run: snap, Phase: snap.Current})
	return rs, nil
}

// Drain stops taking work: Start, Decide and Resume are refused from now
// on, no new step starts, and the steps that run finish and are recorded.
// If ctx ends first, the running steps are canceled and left
// started-not-finished in the store, to be re-read on Resume; the store
// stays consistent either way. The engine cannot be used after Drain.
func (e *Engine) Drain(ctx context.Context) error {
	e.mu.Lock()
	e.draining = true
	states := make([]*runState, 0, len(e.runs))
	for _, rs := range e.runs {
		states = append(states, rs)
	}
	e.mu.Unlock()
	// A barrier: whoever held a run's lock when draining began has finished
	// launching its steps, so the wait below sees all of them.
	for _, rs := range states {
		rs.mu.Lock()
		_ = rs.run // nothing to do inside: taking the lock is the barrier
		rs.mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		e.steps.Wait()
		close(done)
	}()
	select {
	case <-done:
		e.cancel()
		return nil
	case <-ctx.Done():
		e.cancel()
		<-done
		return ctx.Err()
	}
}
