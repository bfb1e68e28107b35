// Package memstore is an in-memory runbook.Store: the same rules as the
// SQLite store (one open run per cluster, compare-and-set updates, one
// approval per gate, an append-only audit log), kept in maps. Tests and the
// demo use it; it passes runbook/storetest.RunConformance.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/sdbmaint/sdbmaint/runbook"
)

var _ runbook.Store = (*Store)(nil)

// Store is an in-memory runbook.Store. The zero value is not usable; call
// New.
type Store struct {
	mu        sync.Mutex
	runs      map[string]*runbook.Run
	order     []string // run IDs in creation order
	approvals map[string]map[runbook.PhaseName]runbook.Approval
	audit     []runbook.Audit
	output    []runbook.Chunk
	closed    bool
}

// New returns an empty store.
func New() *Store {
	return &Store{runs: map[string]*runbook.Run{}, approvals: map[string]map[runbook.PhaseName]runbook.Approval{}}
}

func (s *Store) check() error {
	if s.closed {
		return runbook.Errorf(runbook.Unavailable, "store is closed")
	}
	return nil
}

// CreateRun stores a new open run unless the cluster has one.
func (s *Store) CreateRun(_ context.Context, run *runbook.Run) (*runbook.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	if run == nil || run.ID == "" || run.Cluster == "" {
		return nil, runbook.Errorf(runbook.Invalid, "a run needs an ID and a cluster")
	}
	if _, dup := s.runs[run.ID]; dup {
		return nil, runbook.Errorf(runbook.Conflict, "run %s exists", run.ID)
	}
	if open := s.openLocked(run.Cluster); open != nil && run.Status.Open() {
		return open.Clone(), nil
	}
	s.runs[run.ID] = run.Clone()
	s.order = append(s.order, run.ID)
	s.approvals[run.ID] = map[runbook.PhaseName]runbook.Approval{}
	for _, p := range run.Phases {
		if p.Approval != nil {
			s.approvals[run.ID][p.Name] = *p.Approval
		}
	}
	return nil, nil
}

func (s *Store) openLocked(cluster string) *runbook.Run {
	for _, id := range s.order {
		if r := s.runs[id]; r.Cluster == cluster && r.Status.Open() {
			return r
		}
	}
	return nil
}

// UpdateRun replaces the run if its version is still u.Prev.
func (s *Store) UpdateRun(_ context.Context, u runbook.Update) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if u.Run == nil {
		return runbook.Errorf(runbook.Invalid, "no run to update")
	}
	cur, ok := s.runs[u.Run.ID]
	if !ok {
		return runbook.Errorf(runbook.Invalid, "no run %s", u.Run.ID)
	}
	if cur.Version != u.Prev {
		return runbook.Errorf(runbook.Conflict, "run %s is at version %d, not %d", cur.ID, cur.Version, u.Prev)
	}
	if u.Run.Status.Open() && !cur.Status.Open() {
		return runbook.Errorf(runbook.Conflict, "run %s has ended and cannot be reopened", cur.ID)
	}
	if u.Run.Cluster != cur.Cluster {
		return runbook.Errorf(runbook.Invalid, "run %s cannot move to another cluster", cur.ID)
	}
	var approval *runbook.Approval
	if u.Approval != "" {
		p := u.Run.Phase(u.Approval)
		if p == nil || p.Approval == nil {
			return runbook.Errorf(runbook.Invalid, "update approves %s but the run has no approval for it", u.Approval)
		}
		if prev, ok := s.approvals[cur.ID][u.Approval]; ok {
			return runbook.Errorf(runbook.Conflict, "%s was already approved by %s", u.Approval, prev.By)
		}
		approval = p.Approval
	}
	if approval != nil {
		s.approvals[cur.ID][u.Approval] = *approval
	}
	next := u.Run.Clone()
	// The stored approvals are the truth: a run cannot drop or rewrite one.
	for _, p := range next.Phases {
		if a, ok := s.approvals[cur.ID][p.Name]; ok {
			p.Approval = &a
		} else {
			p.Approval = nil
		}
	}
	s.runs[cur.ID] = next
	s.audit = append(s.audit, u.Audit...)
	return nil
}

// GetRun returns the run.
func (s *Store) GetRun(_ context.Context, id string) (*runbook.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	r, ok := s.runs[id]
	if !ok {
		return nil, runbook.Errorf(runbook.Invalid, "no run %q", id)
	}
	return r.Clone(), nil
}

// OpenRun returns the cluster's open run or nil.
func (s *Store) OpenRun(_ context.Context, cluster string) (*runbook.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.openLocked(cluster).Clone(), nil
}

// OpenRuns returns every open run, oldest first.
func (s *Store) OpenRuns(_ context.Context) ([]*runbook.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	var out []*runbook.Run
	for _, id := range s.order {
		if r := s.runs[id]; r.Status.Open() {
			out = append(out, r.Clone())
		}
	}
	return out, nil
}

// History returns runs newest first.
func (s *Store) History(_ context.Context, cluster string, limit int) ([]*runbook.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, runbook.Errorf(runbook.Invalid, "history limit %d is negative", limit)
	}
	var out []*runbook.Run
	for i := len(s.order) - 1; i >= 0; i-- {
		if r := s.runs[s.order[i]]; cluster == "" || r.Cluster == cluster {
			out = append(out, r.Clone())
		}
	}
	// Newest first by start time; among equal times the later-created run
	// first (out is already in that order and the sort is stable).
	slices.SortStableFunc(out, func(a, b *runbook.Run) int { return cmp.Compare(b.StartedAt.UnixNano(), a.StartedAt.UnixNano()) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// AppendAudit appends one audit line.
func (s *Store) AppendAudit(_ context.Context, a runbook.Audit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	s.audit = append(s.audit, a)
	return nil
}

// Audit returns the run's audit lines in order.
func (s *Store) Audit(_ context.Context, runID string) ([]runbook.Audit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	var out []runbook.Audit
	for _, a := range s.audit {
		if runID == "" || a.RunID == runID {
			out = append(out, a)
		}
	}
	return out, nil
}

// AppendOutput appends lines of output.
func (s *Store) AppendOutput(_ context.Context, chunks ...runbook.Chunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	for _, c := range chunks {
		if _, ok := s.runs[c.RunID]; !ok {
			return runbook.Errorf(runbook.Invalid, "output for unknown run %q", c.RunID)
		}
	}
	s.output = append(s.output, chunks...)
	return nil
}

// Output returns the step's output in order.
func (s *Store) Output(_ context.Context, runID, stepID string) ([]runbook.Chunk, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	var out []runbook.Chunk
	for _, c := range s.output {
		if c.RunID == runID && (stepID == "" || c.StepID == stepID) {
			out = append(out, c)
		}
	}
	return out, nil
}

// Close makes every later call fail.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// String names the store in logs.
func (s *Store) String() string { return fmt.Sprintf("memstore(%d runs)", len(s.runs)) }
