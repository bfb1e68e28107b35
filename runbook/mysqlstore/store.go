// Package mysqlstore is the runbook's durable store in a shared
// MySQL-compatible database (MySQL 8, MariaDB 10.3 and later, or any
// server that speaks their dialect; never the SingleStore cluster under
// maintenance), through go-sql-driver/mysql. It is the store when several
// bot replicas run: the database itself enforces one open run per cluster
// and one approval per gate, and every update is a compare-and-set on the
// run's version inside one InnoDB transaction, so replicas racing on the
// same click or the same start cannot both win. The schema is migrated when
// the store is opened.
package mysqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sdbmaint/sdbmaint/runbook"
)

var _ runbook.Store = (*Store)(nil)

// Store is a runbook.Store in a MySQL-compatible database.
type Store struct {
	db     *sql.DB
	addr   string // for messages: never the DSN, which holds the password
	dbName string

	// written holds, per open run, the run as this Store last wrote it.
	// When an update's Prev matches it, the stored rows are exactly that
	// run (the version compare-and-set guarantees that no replica wrote
	// in between), so only the phases and steps that changed are written.
	mu      sync.Mutex
	written map[string]*runbook.Run
}

// Options tune Open; the zero value is right for most deployments.
type Options struct {
	// MaxConns bounds the connection pool (default 16).
	MaxConns int
}

// Open connects to the database a go-sql-driver/mysql DSN names
// ("user:password@tcp(host:3306)/sdbmaint"), checks that it answers, and
// migrates the schema. The database must exist; its tables are created.
// Errors never repeat the DSN, which holds the password.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The driver's message says what is wrong without echoing the DSN.
		return nil, runbook.Wrap(runbook.Invalid, err, "store mysql_dsn: %v", err)
	}
	if cfg.DBName == "" {
		return nil, runbook.Errorf(runbook.Invalid, "store mysql_dsn names no database: add /DBNAME after the address")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	// Strict, so that a value too long for its column is an error rather
	// than silently cut; no engine substitution, so that the tables are
	// InnoDB, whose transactions and foreign keys the store relies on.
	cfg.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
	cfg.MultiStatements = false
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, runbook.Wrap(runbook.Invalid, err, "store mysql_dsn: %v", err)
	}
	db := sql.OpenDB(conn)
	if opts.MaxConns <= 0 {
		opts.MaxConns = 16
	}
	db.SetMaxOpenConns(opts.MaxConns)
	db.SetMaxIdleConns(opts.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db, addr: cfg.Addr, dbName: cfg.DBName, written: map[string]*runbook.Run{}}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, runbook.Wrap(runbook.Unavailable, err, "open store: database %s on %s as %s: %v", cfg.DBName, cfg.Addr, cfg.User, err)
	}
	if err := s.Migrate(ctx, "runbook", runbookSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: database %s on %s: %w", cfg.DBName, cfg.Addr, err)
	}
	return s, nil
}

// DB returns the database, for packages that keep their own tables in it
// (after Migrate).
func (s *Store) DB() *sql.DB { return s.db }

// Ping checks that the database answers, for readiness.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// Server error numbers the store tells apart.
const (
	erDupEntry        = 1062
	erNoReferencedRow = 1452
	erLockWaitTimeout = 1205
	erLockDeadlock    = 1213
)

func errNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// ns stores a time as Unix nanoseconds; the zero time is 0.
func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// maxAttempts bounds how often a transaction that InnoDB chose as a
// deadlock victim is run again.
const maxAttempts = 5

// write runs fn in a transaction and commits it, running it again when
// InnoDB reports a deadlock or a lock wait timeout (the transaction was
// rolled back whole, so running it again is safe).
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryWrite(ctx, fn)
		switch n := errNumber(err); {
		case err == nil:
			return nil
		case (n == erLockDeadlock || n == erLockWaitTimeout) && attempt < maxAttempts && ctx.Err() == nil:
			continue
		default:
			return err
		}
	}
}

