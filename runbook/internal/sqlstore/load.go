package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readTx runs fn in a read-only transaction: one consistent view across
// the tables of a run.
func (s *Store) readTx(ctx context.Context, fn func(q queryer) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	return fn(tx)
}

// GetRun returns the run; an unknown ID is Invalid.
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
	runs, err := s.loadRuns(ctx, q, s.q.openRun, cluster)
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
		runs, err = s.loadRuns(ctx, q, s.q.openRuns)
		return err
	})
	return runs, err
}

// History returns the cluster's runs ("" = all) newest first, at most limit
// (0 = all) of them.
func (s *Store) History(ctx context.Context, cluster string, limit int) ([]*runbook.Run, error) {
	if limit < 0 {
		return nil, runbook.Errorf(runbook.Invalid, "history limit %d is negative", limit)
	}
	where, args := `WHERE cluster = ?`, []any{cluster}
	if cluster == "" {
		where, args = ``, nil
	}
	where += s.q.historyOrder
	if limit > 0 {
		where += ` LIMIT ?`
		args = append(args, limit)
	}
	var runs []*runbook.Run
	err := s.readTx(ctx, func(q queryer) error {
		var err error
		runs, err = s.loadRuns(ctx, q, where, args...)
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
		r, err := s.scanRun(rows)
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
		if err := s.loadChildren(ctx, q, r); err != nil {
			return nil, fmt.Errorf("load run %s: %w", r.ID, err)
		}
	}
	return runs, nil
}

// at returns a scan destination that decodes a time column into t.
func (s *Store) at(t *time.Time) *timeDest {
	return &timeDest{t: t, decode: s.d.Time.Decode}
}

func (s *Store) scanRun(rows *sql.Rows) (*runbook.Run, error) {
	var r runbook.Run
	var status, current, settings string
	var pre, post sql.NullString
	if err := rows.Scan(&r.ID, &r.Cluster, &r.StartedBy, s.at(&r.StartedAt), &r.Window, s.at(&r.WindowEnds), &status, &r.Version,
		&current, &pre, &post, &r.DetectionOriginal, &r.DetectionChanged, &r.Recovering, s.at(&r.DownSince), s.at(&r.UpAt),
		s.at(&r.EndedAt), &r.Note, &settings); err != nil {
		return nil, fmt.Errorf("scan run: %w", err)
	}
	r.Status, r.Current = runbook.RunStatus(status), runbook.PhaseName(current)
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

func (s *Store) loadChildren(ctx context.Context, q queryer, r *runbook.Run) error {
	rows, err := q.QueryContext(ctx, `SELECT name, status, auto, started_at, ended_at, note FROM phases WHERE run_id = ? ORDER BY ord`, r.ID)
	if err != nil {
		return err
	}
	byName := map[runbook.PhaseName]*runbook.Phase{}
	for rows.Next() {
		var p runbook.Phase
		var name, status string
		if err := rows.Scan(&name, &status, &p.Auto, s.at(&p.StartedAt), s.at(&p.EndedAt), &p.Note); err != nil {
			rows.Close()
			return err
		}
		p.Name, p.Status = runbook.PhaseName(name), runbook.PhaseStatus(status)
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
		if err := rows.Scan(&st.ID, &phase, &kind, &st.Tier, &role, &st.Target, &st.Label, &status, &st.Attempts,
			s.at(&st.StartedAt), s.at(&st.EndedAt), &st.Error, &st.Evidence, &st.SkipReason); err != nil {
			rows.Close()
			return err
		}
		st.Phase, st.Kind, st.Role, st.Status = runbook.PhaseName(phase), runbook.StepKind(kind), runbook.Role(role), runbook.StepStatus(status)
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
		if err := rows.Scan(&phase, &a.By, s.at(&a.At), &act, &a.Reason); err != nil {
			return err
		}
		a.Action = runbook.Action(act)
		if p := byName[runbook.PhaseName(phase)]; p != nil {
			p.Approval = &a
		}
	}
	return rows.Err()
}
