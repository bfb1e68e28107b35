package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/sdbmaint/sdbmaint/runbook"
)

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// appendAudit only ever inserts: the audit log is append-only, and the
// schema makes the database refuse changes where it can.
func (s *Store) appendAudit(ctx context.Context, x execer, a runbook.Audit) error {
	_, err := x.ExecContext(ctx, `INSERT INTO audit (at, run_id, cluster, phase, who, what, result) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		s.d.Time.Encode(a.At), a.RunID, a.Cluster, string(a.Phase), a.Who, a.What, a.Result)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// AppendAudit appends one audit line.
func (s *Store) AppendAudit(ctx context.Context, a runbook.Audit) error {
	return s.appendAudit(ctx, s.db, a)
}

// Audit returns the run's audit lines ("" = all) in the order written.
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
		if err := rows.Scan(s.at(&a.At), &a.RunID, &a.Cluster, &phase, &a.Who, &a.What, &a.Result); err != nil {
			return nil, fmt.Errorf("read audit: %w", err)
		}
		a.Phase = runbook.PhaseName(phase)
		out = append(out, a)
	}
	return out, rows.Err()
}

// AppendOutput appends lines of output in one transaction, all or none. A
// line for a run that does not exist is Invalid and stores nothing.
func (s *Store) AppendOutput(ctx context.Context, chunks ...runbook.Chunk) error {
	if len(chunks) == 0 {
		return nil
	}
	return s.write(ctx, "append output", func(tx *sql.Tx) error {
		args := make([]any, 0, 5*len(chunks))
		for _, c := range chunks {
			args = append(args, c.RunID, c.StepID, s.d.Time.Encode(c.At), c.Stream, c.Line)
		}
		err := insertRows(ctx, tx, `INSERT INTO output (run_id, step_id, at, stream, line) VALUES `, 5, args)
		switch {
		case err == nil:
			return nil
		case s.d.IsMissingParent(err):
			return runbook.Wrap(runbook.Invalid, err, "output for unknown run %q", unknownRun(ctx, tx, chunks))
		}
		return fmt.Errorf("append output: %w", err)
	})
}

// unknownRun names the first run of chunks that is not stored, for the
// message of a refused batch.
func unknownRun(ctx context.Context, tx *sql.Tx, chunks []runbook.Chunk) string {
	seen := map[string]bool{}
	for _, c := range chunks {
		if seen[c.RunID] {
			continue
		}
		seen[c.RunID] = true
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE id = ?`, c.RunID).Scan(&n); err != nil {
			break // the statement's error is what matters; name the first run
		}
		if n == 0 {
			return c.RunID
		}
	}
	return chunks[0].RunID
}

// Output returns the step's lines ("" = every step of the run) in the order
// written.
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
		if err := rows.Scan(&c.StepID, s.at(&c.At), &c.Stream, &c.Line); err != nil {
			return nil, fmt.Errorf("read output: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
