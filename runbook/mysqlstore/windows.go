package mysqlstore

import (
	"context"

	"github.com/sdbmaint/sdbmaint/runbook/internal/sqlstore"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
)

// This file is the maintenance-window scheduler's store (windows.Store) in
// the same database as the runs. Its tables have their own schema
// component, "windows", migrated by Store.Windows. Times are Unix
// nanoseconds, as in the runbook's tables. The queries are
// runbook/internal/sqlstore's, shared with runbook/sqlite.

// windowsSchema is the window tables' schema, one entry per version; never
// edit an entry that has shipped, append one.
var windowsSchema = []string{
	// 1: windows made in Slack, firing claims, the scheduler watermark.
	`
CREATE TABLE IF NOT EXISTS windows (
	id          VARBINARY(64) NOT NULL PRIMARY KEY,
	cluster     VARBINARY(191) NOT NULL,
	spec        VARCHAR(255) NOT NULL,
	duration_ns BIGINT NOT NULL,
	announce    TEXT NOT NULL,
	channel     VARCHAR(64) NOT NULL DEFAULT '',
	source      VARBINARY(32) NOT NULL,
	created_by  VARCHAR(255) NOT NULL,
	created_at  BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per firing (announcement, start, end notice, skip) of one
-- occurrence of a window. The primary key is the claim: whoever inserts the
-- row carries the firing out, so it happens at most once across replicas.
CREATE TABLE IF NOT EXISTS window_firings (
	firing_key  VARBINARY(255) NOT NULL PRIMARY KEY,
	window_id   VARBINARY(64) NOT NULL,
	cluster     VARBINARY(191) NOT NULL,
	start       BIGINT NOT NULL,
	kind        VARBINARY(32) NOT NULL,
	lead_ns     BIGINT NOT NULL DEFAULT 0,
	due         BIGINT NOT NULL,
	plan        VARBINARY(32) NOT NULL,
	owner       VARCHAR(255) NOT NULL,
	by_user     VARCHAR(255) NOT NULL DEFAULT '',
	claimed_at  BIGINT NOT NULL,
	done        BOOLEAN NOT NULL DEFAULT FALSE,
	finished_at BIGINT NOT NULL DEFAULT 0,
	result      TEXT NOT NULL,
	KEY window_firings_unfinished (done, claimed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS window_watermark (
	id INT NOT NULL PRIMARY KEY,
	at BIGINT NOT NULL,
	CONSTRAINT window_watermark_one_row CHECK (id = 1)
) ENGINE=InnoDB;
`,
}

// WindowStore is the window scheduler's windows.Store in the Store's
// database.
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
