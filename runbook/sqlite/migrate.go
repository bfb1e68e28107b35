package sqlite

import (
	"context"
	"fmt"

	"github.com/sdbmaint/sdbmaint/runbook/internal/sqlstore"
)

// runbookSchema is the runbook's schema, one entry per version: entry i
// takes the database from version i to i+1. Never edit an entry that has
// shipped; append a new one.
var runbookSchema = []string{
	// 1: runs, phases, steps, approvals, the audit log and step output.
	`
CREATE TABLE runs (
	id                 TEXT PRIMARY KEY,
	cluster            TEXT NOT NULL,
	started_by         TEXT NOT NULL,
	started_at         TEXT NOT NULL,
	window_name        TEXT NOT NULL DEFAULT '',
	window_ends        TEXT NOT NULL DEFAULT '',
	status             TEXT NOT NULL,
	version            INTEGER NOT NULL,
	current_phase      TEXT NOT NULL DEFAULT '',
	preflight          TEXT,
	postcheck          TEXT,
	detection_original INTEGER NOT NULL DEFAULT 0,
	detection_changed  INTEGER NOT NULL DEFAULT 0,
	recovering         INTEGER NOT NULL DEFAULT 0,
	down_since         TEXT NOT NULL DEFAULT '',
	up_at              TEXT NOT NULL DEFAULT '',
	ended_at           TEXT NOT NULL DEFAULT '',
	note               TEXT NOT NULL DEFAULT '',
	settings           TEXT NOT NULL DEFAULT '{}'
);
-- One open run per cluster, enforced here so that two processes sharing
-- the file cannot both open one.
CREATE UNIQUE INDEX runs_one_open_per_cluster ON runs(cluster) WHERE status = 'active';
CREATE INDEX runs_by_start ON runs(started_at);

CREATE TABLE phases (
	run_id     TEXT NOT NULL REFERENCES runs(id),
	name       TEXT NOT NULL,
	ord        INTEGER NOT NULL,
	status     TEXT NOT NULL,
	auto       INTEGER NOT NULL DEFAULT 0,
	started_at TEXT NOT NULL DEFAULT '',
	ended_at   TEXT NOT NULL DEFAULT '',
	note       TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (run_id, name)
);

CREATE TABLE steps (
	run_id      TEXT NOT NULL,
	id          TEXT NOT NULL,
	ord         INTEGER NOT NULL,
	phase       TEXT NOT NULL,
	kind        TEXT NOT NULL,
	tier        INTEGER NOT NULL,
	role        TEXT NOT NULL DEFAULT '',
	target      TEXT NOT NULL DEFAULT '',
	label       TEXT NOT NULL DEFAULT '',
	status      TEXT NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	started_at  TEXT NOT NULL DEFAULT '',
	ended_at    TEXT NOT NULL DEFAULT '',
	error       TEXT NOT NULL DEFAULT '',
	evidence    TEXT NOT NULL DEFAULT '',
	skip_reason TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (run_id, id),
	FOREIGN KEY (run_id, phase) REFERENCES phases(run_id, name)
);

-- One approval per gate: the primary key is the compare-and-set that makes
-- a second click, a stale card or a racing click change nothing.
CREATE TABLE approvals (
	run_id      TEXT NOT NULL REFERENCES runs(id),
	phase       TEXT NOT NULL,
	version     INTEGER NOT NULL,
	approved_by TEXT NOT NULL,
	approved_at TEXT NOT NULL,
	act         TEXT NOT NULL,
	reason      TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (run_id, phase)
);

CREATE TABLE audit (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	at      TEXT NOT NULL,
	run_id  TEXT NOT NULL DEFAULT '',
	cluster TEXT NOT NULL DEFAULT '',
	phase   TEXT NOT NULL DEFAULT '',
	who     TEXT NOT NULL,
	what    TEXT NOT NULL,
	result  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_run ON audit(run_id, seq);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE output (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id  TEXT NOT NULL REFERENCES runs(id),
	step_id TEXT NOT NULL,
	at      TEXT NOT NULL,
	stream  TEXT NOT NULL,
	line    TEXT NOT NULL
);
CREATE INDEX output_by_step ON output(run_id, step_id, seq);
`,
}

// Migrate brings component's tables to the latest of steps: steps[i] takes
// them from version i to i+1, and schema_version remembers where each
// component stands. The runbook's own tables are component "runbook";
// another package that keeps its records in the same file (the window
// scheduler) calls Migrate with its own name and steps after Open. All the
// steps run in one transaction, which holds the file's write lock, so
// processes that open the file at once take turns and a failed step leaves
// the component where it was. A database newer than steps is an error: an
// older sdbmaint must not write to it.
func (s *Store) Migrate(ctx context.Context, component string, steps []string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s: begin: %w", component, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := sqlstore.Migrate(ctx, tx, dialect, component, steps); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %s: commit: %w", component, err)
	}
	return nil
}

// SchemaVersion returns the schema version of component (0 if it has none).
func (s *Store) SchemaVersion(ctx context.Context, component string) (int, error) {
	return sqlstore.SchemaVersion(ctx, s.db, component)
}
