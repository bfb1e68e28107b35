package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/sdbmaint/sdbmaint/runbook"
)

var (
	_ runbook.RunStore  = (*Store)(nil)
	_ runbook.AuditLog  = (*Store)(nil)
	_ runbook.OutputLog = (*Store)(nil)
)

// Store keeps runs, the audit log and step output in the runbook's tables
// of a database migrated by its store package. It does not own the
// database: the store package closes it.
type Store struct {
	db *sql.DB
	d  Dialect
	q  runQueries

	// written holds, per open run, the run as this Store last wrote it.
	// When an update's Prev matches it, the stored rows are exactly that
	// run (the version compare-and-set guarantees that no one else wrote
	// in between, another process or replica included), so only the
	// phases and steps that changed are written: an engine records every
	// step start and finish, and rewriting a 90-step run each time would
	// dominate a 32-leaf tier.
	mu      sync.Mutex
	written map[string]*runbook.Run
}

// runQueries are the statements that depend on the dialect, built once.
type runQueries struct {
	lockRun, openRun, openRuns, historyOrder string
}

// New returns the Store over db, whose runbook tables d describes.
func New(db *sql.DB, d Dialect) *Store {
	return &Store{db: db, d: d, written: map[string]*runbook.Run{}, q: runQueries{
		lockRun:      `SELECT version, status, cluster FROM runs WHERE id = ?` + d.ForUpdate,
		openRun:      `WHERE ` + d.OpenRunWhere,
		openRuns:     `WHERE ` + d.OpenRunsWhere + ` ORDER BY started_at, ` + d.RunSeq,
		historyOrder: ` ORDER BY started_at DESC, ` + d.RunSeq + ` DESC`,
	}}
}

// maxAttempts bounds how often a transaction is run again after the
// database rolled it back (Dialect.Retryable), and how often CreateRun
// tries again after losing a race to a run that has since ended.
const maxAttempts = 5

// write runs fn in a transaction and commits it, running it again when the
// dialect says the database rolled it back whole. Errors from beginning and
// committing are prefixed with what; fn phrases its own.
func write(ctx context.Context, db *sql.DB, d *Dialect, what string, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := tryWrite(ctx, db, what, fn)
		if err == nil || d.Retryable == nil || !d.Retryable(err) || attempt >= maxAttempts || ctx.Err() != nil {
			return err
		}
	}
}

