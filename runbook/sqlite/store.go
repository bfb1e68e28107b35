// Package sqlite is the runbook's durable store in an embedded SQLite file,
// through modernc.org/sqlite (pure Go, so the binary stays static). The
// file runs in WAL mode with synchronous=FULL, a busy timeout and foreign
// keys; its schema is migrated when it is opened. Every write is one
// IMMEDIATE transaction, so a run, its phases, its steps, its approval and
// its audit lines are written together or not at all, and a process killed
// at any moment leaves a consistent file.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ runbook.Store = (*Store)(nil)

// Store is a runbook.Store in a SQLite file.
type Store struct {
	db   *sql.DB
	path string

	// written holds, per open run, the run as this Store last wrote it.
	// When an update's Prev matches it, the stored rows are exactly that
	// run (the version compare-and-set guarantees no one else wrote in
	// between), so only the phases and steps that changed are written:
	// an engine records every step start and finish, and rewriting a
	// 90-step run each time would dominate a 32-leaf tier.
	mu      sync.Mutex
	written map[string]*runbook.Run
}

// Open opens (creating if needed) the store at path and migrates its
// schema. Several processes may open the same file: writes wait for each
// other up to the busy timeout.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, runbook.Errorf(runbook.Invalid, "store path is empty")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, runbook.Errorf(runbook.Invalid, "store path %q: '?' and '#' are not allowed in the file name", path)
	}
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "1")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, written: map[string]*runbook.Run{}}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := s.Migrate(ctx, "runbook", runbookSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// DB returns the database, for packages that keep their own tables in the
// same file (after Migrate).
func (s *Store) DB() *sql.DB { return s.db }

// Path returns the file's path.
func (s *Store) Path() string { return s.path }

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// tsLayout is RFC 3339 with a fixed nine-digit fraction, so that stored
// times sort as text in time order (RFC3339Nano drops trailing zeros and
// would sort "…:00Z" after "…:00.5Z").
const tsLayout = "2006-01-02T15:04:05.000000000Z07:00"

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(tsLayout)
}

func parseTS(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q in store: %w", s, err)
	}
	return t, nil
}

