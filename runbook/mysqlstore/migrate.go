package mysqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/sdbmaint/sdbmaint/runbook/internal/sqlstore"
)

// runbookSchema is the runbook's schema, one entry per version: entry i
// takes the database from version i to i+1. Never edit an entry that has
// shipped; append a new one. MySQL commits DDL as it goes, so every
// statement is written to be run again after a crash half-way through a
// step (CREATE TABLE IF NOT EXISTS, indexes inside the table).
//
// Identifiers and states are VARBINARY, compared byte for byte as SQLite
// compares them (a case-insensitive collation would make "Prod" and
// "prod" one cluster). Times are Unix nanoseconds (0 = unset): DATETIME
// keeps microseconds at best, and the runbook compares times exactly.
var runbookSchema = []string{
	// 1: runs, phases, steps, approvals, the audit log and step output.
	`
CREATE TABLE IF NOT EXISTS runs (
	id                 VARBINARY(64) NOT NULL,
	seq                BIGINT NOT NULL AUTO_INCREMENT,
	cluster            VARBINARY(191) NOT NULL,
	started_by         VARCHAR(255) NOT NULL,
	started_at         BIGINT NOT NULL,
	window_name        VARCHAR(255) NOT NULL DEFAULT '',
	window_ends        BIGINT NOT NULL DEFAULT 0,
	status             VARBINARY(32) NOT NULL,
	version            BIGINT NOT NULL,
	current_phase      VARBINARY(64) NOT NULL DEFAULT '',
	preflight          LONGTEXT NULL,
	postcheck          LONGTEXT NULL,
	detection_original BOOLEAN NOT NULL DEFAULT FALSE,
	detection_changed  BOOLEAN NOT NULL DEFAULT FALSE,
	recovering         BOOLEAN NOT NULL DEFAULT FALSE,
	down_since         BIGINT NOT NULL DEFAULT 0,
	up_at              BIGINT NOT NULL DEFAULT 0,
	ended_at           BIGINT NOT NULL DEFAULT 0,
	note               TEXT NOT NULL,
	settings           LONGTEXT NOT NULL,
	-- One open run per cluster, enforced here so that two bot replicas
	-- cannot both open one: the column is the cluster while the run is
	-- active and NULL after, and a unique index allows many NULLs.
	open_cluster       VARBINARY(191) AS (CASE WHEN status = 'active' THEN cluster ELSE NULL END) STORED,
	PRIMARY KEY (id),
	UNIQUE KEY runs_seq (seq),
	UNIQUE KEY runs_one_open_per_cluster (open_cluster),
	KEY runs_by_cluster (cluster, started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS phases (
	run_id     VARBINARY(64) NOT NULL,
	name       VARBINARY(64) NOT NULL,
	ord        INT NOT NULL,
	status     VARBINARY(32) NOT NULL,
	auto       BOOLEAN NOT NULL DEFAULT FALSE,
	started_at BIGINT NOT NULL DEFAULT 0,
	ended_at   BIGINT NOT NULL DEFAULT 0,
	note       TEXT NOT NULL,
	PRIMARY KEY (run_id, name),
	CONSTRAINT phases_run FOREIGN KEY (run_id) REFERENCES runs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS steps (
	run_id      VARBINARY(64) NOT NULL,
	id          VARBINARY(255) NOT NULL,
	ord         INT NOT NULL,
	phase       VARBINARY(64) NOT NULL,
	kind        VARBINARY(64) NOT NULL,
	tier        INT NOT NULL,
	role        VARBINARY(32) NOT NULL DEFAULT '',
	target      VARCHAR(255) NOT NULL DEFAULT '',
	label       TEXT NOT NULL,
	status      VARBINARY(32) NOT NULL,
	attempts    INT NOT NULL DEFAULT 0,
	started_at  BIGINT NOT NULL DEFAULT 0,
	ended_at    BIGINT NOT NULL DEFAULT 0,
	error       MEDIUMTEXT NOT NULL,
	evidence    MEDIUMTEXT NOT NULL,
	skip_reason TEXT NOT NULL,
	PRIMARY KEY (run_id, id),
	KEY steps_by_phase (run_id, phase),
	CONSTRAINT steps_phase FOREIGN KEY (run_id, phase) REFERENCES phases (run_id, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One approval per gate: the primary key is the compare-and-set that makes
-- a second click, a stale card or a racing click change nothing.
CREATE TABLE IF NOT EXISTS approvals (
	run_id      VARBINARY(64) NOT NULL,
	phase       VARBINARY(64) NOT NULL,
	version     BIGINT NOT NULL,
	approved_by VARCHAR(255) NOT NULL,
	approved_at BIGINT NOT NULL,
	act         VARBINARY(64) NOT NULL,
	reason      TEXT NOT NULL,
	PRIMARY KEY (run_id, phase),
	CONSTRAINT approvals_run FOREIGN KEY (run_id) REFERENCES runs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Append-only by contract: the store never updates or deletes a line. To
-- make the database refuse it as well, grant the sdbmaint user only
-- INSERT and SELECT on this table (a trigger would need SUPER on a server
-- with binary logging, which managed MySQL does not give).
CREATE TABLE IF NOT EXISTS audit (
	seq     BIGINT NOT NULL AUTO_INCREMENT,
	at      BIGINT NOT NULL,
	run_id  VARBINARY(64) NOT NULL DEFAULT '',
	cluster VARBINARY(191) NOT NULL DEFAULT '',
	phase   VARBINARY(64) NOT NULL DEFAULT '',
	who     VARCHAR(255) NOT NULL,
	what    VARCHAR(255) NOT NULL,
	result  TEXT NOT NULL,
	PRIMARY KEY (seq),
	KEY audit_by_run (run_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS output (
	seq     BIGINT NOT NULL AUTO_INCREMENT,
	run_id  VARBINARY(64) NOT NULL,
	step_id VARBINARY(255) NOT NULL,
	at      BIGINT NOT NULL,
	stream  VARBINARY(16) NOT NULL,
	line    MEDIUMTEXT NOT NULL,
	PRIMARY KEY (seq),
	KEY output_by_step (run_id, step_id, seq),
	CONSTRAINT output_run FOREIGN KEY (run_id) REFERENCES runs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
`,
}