func tryWrite(ctx context.Context, db *sql.DB, what string, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

func (s *Store) write(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	return write(ctx, s.db, &s.d, what, fn)
}

// errRetryCreate says that CreateRun lost a race to an open run that has
// ended since: the cluster is free again, so the create is tried again.
var errRetryCreate = errors.New("the open run that refused this one has ended")

// CreateRun stores a new open run unless the cluster has one, which it
// returns instead.
func (s *Store) CreateRun(ctx context.Context, run *runbook.Run) (*runbook.Run, error) {
	if run == nil || run.ID == "" || run.Cluster == "" {
		return nil, runbook.Errorf(runbook.Invalid, "a run needs an ID and a cluster")
	}
	for attempt := 1; ; attempt++ {
		var existing *runbook.Run
		err := s.write(ctx, "create run "+run.ID, func(tx *sql.Tx) error {
			existing = nil
			if err := s.insertRun(ctx, tx, run); err != nil {
				if !s.d.IsDuplicate(err) {
					return fmt.Errorf("create run %s: %w", run.ID, err)
				}
				open, gerr := s.openRun(ctx, tx, run.Cluster)
				if gerr != nil {
					return gerr
				}
				if open != nil {
					existing = open
					return nil
				}
				// No open run now: either the ID is taken, or the run that
				// held the cluster ended between the insert and the read.
				var n int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE id = ?`, run.ID).Scan(&n); err != nil {
					return fmt.Errorf("create run %s: %w", run.ID, err)
				}
				if n == 0 {
					return errRetryCreate
				}
				return runbook.Wrap(runbook.Conflict, err, "run %s exists", run.ID)
			}
			if err := s.writeChildren(ctx, tx, run); err != nil {
				return fmt.Errorf("create run %s: %w", run.ID, err)
			}
			for _, p := range run.Phases {
				if p.Approval != nil {
					if err := s.insertApproval(ctx, tx, run, p); err != nil {
						return fmt.Errorf("create run %s: %w", run.ID, err)
					}
				}
			}
			return nil
		})
		switch {
		case errors.Is(err, errRetryCreate) && attempt < maxAttempts:
			continue
		case err != nil:
			return nil, err
		case existing != nil:
			return existing, nil
		}
		s.remember(run)
		return nil, nil
	}
}

// remember records run as written, or forgets it once it has ended.
func (s *Store) remember(run *runbook.Run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if run.Status.Open() {
		s.written[run.ID] = run.Clone()
	} else {
		delete(s.written, run.ID)
	}
}

// lastWritten returns the run as this Store wrote it at version, or nil.
func (s *Store) lastWritten(id string, version int64) *runbook.Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.written[id]; r != nil && r.Version == version {
		return r
	}
	return nil
}

func (s *Store) runColumns(r *runbook.Run) ([]any, error) {
	pre, err := jsonOrNull(r.Preflight)
	if err != nil {
		return nil, err
	}
	post, err := jsonOrNull(r.PostCheck)
	if err != nil {
		return nil, err
	}
	settings, err := json.Marshal(r.Settings)
	if err != nil {
		return nil, err
	}
	t := s.d.Time.Encode
	return []any{r.Cluster, r.StartedBy, t(r.StartedAt), r.Window, t(r.WindowEnds), string(r.Status), r.Version,
		string(r.Current), pre, post, r.DetectionOriginal, r.DetectionChanged, r.Recovering,
		t(r.DownSince), t(r.UpAt), t(r.EndedAt), r.Note, string(settings)}, nil
}

func jsonOrNull(rep *runbook.Report) (any, error) {
	if rep == nil {
		return nil, nil
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return string(b), nil
}

func (s *Store) insertRun(ctx context.Context, tx *sql.Tx, r *runbook.Run) error {
	cols, err := s.runColumns(r)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO runs (id, cluster, started_by, started_at, window_name, window_ends, status, version,
		current_phase, preflight, postcheck, detection_original, detection_changed, recovering, down_since, up_at, ended_at, note, settings)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, append([]any{r.ID}, cols...)...)
	return err
}

// writeChildren replaces the run's phases and steps. Approvals are kept:
// they refer to the run, not to phase rows.
func (s *Store) writeChildren(ctx context.Context, tx *sql.Tx, r *runbook.Run) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM steps WHERE run_id = ?`, r.ID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM phases WHERE run_id = ?`, r.ID); err != nil {
		return err
	}
	t := s.d.Time.Encode
	var phaseRows, stepRows []any
	ord := 0
	for i, p := range r.Phases {
		phaseRows = append(phaseRows, r.ID, string(p.Name), i, string(p.Status), p.Auto, t(p.StartedAt), t(p.EndedAt), p.Note)
		for _, st := range p.Steps {
			stepRows = append(stepRows, r.ID, st.ID, ord, string(p.Name), string(st.Kind), st.Tier, string(st.Role), st.Target,
				st.Label, string(st.Status), st.Attempts, t(st.StartedAt), t(st.EndedAt), st.Error, st.Evidence, st.SkipReason)
			ord++
		}
	}
	// Many rows per INSERT: a run has about a hundred, and a statement
	// (a round trip, for a server) each would dominate every write.
	if err := insertRows(ctx, tx, `INSERT INTO phases (run_id, name, ord, status, auto, started_at, ended_at, note) VALUES `, 8, phaseRows); err != nil {
		return fmt.Errorf("phases: %w", err)
	}
	if err := insertRows(ctx, tx, `INSERT INTO steps (run_id, id, ord, phase, kind, tier, role, target, label, status,
		attempts, started_at, ended_at, error, evidence, skip_reason) VALUES `, 16, stepRows); err != nil {
		return fmt.Errorf("steps: %w", err)
	}
	return nil
}

// maxRowsPerInsert bounds the rows of one INSERT: well under SQLite's
// limit on parameters (32766) and, for lines of ordinary length, under a
// MySQL server's max_allowed_packet.
const maxRowsPerInsert = 200

// insertRows inserts len(args)/width rows, in order, with as few
// statements as maxRowsPerInsert allows.
func insertRows(ctx context.Context, tx *sql.Tx, head string, width int, args []any) error {
	for len(args) > 0 {
		n := min(len(args)/width, maxRowsPerInsert)
		if _, err := tx.ExecContext(ctx, head+valuesList(width, n), args[:n*width]...); err != nil {
			return err
		}
		args = args[n*width:]
	}
	return nil
}

// valuesList returns n rows of width placeholders: "(?, ?), (?, ?)".
func valuesList(width, n int) string {
	row := "(" + strings.Repeat("?, ", width-1) + "?)"
	return strings.Repeat(row+", ", n-1) + row
}

func (s *Store) insertApproval(ctx context.Context, tx *sql.Tx, r *runbook.Run, p *runbook.Phase) error {
	a := p.Approval
	_, err := tx.ExecContext(ctx, `INSERT INTO approvals (run_id, phase, version, approved_by, approved_at, act, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, r.ID, string(p.Name), r.Version, a.By, s.d.Time.Encode(a.At), string(a.Action), a.Reason)
	return err
}

// UpdateRun replaces the run if its stored version is still u.Prev. The
// run's row is read first under the dialect's lock, so racing updates of
// one run take turns and all but the first find another version.
func (s *Store) UpdateRun(ctx context.Context, u runbook.Update) error {
	r := u.Run
	if r == nil {
		return runbook.Errorf(runbook.Invalid, "no run to update")
	}
	err := s.write(ctx, "update run "+r.ID, func(tx *sql.Tx) error {
		var version int64
		var status, cluster string
		err := tx.QueryRowContext(ctx, s.q.lockRun, r.ID).Scan(&version, &status, &cluster)
		if errors.Is(err, sql.ErrNoRows) {
			return runbook.Errorf(runbook.Invalid, "no run %s", r.ID)
		}
		if err != nil {
			return fmt.Errorf("update run %s: %w", r.ID, err)
		}
		switch {
		case version != u.Prev:
			return runbook.Errorf(runbook.Conflict, "run %s is at version %d, not %d", r.ID, version, u.Prev)
		case r.Status.Open() && !runbook.RunStatus(status).Open():
			return runbook.Errorf(runbook.Conflict, "run %s has ended and cannot be reopened", r.ID)
		case cluster != r.Cluster:
			return runbook.Errorf(runbook.Invalid, "run %s cannot move to another cluster", r.ID)
		}
		cols, err := s.runColumns(r)
		if err != nil {
			return fmt.Errorf("update run %s: %w", r.ID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET cluster = ?, started_by = ?, started_at = ?, window_name = ?, window_ends = ?,
			status = ?, version = ?, current_phase = ?, preflight = ?, postcheck = ?, detection_original = ?, detection_changed = ?,
			recovering = ?, down_since = ?, up_at = ?, ended_at = ?, note = ?, settings = ? WHERE id = ? AND version = ?`,
			append(cols, r.ID, u.Prev)...); err != nil {
			if s.d.IsDuplicate(err) {
				return runbook.Wrap(runbook.Conflict, err, "run %s: the cluster has another open run", r.ID)
			}
			return fmt.Errorf("update run %s: %w", r.ID, err)
		}
		if u.Approval != "" {
			p := r.Phase(u.Approval)
			if p == nil || p.Approval == nil {
				return runbook.Errorf(runbook.Invalid, "update approves %s but the run has no approval for it", u.Approval)
			}
			if err := s.insertApproval(ctx, tx, r, p); err != nil {
				if s.d.IsDuplicate(err) {
					return runbook.Wrap(runbook.Conflict, err, "%s of run %s was already approved", u.Approval, r.ID)
				}
				return fmt.Errorf("update run %s: approval: %w", r.ID, err)
			}
		}
		if prev := s.lastWritten(r.ID, u.Prev); prev != nil && samePlan(prev, r) {
			err = s.writeChanges(ctx, tx, prev, r)
		} else {
			err = s.writeChildren(ctx, tx, r)
		}
		if err != nil {
			return fmt.Errorf("update run %s: %w", r.ID, err)
		}
		for _, a := range u.Audit {
			if err := s.appendAudit(ctx, tx, a); err != nil {
				return fmt.Errorf("update run %s: %w", r.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.remember(r)
	return nil
}

// samePlan reports whether a and b have the same phases and the same steps
// in the same order, so that their rows differ only in values.
func samePlan(a, b *runbook.Run) bool {
	if len(a.Phases) != len(b.Phases) {
		return false
	}
	for i, p := range a.Phases {
		q := b.Phases[i]
		if p.Name != q.Name || len(p.Steps) != len(q.Steps) {
			return false
		}
		for j, st := range p.Steps {
			if st.ID != q.Steps[j].ID {
				return false
			}
		}
	}
	return true
}

// writeChanges updates the phase and step rows that differ between prev
// (what is stored) and r.
func (s *Store) writeChanges(ctx context.Context, tx *sql.Tx, prev, r *runbook.Run) error {
	t := s.d.Time.Encode
	for i, p := range r.Phases {
		o := prev.Phases[i]
		if p.Status != o.Status || p.Auto != o.Auto || !p.StartedAt.Equal(o.StartedAt) || !p.EndedAt.Equal(o.EndedAt) || p.Note != o.Note {
			if _, err := tx.ExecContext(ctx, `UPDATE phases SET status = ?, auto = ?, started_at = ?, ended_at = ?, note = ?
				WHERE run_id = ? AND name = ?`, string(p.Status), p.Auto, t(p.StartedAt), t(p.EndedAt), p.Note, r.ID, string(p.Name)); err != nil {
				return fmt.Errorf("phase %s: %w", p.Name, err)
			}
		}
		for j, st := range p.Steps {
			if sameStep(st, o.Steps[j]) {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE steps SET kind = ?, tier = ?, role = ?, target = ?, label = ?, status = ?,
				attempts = ?, started_at = ?, ended_at = ?, error = ?, evidence = ?, skip_reason = ? WHERE run_id = ? AND id = ?`,
				string(st.Kind), st.Tier, string(st.Role), st.Target, st.Label, string(st.Status), st.Attempts, t(st.StartedAt),
				t(st.EndedAt), st.Error, st.Evidence, st.SkipReason, r.ID, st.ID); err != nil {
				return fmt.Errorf("step %s: %w", st.ID, err)
			}
		}
	}
	return nil
}

func sameStep(a, b *runbook.Step) bool {
	return a.Kind == b.Kind && a.Tier == b.Tier && a.Role == b.Role && a.Target == b.Target && a.Label == b.Label &&
		a.Status == b.Status && a.Attempts == b.Attempts && a.StartedAt.Equal(b.StartedAt) && a.EndedAt.Equal(b.EndedAt) &&
		a.Error == b.Error && a.Evidence == b.Evidence && a.SkipReason == b.SkipReason
}
