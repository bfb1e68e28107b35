package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Conn is what Migrate runs its statements on: a transaction (SQLite, whose
// DDL is transactional) or one connection holding a lock (MySQL, which
// commits DDL as it goes).
type Conn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Migrate brings component's tables to the latest of steps through c:
// steps[i] takes them from version i to i+1, and schema_version remembers
// where each component stands. Each finished step is recorded at once, so
// that where DDL cannot be rolled back a crash does not make a later start
// repeat it. A database newer than steps is an error: an older sdbmaint
// must not write to it. The caller makes sure that no one else migrates
// at the same time (a write transaction or a lock) and commits.
func Migrate(ctx context.Context, c Conn, d Dialect, component string, steps []string) error {
	if _, err := c.ExecContext(ctx, d.SchemaVersionTable); err != nil {
		return fmt.Errorf("migrate %s: schema_version: %w", component, err)
	}
	var have int
	err := c.QueryRowContext(ctx, `SELECT version FROM schema_version WHERE component = ?`, component).Scan(&have)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("migrate %s: read version: %w", component, err)
	}
	if have > len(steps) {
		return fmt.Errorf("migrate %s: the database is at schema version %d but this sdbmaint knows only %d; use a newer sdbmaint", component, have, len(steps))
	}
	record := `INSERT INTO schema_version (component, version) VALUES (?, ?) ` + d.OnConflict("component") + ` version = ` + d.Excluded("version")
	for v := have; v < len(steps); v++ {
		stmts := []string{steps[v]}
		if d.SplitSteps {
			stmts = splitStatements(steps[v])
		}
		for _, stmt := range stmts {
			if _, err := c.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate %s to version %d: %w", component, v+1, err)
			}
		}
		if _, err := c.ExecContext(ctx, record, component, v+1); err != nil {
			return fmt.Errorf("migrate %s: write version %d: %w", component, v+1, err)
		}
	}
	return nil
}

// SchemaVersion returns the schema version of component (0 if it has none).
func SchemaVersion(ctx context.Context, db *sql.DB, component string) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, `SELECT version FROM schema_version WHERE component = ?`, component).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// splitStatements cuts a migration step into statements at lines that end
// with ";". Comment-only and blank pieces are dropped.
func splitStatements(step string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		stmt := strings.TrimSpace(cur.String())
		cur.Reset()
		if stmt != "" && !onlyComments(stmt) {
			out = append(out, stmt)
		}
	}
	for _, line := range strings.Split(step, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasSuffix(trimmed, ";") && !strings.HasPrefix(trimmed, "--") {
			cur.WriteString(strings.TrimSuffix(trimmed, ";"))
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return out
}

func onlyComments(stmt string) bool {
	for _, line := range strings.Split(stmt, "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "--") {
			return false
		}
	}
	return true
}
