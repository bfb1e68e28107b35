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
	// The runs, audit and output, shared with the other SQL store; its
	// methods are the Store's (runbook.Store).
	*sqlstore.Store
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
	s := &Store{db: db, addr: cfg.Addr, dbName: cfg.DBName, Store: sqlstore.New(db, dialect)}
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