func (s *Store) tryWrite(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// errRetryCreate says that CreateRun lost a race to a run that has already
// ended: the cluster is free again, so the create is tried once more.
var errRetryCreate = errors.New("the open run that refused this one has ended")

// CreateRun stores a new open run unless the cluster has one, which it
// returns instead.
func (s *Store) CreateRun(ctx context.Context, run *runbook.Run) (*runbook.Run, error) {
	if run == nil || run.ID == "" || run.Cluster == "" {
		return nil, runbook.Errorf(runbook.Invalid, "a run needs an ID and a cluster")
	}
	for attempt := 1; ; attempt++ {
		var existing *runbook.Run
		err := s.write(ctx, func(tx *sql.Tx) error {
			existing = nil
			if err := insertRun(ctx, tx, run); err != nil {
				if errNumber(err) != erDupEntry {
					return fmt.Errorf("create run %s: %w", run.ID, err)
				}
				open, gerr := s.openRun(ctx, tx, run.Cluster)
				switch {
				case gerr != nil:
					return gerr
				case open != nil:
					existing = open
					return nil
				case strings.Contains(err.Error(), "runs_one_open_per_cluster"):
					return errRetryCreate
				}
				return runbook.Wrap(runbook.Conflict, err, "run %s exists", run.ID)
			}
			if err := writeChildren(ctx, tx, run); err != nil {
				return fmt.Errorf("create run %s: %w", run.ID, err)
			}
			for _, p := range run.Phases {
				if p.Approval != nil {
					if err := insertApproval(ctx, tx, run, p); err != nil {
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
	return []any{r.Cluster, r.StartedBy, ns(r.StartedAt), r.Window, ns(r.WindowEnds), string(r.Status), r.Version,
		string(r.Current), pre, post, r.DetectionOriginal, r.DetectionChanged, r.Recovering,
		ns(r.DownSince), ns(r.UpAt), ns(r.EndedAt), r.Note, string(settings)}, nil
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
	// Approvals are kept: they refer to the run, not to phase rows.
	if _, err := tx.ExecContext(ctx, `DELETE FROM phases WHERE run_id = ?`, r.ID); err != nil {
		return err
	}
	var phaseRows, stepRows []any
	ord := 0
	for i, p := range r.Phases {
		phaseRows = append(phaseRows, r.ID, string(p.Name), i, string(p.Status), p.Auto, ns(p.StartedAt), ns(p.EndedAt), p.Note)
		for _, st := range p.Steps {
			stepRows = append(stepRows, r.ID, st.ID, ord, string(p.Name), string(st.Kind), st.Tier, string(st.Role), st.Target,
				st.Label, string(st.Status), st.Attempts, ns(st.StartedAt), ns(st.EndedAt), st.Error, st.Evidence, st.SkipReason)
			ord++
		}
	}
	// One INSERT per table: a run has about a hundred rows, and a round
	// trip each would dominate every write.
	if err := insertRows(ctx, tx, `INSERT INTO phases (run_id, name, ord, status, auto, started_at, ended_at, note) VALUES `, 8, phaseRows); err != nil {
		return fmt.Errorf("phases: %w", err)
	}
	if err := insertRows(ctx, tx, `INSERT INTO steps (run_id, id, ord, phase, kind, tier, role, target, label, status,
		attempts, started_at, ended_at, error, evidence, skip_reason) VALUES `, 16, stepRows); err != nil {
		return fmt.Errorf("steps: %w", err)
	}
	return nil
}

// insertRows inserts len(args)/width rows with one statement.
func insertRows(ctx context.Context, tx *sql.Tx, head string, width int, args []any) error {
	if len(args) == 0 {
		return nil
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	n := len(args) / width
	_, err := tx.ExecContext(ctx, head+strings.TrimSuffix(strings.Repeat(row+", ", n), ", "), args...)
	return err
}

func insertApproval(ctx context.Context, tx *sql.Tx, r *runbook.Run, p *runbook.Phase) error {
	a := p.Approval
	_, err := tx.ExecContext(ctx, `INSERT INTO approvals (run_id, phase, version, approved_by, approved_at, act, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, r.ID, string(p.Name), r.Version, a.By, ns(a.At), string(a.Action), a.Reason)
	return err
}

// UpdateRun replaces the run if its stored version is still u.Prev. The
// run's row is locked first, so racing updates of one run take turns and
// all but the first find another version.
func (s *Store) UpdateRun(ctx context.Context, u runbook.Update) error {
	r := u.Run
	if r == nil {
		return runbook.Errorf(runbook.Invalid, "no run to update")
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var version int64
		var status, cluster string
		err := tx.QueryRowContext(ctx, `SELECT version, status, cluster FROM runs WHERE id = ? FOR UPDATE`, r.ID).Scan(&version, &status, &cluster)
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
			if errNumber(err) == erDupEntry {
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
				if errNumber(err) == erDupEntry {
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
func writeChanges(ctx context.Context, tx *sql.Tx, prev, r *runbook.Run) error {
	for i, p := range r.Phases {
		o := prev.Phases[i]
		if p.Status != o.Status || p.Auto != o.Auto || !p.StartedAt.Equal(o.StartedAt) || !p.EndedAt.Equal(o.EndedAt) || p.Note != o.Note {
			if _, err := tx.ExecContext(ctx, `UPDATE phases SET status = ?, auto = ?, started_at = ?, ended_at = ?, note = ?
				WHERE run_id = ? AND name = ?`, string(p.Status), p.Auto, ns(p.StartedAt), ns(p.EndedAt), p.Note, r.ID, string(p.Name)); err != nil {
				return fmt.Errorf("phase %s: %w", p.Name, err)
			}
		}
		for j, st := range p.Steps {
			if sameStep(st, o.Steps[j]) {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE steps SET kind = ?, tier = ?, role = ?, target = ?, label = ?, status = ?,
				attempts = ?, started_at = ?, ended_at = ?, error = ?, evidence = ?, skip_reason = ? WHERE run_id = ? AND id = ?`,
				string(st.Kind), st.Tier, string(st.Role), st.Target, st.Label, string(st.Status), st.Attempts, ns(st.StartedAt),
				ns(st.EndedAt), st.Error, st.Evidence, st.SkipReason, r.ID, st.ID); err != nil {
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

// readTx runs fn in a read-only transaction: one consistent snapshot
// across the tables of a run.
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
		runs, err := loadRuns(ctx, q, `WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			return runbook.Errorf(runbook.Invalid, "no run %q", id)
		}
		run = runs[0]
		return nil
	})
	return run, err
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
	runs, err := loadRuns(ctx, q, `WHERE open_cluster = ?`, cluster)
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
		runs, err = loadRuns(ctx, q, `WHERE open_cluster IS NOT NULL ORDER BY started_at, seq`)
		return err
	})
	return runs, err
}

// History returns runs newest first.
func (s *Store) History(ctx context.Context, cluster string, limit int) ([]*runbook.Run, error) {
	if limit < 0 {
		return nil, runbook.Errorf(runbook.Invalid, "history limit %d is negative", limit)
	}
	where, args := `WHERE cluster = ?`, []any{cluster}
	if cluster == "" {
		where, args = `WHERE TRUE`, nil
	}
	where += ` ORDER BY started_at DESC, seq DESC`
	if limit > 0 {
		where += ` LIMIT ?`
		args = append(args, limit)
	}
	var runs []*runbook.Run
	err := s.readTx(ctx, func(q queryer) error {
		var err error
		runs, err = loadRuns(ctx, q, where, args...)
		return err
	})
	return runs, err
}

func loadRuns(ctx context.Context, q queryer, where string, args ...any) ([]*runbook.Run, error) {
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
	var startedAt, windowEnds, downSince, upAt, endedAt int64
	var status, current, settings string
	var pre, post sql.NullString
	if err := rows.Scan(&r.ID, &r.Cluster, &r.StartedBy, &startedAt, &r.Window, &windowEnds, &status, &r.Version, &current,
		&pre, &post, &r.DetectionOriginal, &r.DetectionChanged, &r.Recovering, &downSince, &upAt, &endedAt, &r.Note, &settings); err != nil {
		return nil, fmt.Errorf("scan run: %w", err)
	}
	r.Status, r.Current = runbook.RunStatus(status), runbook.PhaseName(current)
	r.StartedAt, r.WindowEnds, r.DownSince, r.UpAt, r.EndedAt = fromNS(startedAt), fromNS(windowEnds), fromNS(downSince), fromNS(upAt), fromNS(endedAt)
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
		var name, status string
		var started, ended int64
		if err := rows.Scan(&name, &status, &p.Auto, &started, &ended, &p.Note); err != nil {
			rows.Close()
			return err
		}
		p.Name, p.Status = runbook.PhaseName(name), runbook.PhaseStatus(status)
		p.StartedAt, p.EndedAt = fromNS(started), fromNS(ended)
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
		var phase, kind, role, status string
		var started, ended int64
		if err := rows.Scan(&st.ID, &phase, &kind, &st.Tier, &role, &st.Target, &st.Label, &status, &st.Attempts,
			&started, &ended, &st.Error, &st.Evidence, &st.SkipReason); err != nil {
			rows.Close()
			return err
		}
		st.Phase, st.Kind, st.Role, st.Status = runbook.PhaseName(phase), runbook.StepKind(kind), runbook.Role(role), runbook.StepStatus(status)
		st.StartedAt, st.EndedAt = fromNS(started), fromNS(ended)
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
		var phase, act string
		var at int64
		if err := rows.Scan(&phase, &a.By, &at, &act, &a.Reason); err != nil {
			return err
		}
		a.Action, a.At = runbook.Action(act), fromNS(at)
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
		ns(a.At), a.RunID, a.Cluster, string(a.Phase), a.Who, a.What, a.Result)
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
	query, args := `SELECT at, run_id, cluster, phase, who, what, result FROM audit ORDER BY seq`, []any(nil)
	if runID != "" {
		query, args = `SELECT at, run_id, cluster, phase, who, what, result FROM audit WHERE run_id = ? ORDER BY seq`, []any{runID}
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	defer rows.Close()
	var out []runbook.Audit
	for rows.Next() {
		var a runbook.Audit
		var phase string
		var at int64
		if err := rows.Scan(&at, &a.RunID, &a.Cluster, &phase, &a.Who, &a.What, &a.Result); err != nil {
			return nil, fmt.Errorf("read audit: %w", err)
		}
		a.Phase, a.At = runbook.PhaseName(phase), fromNS(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// maxOutputRows bounds the rows of one INSERT of output, well under the
// server's max_allowed_packet for lines of ordinary length.
const maxOutputRows = 200

// AppendOutput appends lines of output in one transaction, all or none.
func (s *Store) AppendOutput(ctx context.Context, chunks ...runbook.Chunk) error {
	if len(chunks) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(chunks); start += maxOutputRows {
			batch := chunks[start:min(start+maxOutputRows, len(chunks))]
			args := make([]any, 0, 5*len(batch))
			for _, c := range batch {
				args = append(args, c.RunID, c.StepID, ns(c.At), c.Stream, c.Line)
			}
			if err := insertRows(ctx, tx, `INSERT INTO output (run_id, step_id, at, stream, line) VALUES `, 5, args); err != nil {
				return err
			}
		}
		return nil
	})
	if errNumber(err) == erNoReferencedRow {
		return runbook.Wrap(runbook.Invalid, err, "output for unknown run %q", chunks[0].RunID)
	}
	if err != nil {
		return fmt.Errorf("append output: %w", err)
	}
	return nil
}

// Output returns the step's output ("" = the whole run) in order.
func (s *Store) Output(ctx context.Context, runID, stepID string) ([]runbook.Chunk, error) {
	query, args := `SELECT step_id, at, stream, line FROM output WHERE run_id = ? ORDER BY seq`, []any{runID}
	if stepID != "" {
		query, args = `SELECT step_id, at, stream, line FROM output WHERE run_id = ? AND step_id = ? ORDER BY seq`, []any{runID, stepID}
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read output: %w", err)
	}
	defer rows.Close()
	var out []runbook.Chunk
	for rows.Next() {
		c := runbook.Chunk{RunID: runID}
		var at int64
		if err := rows.Scan(&c.StepID, &at, &c.Stream, &c.Line); err != nil {
			return nil, fmt.Errorf("read output: %w", err)
		}
		c.At = fromNS(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
