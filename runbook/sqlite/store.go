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
	"fmt"
	"net/url"
	"strings"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/internal/sqlstore"
)

var _ runbook.Store = (*Store)(nil)

// Store is a runbook.Store in a SQLite file.
type Store struct {
	db   *sql.DB
	path string
	// The runs, audit and output, shared with the other SQL store; its
	// methods are the Store's (runbook.Store).
	*sqlstore.Store
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
	db, err := sql.Open("sqlite", path+"?"+q.Encode()) // modernc.org/sqlite, imported in dialect.go
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, Store: sqlstore.New(db, dialect)}
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
