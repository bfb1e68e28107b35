package sqlite

import (
	"context"

	"github.com/sdbmaint/sdbmaint/runbook/internal/sqlstore"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
)

// This file is the maintenance-window scheduler's store (windows.Store) in
// the same SQLite file as the runbook's. Its tables have their own schema
// component, "windows", migrated by Store.Windows. Times are stored as
// integer Unix nanoseconds so that comparisons in SQL are exact. The
// queries are runbook/internal/sqlstore's, shared with runbook/mysqlstore.

// windowsSchema is the window tables' schema, one entry per version; never
// edit an entry that has shipped, append one.
var windowsSchema = []string{
	// 1: windows made in Slack, firing claims, the scheduler watermark.
	`
CREATE TABLE windows (
	id          TEXT PRIMARY KEY,
	cluster     TEXT NOT NULL,
	spec        TEXT NOT NULL,
	duration_ns INTEGER NOT NULL,
	announce    TEXT NOT NULL,  -- JSON array of lead times in nanoseconds
	channel     TEXT NOT NULL DEFAULT '',
	source      TEXT NOT NULL,
	created_by  TEXT NOT NULL,
	created_at  INTEGER NOT NULL
);

-- One row per firing (announcement, start, end notice, skip) of one
-- occurrence of a window. The primary key is the claim: whoever inserts the
-- row carries the firing out, so it happens at most once across processes.
CREATE TABLE window_firings (
	key         TEXT PRIMARY KEY,
	window_id   TEXT NOT NULL,
	cluster     TEXT NOT NULL,
	start       INTEGER NOT NULL,
	kind        TEXT NOT NULL,
	lead_ns     INTEGER NOT NULL DEFAULT 0,
	due         INTEGER NOT NULL,
	plan        TEXT NOT NULL,
	owner       TEXT NOT NULL,
	by_user     TEXT NOT NULL DEFAULT '',
	claimed_at  INTEGER NOT NULL,
	done        INTEGER NOT NULL DEFAULT 0,
	finished_at INTEGER NOT NULL DEFAULT 0,
	result      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX window_firings_unfinished ON window_firings(claimed_at) WHERE done = 0;

CREATE TABLE window_watermark (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	at INTEGER NOT NULL
);
`,
}

// WindowStore is the window scheduler's windows.Store in the Store's file.
type WindowStore struct {
	*sqlstore.Windows // claims, firings and stored windows, shared with the other SQL store
}

var _ windows.Store = (*WindowStore)(nil)

// Windows migrates the window tables and returns their store. It shares the
// Store's connection pool: close the Store, not the WindowStore.
func (s *Store) Windows(ctx context.Context) (*WindowStore, error) {
	if err := s.Migrate(ctx, "windows", windowsSchema); err != nil {
		return nil, err
	}
	return &WindowStore{sqlstore.NewWindows(s.db, dialect)}, nil
}