// migrateLockWait bounds how long Migrate waits for another process that
// is migrating the same database.
const migrateLockWait = 60

// Migrate brings component's tables to the latest of steps: steps[i] takes
// them from version i to i+1, and schema_version remembers where each
// component stands. A step may hold several statements, each ending with
// ";" at the end of a line. The runbook's own tables are component
// "runbook"; another package that keeps its records in the same database
// (the bot's card store) calls Migrate with its own name and steps after
// Open. Processes that open the database at the same time take turns
// through a named lock. MySQL commits DDL as it goes, so each finished step
// is recorded at once and a crash half-way repeats no step. A database
// newer than steps is an error: an older sdbmaint must not write to it.
func (s *Store) Migrate(ctx context.Context, component string, steps []string) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", component, err)
	}
	defer conn.Close()
	lock := "sdbmaint-migrate/" + s.dbName
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(?, ?)`, lock, migrateLockWait).Scan(&got); err != nil {
		return fmt.Errorf("migrate %s: lock: %w", component, err)
	}
	if !got.Valid || got.Int64 != 1 {
		return fmt.Errorf("migrate %s: another process held the migration lock of database %s for %ds", component, s.dbName, migrateLockWait)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DO RELEASE_LOCK(?)`, lock) //nolint:errcheck // closing the connection releases it too
	return sqlstore.Migrate(ctx, conn, dialect, component, steps)
}

// SchemaVersion returns the schema version of component (0 if it has none).
func (s *Store) SchemaVersion(ctx context.Context, component string) (int, error) {
	return sqlstore.SchemaVersion(ctx, s.db, component)
}