func isConstraint(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// CreateRun stores a new open run unless the cluster has one.
func (s *Store) CreateRun(ctx context.Context, run *runbook.Run) (*runbook.Run, error) {
	if run == nil || run.ID == "" || run.Cluster == "" {
		return nil, runbook.Errorf(runbook.Invalid, "a run needs an ID and a cluster")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("create run: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := insertRun(ctx, tx, run); err != nil {
		if isConstraint(err) {
			open, gerr := s.openRun(ctx, tx, run.Cluster)
			if gerr != nil {
				return nil, gerr
			}
			if open != nil {
				return open, nil
			}
			return nil, runbook.Wrap(runbook.Conflict, err, "run %s exists", run.ID)
		}
		return nil, fmt.Errorf("create run %s: %w", run.ID, err)
	}
	if err := writeChildren(ctx, tx, run); err != nil {
		return nil, fmt.Errorf("create run %s: %w", run.ID, err)
	}
	for _, p := range run.Phases {
		if p.Approval != nil {
			if err := insertApproval(ctx, tx, run, p); err != nil {
				return nil, fmt.Errorf("create run %s: %w", run.ID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("create run %s: commit: %w", run.ID, err)
	}
	s.remember(run)
	return nil, nil
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

func runColumns(r *runbook.Run) ([]any, error) {
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
	return []any{r.Cluster, r.StartedBy, ts(r.StartedAt), r.Window, ts(r.WindowEnds), string(r.Status), r.Version,
		string(r.Current), pre, post, r.DetectionOriginal, r.DetectionChanged, r.Recovering,
		ts(r.DownSince), ts(r.UpAt), ts(r.EndedAt), r.Note, string(settings)}, nil
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

func insertRun(ctx context.Context, tx *sql.Tx, r *runbook.Run) error {
	cols, err := runColumns(r)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO runs (id, cluster, started_by, started_at, window_name, window_ends, status, version,
		current_phase, preflight, postcheck, detection_original, detection_changed, recovering, down_since, up_at, ended_at, note, settings)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, append([]any{r.ID}, cols...)...)
	return err
}

// writeChildren replaces the run's phases and steps.
func writeChildren(ctx context.Context, tx *sql.Tx, r *runbook.Run) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM steps WHERE run_id = ?`, r.ID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM phases WHERE run_id = ?`, r.ID); err != nil {
		return err
	}
	phase, err := tx.PrepareContext(ctx, `INSERT INTO phases (run_id, name, ord, status, auto, started_at, ended_at, note)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer phase.Close()
	step, err := tx.PrepareContext(ctx, `INSERT INTO steps (run_id, id, ord, phase, kind, tier, role, target, label, status,
		attempts, started_at, ended_at, error, evidence, skip_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer step.Close()
	ord := 0
	for i, p := range r.Phases {
		if _, err := phase.ExecContext(ctx, r.ID, string(p.Name), i, string(p.Status), p.Auto, ts(p.StartedAt), ts(p.EndedAt), p.Note); err != nil {
			return fmt.Errorf("phase %s: %w", p.Name, err)
		}
		for _, st := range p.Steps {
			if _, err := step.ExecContext(ctx, r.ID, st.ID, ord, string(p.Name), string(st.Kind), st.Tier, string(st.Role), st.Target,
				st.Label, string(st.Status), st.Attempts, ts(st.StartedAt), ts(st.EndedAt), st.Error, st.Evidence, st.SkipReason); err != nil {
				return fmt.Errorf("step %s: %w", st.ID, err)
			}
			ord++
		}
	}
	return nil
}

func insertApproval(ctx context.Context, tx *sql.Tx, r *runbook.Run, p *runbook.Phase) error {
	a := p.Approval
	_, err := tx.ExecContext(ctx, `INSERT INTO approvals (run_id, phase, version, approved_by, approved_at, act, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, r.ID, string(p.Name), r.Version, a.By, ts(a.At), string(a.Action), a.Reason)
	return err
}

// UpdateRun replaces the run if its stored version is still u.Prev.
func (s *Store) UpdateRun(ctx context.Context, u runbook.Update) error {
	r := u.Run
	if r == nil {
		return runbook.Errorf(runbook.Invalid, "no run to update")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.ID, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	var version int64
	var status, cluster string
	err = tx.QueryRowContext(ctx, `SELECT version, status, cluster FROM runs WHERE id = ?`, r.ID).Scan(&version, &status, &cluster)
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
	cols, err := runColumns(r)
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE runs SET cluster = ?, started_by = ?, started_at = ?, window_name = ?, window_ends = ?,
		status = ?, version = ?, current_phase = ?, preflight = ?, postcheck = ?, detection_original = ?, detection_changed = ?,
		recovering = ?, down_since = ?, up_at = ?, ended_at = ?, note = ?, settings = ? WHERE id = ? AND version = ?`,
		append(cols, r.ID, u.Prev)...); err != nil {
		if isConstraint(err) {
			return runbook.Wrap(runbook.Conflict, err, "run %s: the cluster has another open run", r.ID)
		}
		return fmt.Errorf("update run %s: %w", r.ID, err)
	}
	if u.Approval != "" {
		p := r.Phase(u.Approval)
		if p == nil || p.Approval == nil {
			return runbook.Errorf(runbook.Invalid, "update approves %s but the run has no approval for it", u.Approval)
		}
		if err := insertApproval(ctx, tx, r, p); err != nil {
			if isConstraint(err) {
				return runbook.Wrap(runbook.Conflict, err, "%s of run %s was already approved", u.Approval, r.ID)
			}
			return fmt.Errorf("update run %s: approval: %w", r.ID, err)
		}
	}
	if prev := s.lastWritten(r.ID, u.Prev); prev != nil && samePlan(prev, r) {
		err = writeChanges(ctx, tx, prev, r)
	} else {
		err = writeChildren(ctx, tx, r)
	}
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.ID, err)
	}
	for _, a := range u.Audit {
		if err := appendAudit(ctx, tx, a); err != nil {
			return fmt.Errorf("update run %s: %w", r.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update run %s: commit: %w", r.ID, err)
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
func writeChanges(ctx context.Context, tx *sql.Tx, prev, r *runbook.Run) error {
	for i, p := range r.Phases {
		o := prev.Phases[i]
		if p.Status != o.Status || p.Auto != o.Auto || !p.StartedAt.Equal(o.StartedAt) || !p.EndedAt.Equal(o.EndedAt) || p.Note != o.Note {
			if _, err := tx.ExecContext(ctx, `UPDATE phases SET status = ?, auto = ?, started_at = ?, ended_at = ?, note = ?
				WHERE run_id = ? AND name = ?`, string(p.Status), p.Auto, ts(p.StartedAt), ts(p.EndedAt), p.Note, r.ID, string(p.Name)); err != nil {
				return fmt.Errorf("phase %s: %w", p.Name, err)
			}
		}
		for j, st := range p.Steps {
			if sameStep(st, o.Steps[j]) {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE steps SET kind = ?, tier = ?, role = ?, target = ?, label = ?, status = ?,
				attempts = ?, started_at = ?, ended_at = ?, error = ?, evidence = ?, skip_reason = ? WHERE run_id = ? AND id = ?`,
				string(st.Kind), st.Tier, string(st.Role), st.Target, st.Label, string(st.Status), st.Attempts, ts(st.StartedAt),
				ts(st.EndedAt), st.Error, st.Evidence, st.SkipReason, r.ID, st.ID); err != nil {
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

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readTx runs fn in a read-only transaction: one consistent view across the
// tables of a run.
func (s *Store) readTx(ctx context.Context, fn func(q queryer) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	return fn(tx)
}

// GetRun returns the run.
func (s *Store) GetRun(ctx context.Context, id string) (*runbook.Run, error) {
	var run *runbook.Run
	err := s.readTx(ctx, func(q queryer) error {
		runs, err := s.loadRuns(ctx, q, `WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			return runbook.Errorf(runbook.Invalid, "no run %q", id)
		}
		run = runs[0]
		return nil
	})
	if err != nil {
		return nil, err
	}
	return run, nil
}

// OpenRun returns the cluster's open run or nil.
func (s *Store) OpenRun(ctx context.Context, cluster string) (*runbook.Run, error) {
	var run *runbook.Run
	err := s.readTx(ctx, func(q queryer) error {
		var err error
		run, err = s.openRun(ctx, q, cluster)
		return err
	})
	return run, err
}

func (s *Store) openRun(ctx context.Context, q queryer, cluster string) (*runbook.Run, error) {
	runs, err := s.loadRuns(ctx, q, `WHERE cluster = ? AND status = 'active'`, cluster)
	if err != nil || len(runs) == 0 {
		return nil, err
	}
	return runs[0], nil
}

// OpenRuns returns every open run, oldest first.
func (s *Store) OpenRuns(ctx context.Context) ([]*runbook.Run, error) {
	var runs []*runbook.Run
	err := s.readTx(ctx, func(q queryer) error {
		var err error
		runs, err = s.loadRuns(ctx, q, `WHERE status = 'active' ORDER BY started_at, rowid`)
		return err
	})
	return runs, err
}

// History returns runs newest first.
func (s *Store) History(ctx context.Context, cluster string, limit int) ([]*runbook.Run, error) {
	if limit < 0 {
		return nil, runbook.Errorf(runbook.Invalid, "history limit %d is negative", limit)
	}
	lim := int64(limit)
	if lim == 0 {
		lim = -1 // SQLite: no limit
	}
	var runs []*runbook.Run
	err := s.readTx(ctx, func(q queryer) error {
		var err error
		runs, err = s.loadRuns(ctx, q, `WHERE (? = '' OR cluster = ?) ORDER BY started_at DESC, rowid DESC LIMIT ?`, cluster, cluster, lim)
		return err
	})
	return runs, err
}

func (s *Store) loadRuns(ctx context.Context, q queryer, where string, args ...any) ([]*runbook.Run, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, cluster, started_by, started_at, window_name, window_ends, status, version,
		current_phase, preflight, postcheck, detection_original, detection_changed, recovering, down_since, up_at, ended_at, note, settings
		FROM runs `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("load runs: %w", err)
	}
	var runs []*runbook.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		runs = append(runs, r)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("load runs: %w", err)
	}
	for _, r := range runs {
		if err := loadChildren(ctx, q, r); err != nil {
			return nil, fmt.Errorf("load run %s: %w", r.ID, err)
		}
	}
	return runs, nil
}

func scanRun(rows *sql.Rows) (*runbook.Run, error) {
	var r runbook.Run
	var startedAt, windowEnds, status, current, downSince, upAt, endedAt, settings string
	var pre, post sql.NullString
	if err := rows.Scan(&r.ID, &r.Cluster, &r.StartedBy, &startedAt, &r.Window, &windowEnds, &status, &r.Version, &current,
		&pre, &post, &r.DetectionOriginal, &r.DetectionChanged, &r.Recovering, &downSince, &upAt, &endedAt, &r.Note, &settings); err != nil {
		return nil, fmt.Errorf("scan run: %w", err)
	}
	r.Status, r.Current = runbook.RunStatus(status), runbook.PhaseName(current)
	var err error
	for _, f := range []struct {
		s string
		t *time.Time
	}{{startedAt, &r.StartedAt}, {windowEnds, &r.WindowEnds}, {downSince, &r.DownSince}, {upAt, &r.UpAt}, {endedAt, &r.EndedAt}} {
		if *f.t, err = parseTS(f.s); err != nil {
			return nil, fmt.Errorf("run %s: %w", r.ID, err)
		}
	}
	for _, f := range []struct {
		s   sql.NullString
		dst **runbook.Report
	}{{pre, &r.Preflight}, {post, &r.PostCheck}} {
		if !f.s.Valid {
			continue
		}
		var rep runbook.Report
		if err := json.Unmarshal([]byte(f.s.String), &rep); err != nil {
			return nil, fmt.Errorf("run %s: decode report: %w", r.ID, err)
		}
		*f.dst = &rep
	}
	if err := json.Unmarshal([]byte(settings), &r.Settings); err != nil {
		return nil, fmt.Errorf("run %s: decode settings: %w", r.ID, err)
	}
	return &r, nil
}

func loadChildren(ctx context.Context, q queryer, r *runbook.Run) error {
	rows, err := q.QueryContext(ctx, `SELECT name, status, auto, started_at, ended_at, note FROM phases WHERE run_id = ? ORDER BY ord`, r.ID)
	if err != nil {
		return err
	}
	byName := map[runbook.PhaseName]*runbook.Phase{}
	for rows.Next() {
		var p runbook.Phase
		var name, status, started, ended string
		if err := rows.Scan(&name, &status, &p.Auto, &started, &ended, &p.Note); err != nil {
			rows.Close()
			return err
		}
		p.Name, p.Status = runbook.PhaseName(name), runbook.PhaseStatus(status)
		if p.StartedAt, err = parseTS(started); err == nil {
			p.EndedAt, err = parseTS(ended)
		}
		if err != nil {
			rows.Close()
			return err
		}
		r.Phases = append(r.Phases, &p)
		byName[p.Name] = &p
	}
	if err := rows.Close(); err != nil {
		return err
	}
	rows, err = q.QueryContext(ctx, `SELECT id, phase, kind, tier, role, target, label, status, attempts, started_at, ended_at,
		error, evidence, skip_reason FROM steps WHERE run_id = ? ORDER BY ord`, r.ID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var st runbook.Step
		var phase, kind, role, status, started, ended string
		if err := rows.Scan(&st.ID, &phase, &kind, &st.Tier, &role, &st.Target, &st.Label, &status, &st.Attempts,
			&started, &ended, &st.Error, &st.Evidence, &st.SkipReason); err != nil {
			rows.Close()
			return err
		}
		st.Phase, st.Kind, st.Role, st.Status = runbook.PhaseName(phase), runbook.StepKind(kind), runbook.Role(role), runbook.StepStatus(status)
		if st.StartedAt, err = parseTS(started); err == nil {
			st.EndedAt, err = parseTS(ended)
		}
		if err != nil {
			rows.Close()
			return err
		}
		if p := byName[st.Phase]; p != nil {
			p.Steps = append(p.Steps, &st)
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	rows, err = q.QueryContext(ctx, `SELECT phase, approved_by, approved_at, act, reason FROM approvals WHERE run_id = ?`, r.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a runbook.Approval
		var phase, at, act string
		if err := rows.Scan(&phase, &a.By, &at, &act, &a.Reason); err != nil {
			return err
		}
		a.Action = runbook.Action(act)
		if a.At, err = parseTS(at); err != nil {
			return err
		}
		if p := byName[runbook.PhaseName(phase)]; p != nil {
			p.Approval = &a
		}
	}
	return rows.Err()
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func appendAudit(ctx context.Context, x execer, a runbook.Audit) error {
	_, err := x.ExecContext(ctx, `INSERT INTO audit (at, run_id, cluster, phase, who, what, result) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		ts(a.At), a.RunID, a.Cluster, string(a.Phase), a.Who, a.What, a.Result)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// AppendAudit appends one audit line.
func (s *Store) AppendAudit(ctx context.Context, a runbook.Audit) error {
	return appendAudit(ctx, s.db, a)
}

// Audit returns the run's audit lines ("" = all) in order.
func (s *Store) Audit(ctx context.Context, runID string) ([]runbook.Audit, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, run_id, cluster, phase, who, what, result FROM audit
		WHERE (? = '' OR run_id = ?) ORDER BY seq`, runID, runID)
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	defer rows.Close()
	var out []runbook.Audit
	for rows.Next() {
		var a runbook.Audit
		var at, phase string
		if err := rows.Scan(&at, &a.RunID, &a.Cluster, &phase, &a.Who, &a.What, &a.Result); err != nil {
			return nil, fmt.Errorf("read audit: %w", err)
		}
		a.Phase = runbook.PhaseName(phase)
		if a.At, err = parseTS(at); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AppendOutput appends lines of output in one transaction.
func (s *Store) AppendOutput(ctx context.Context, chunks ...runbook.Chunk) error {
	if len(chunks) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append output: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	ins, err := tx.PrepareContext(ctx, `INSERT INTO output (run_id, step_id, at, stream, line) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("append output: %w", err)
	}
	defer ins.Close()
	for _, c := range chunks {
		if _, err := ins.ExecContext(ctx, c.RunID, c.StepID, ts(c.At), c.Stream, c.Line); err != nil {
			if isConstraint(err) {
				return runbook.Wrap(runbook.Invalid, err, "output for unknown run %q", c.RunID)
			}
			return fmt.Errorf("append output: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append output: commit: %w", err)
	}
	return nil
}

// Output returns the step's output ("" = the whole run) in order.
func (s *Store) Output(ctx context.Context, runID, stepID string) ([]runbook.Chunk, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT step_id, at, stream, line FROM output
		WHERE run_id = ? AND (? = '' OR step_id = ?) ORDER BY seq`, runID, stepID, stepID)
	if err != nil {
		return nil, fmt.Errorf("read output: %w", err)
	}
	defer rows.Close()
	var out []runbook.Chunk
	for rows.Next() {
		c := runbook.Chunk{RunID: runID}
		var at string
		if err := rows.Scan(&c.StepID, &at, &c.Stream, &c.Line); err != nil {
			return nil, fmt.Errorf("read output: %w", err)
		}
		if c.At, err = parseTS(at); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
