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
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/internal/sqlstore"
)

var _ runbook.Store = (*Store)(nil)

// Store is a runbook.Store in a MySQL-compatible database.
type Store struct {
	db     *sql.DB
	addr   string // for messages: never the DSN, which holds the password
	dbName string
	runs   *sqlstore.Store
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
	s := &Store{db: db, addr: cfg.Addr, dbName: cfg.DBName, runs: sqlstore.New(db, dialect)}
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

// CreateRun stores a new open run unless the cluster has one, which it
// returns instead.
func (s *Store) CreateRun(ctx context.Context, run *runbook.Run) (*runbook.Run, error) {
	return s.runs.CreateRun(ctx, run)
}

// UpdateRun replaces the run if its stored version is still u.Prev. The
// run's row is locked first, so racing updates of one run take turns and
// all but the first find another version.
func (s *Store) UpdateRun(ctx context.Context, u runbook.Update) error {
	return s.runs.UpdateRun(ctx, u)
}

// GetRun returns the run.
func (s *Store) GetRun(ctx context.Context, id string) (*runbook.Run, error) {
	return s.runs.GetRun(ctx, id)
}

// OpenRun returns the cluster's open run or nil.
func (s *Store) OpenRun(ctx context.Context, cluster string) (*runbook.Run, error) {
	return s.runs.OpenRun(ctx, cluster)
}

// OpenRuns returns every open run, oldest first.
func (s *Store) OpenRuns(ctx context.Context) ([]*runbook.Run, error) {
	return s.runs.OpenRuns(ctx)
}

// History returns runs newest first.
func (s *Store) History(ctx context.Context, cluster string, limit int) ([]*runbook.Run, error) {
	return s.runs.History(ctx, cluster, limit)
}

// AppendAudit appends one audit line.
func (s *Store) AppendAudit(ctx context.Context, a runbook.Audit) error {
	return s.runs.AppendAudit(ctx, a)
}

// Audit returns the run's audit lines ("" = all) in order.
func (s *Store) Audit(ctx context.Context, runID string) ([]runbook.Audit, error) {
	return s.runs.Audit(ctx, runID)
}

// AppendOutput appends lines of output in one transaction, all or none.
func (s *Store) AppendOutput(ctx context.Context, chunks ...runbook.Chunk) error {
	return s.runs.AppendOutput(ctx, chunks...)
}

// Output returns the step's output ("" = the whole run) in order.
func (s *Store) Output(ctx context.Context, runID, stepID string) ([]runbook.Chunk, error) {
	return s.runs.Output(ctx, runID, stepID)
}
