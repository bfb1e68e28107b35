package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// SQLOptions says how to reach the master aggregator over SQL.
type SQLOptions struct {
	Addr     string // host:port of the master aggregator
	User     string
	Password string

	// ConnectTimeout bounds dialing and the handshake of one connection
	// (default 10s).
	ConnectTimeout time.Duration
	// ReadTimeout and WriteTimeout bound each single read or write on a
	// connection; 0 means none. A ReadTimeout shorter than the longest
	// statement (BACKUP DATABASE can take hours) breaks that statement, so
	// statements are bounded by StatementTimeout and AdminTimeout instead.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// StatementTimeout bounds each read, SET and SELECT 1, from sending to
	// the last row (default 30s).
	StatementTimeout time.Duration
	// AdminTimeout bounds SNAPSHOT DATABASE, _SYNC_SNAPSHOT and BACKUP
	// DATABASE; 0 leaves them to the caller's context.
	AdminTimeout time.Duration
	// MaxConns is the size of the connection pool: one connection per
	// concurrent statement, so preflight's statements never queue for a
	// connection (default 64).
	MaxConns int
	// Location is the time zone of the server's DATETIME values, such as
	// MV_BACKUP_HISTORY.END_TIMESTAMP (default UTC).
	Location *time.Location
	Logger   *slog.Logger
}

// Default SQL settings.
const (
	DefaultConnectTimeout   = 10 * time.Second
	DefaultStatementTimeout = 30 * time.Second
	DefaultMaxConns         = 64
)

// Client runs the runbook's admin statements on the master aggregator.
// Statements are sent as text without arguments (never prepared); database
// names go through QuoteIdent. It is safe for concurrent use.
type Client struct {
	db   *sql.DB
	opts SQLOptions
	log  *slog.Logger
}

var (
	_ runbook.DatabaseAdmin    = (*Client)(nil)
	_ runbook.FailureDetection = (*Client)(nil)
	_ runbook.Pinger           = (*Client)(nil)
)

// NewClient checks opts and returns a Client. It does not connect: the
// first statement does, so a Client for an unreachable cluster can exist.
// Bad options are an Invalid error.
func NewClient(opts SQLOptions) (*Client, error) {
	if _, port, err := net.SplitHostPort(opts.Addr); err != nil || port == "" {
		return nil, runbook.Errorf(runbook.Invalid, "sql address %q: want host:port", opts.Addr)
	}
	if opts.User == "" {
		return nil, runbook.Errorf(runbook.Invalid, "sql user is empty")
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.StatementTimeout <= 0 {
		opts.StatementTimeout = DefaultStatementTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("sql", opts.Addr)

	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = opts.Addr
	cfg.User = opts.User
	cfg.Passwd = opts.Password
	cfg.Timeout = opts.ConnectTimeout
	cfg.ReadTimeout = opts.ReadTimeout
	cfg.WriteTimeout = opts.WriteTimeout
	cfg.Loc = opts.Location
	// Statements carry no arguments; if one ever did, interpolating keeps
	// it off the COM_STMT_PREPARE path that SingleStore-only statements
	// cannot take.
	cfg.InterpolateParams = true
	cfg.Logger = driverLogger{log}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, runbook.Wrap(runbook.Invalid, err, "sql settings for %s", opts.Addr)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(opts.MaxConns)
	db.SetMaxIdleConns(opts.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &Client{db: db, opts: opts, log: log}, nil
}

// Close closes the connection pool.
func (c *Client) Close() error { return c.db.Close() }

// Addr is the master aggregator's address.
func (c *Client) Addr() string { return c.opts.Addr }

// MaxConns is the size of the connection pool.
func (c *Client) MaxConns() int { return c.opts.MaxConns }

// driverLogger sends the driver's own complaints (such as a dropped idle
// connection) to slog instead of stderr.
type driverLogger struct{ log *slog.Logger }

func (l driverLogger) Print(v ...any) { l.log.Debug("mysql driver", "msg", fmt.Sprint(v...)) }

// Statements the Client sends, for people and tests.
const (
	StmtShowLeaves      = "SHOW LEAVES"
	StmtShowAggregators = "SHOW AGGREGATORS"
	StmtClusterStatus   = "SHOW CLUSTER STATUS"
	StmtShowDatabases   = "SHOW DATABASES"
	StmtBackupHistory   = "SELECT DATABASE_NAME, END_TIMESTAMP, STATUS FROM information_schema.MV_BACKUP_HISTORY"
	StmtLeafDetection   = "SELECT @@GLOBAL.leaf_failure_detection"
	StmtLeafDetection2  = "SHOW GLOBAL VARIABLES LIKE 'leaf_failure_detection'"
	StmtPing            = "SELECT 1"
)

// ExplainRestoreRedundancyStmt is the statement ExplainRestoreRedundancy sends.
func ExplainRestoreRedundancyStmt(db string) string {
	return "EXPLAIN RESTORE REDUNDANCY ON " + QuoteIdent(db)
}

// ExplainRebalanceStmt is the statement ExplainRebalance sends.
func ExplainRebalanceStmt(db string) string {
	return "EXPLAIN REBALANCE PARTITIONS ON " + QuoteIdent(db)
}

// SnapshotStmt is the statement Snapshot sends.
func SnapshotStmt(db string) string { return "SNAPSHOT DATABASE " + QuoteIdent(db) }

// SyncSnapshotStmt is the statement SyncSnapshot sends.
func SyncSnapshotStmt(db string) string { return "_SYNC_SNAPSHOT " + QuoteIdent(db) }

// BackupStmt is the statement Backup sends, or an error when the target
// cannot be quoted safely.
func BackupStmt(db, to string) (string, error) {
	lit, err := quoteBackupPath(to)
	if err != nil {
		return "", err
	}
	return "BACKUP DATABASE " + QuoteIdent(db) + " TO " + lit, nil
}

// ShowLeaves returns SHOW LEAVES.
func (c *Client) ShowLeaves(ctx context.Context) ([]Leaf, error) {
	t, err := c.query(ctx, StmtShowLeaves)
	if err != nil {
		return nil, err
	}
	v, err := parseLeaves(t)
	return v, c.parseErr(err)
}

// ShowAggregators returns SHOW AGGREGATORS, the master aggregator included.
func (c *Client) ShowAggregators(ctx context.Context) ([]Aggregator, error) {
	t, err := c.query(ctx, StmtShowAggregators)
	if err != nil {
		return nil, err
	}
	v, err := parseAggregators(t)
	return v, c.parseErr(err)
}

// ClusterStatus returns SHOW CLUSTER STATUS: every database instance on
// every node.
func (c *Client) ClusterStatus(ctx context.Context) ([]DatabaseInstance, error) {
	t, err := c.query(ctx, StmtClusterStatus)
	if err != nil {
		return nil, err
	}
	v, err := parseClusterStatus(t)
	return v, c.parseErr(err)
}

// Databases returns the user databases of SHOW DATABASES (system
// databases left out), in the server's order.
func (c *Client) Databases(ctx context.Context) ([]string, error) {
	t, err := c.query(ctx, StmtShowDatabases)
	if err != nil {
		return nil, err
	}
	v, err := parseDatabases(t)
	return v, c.parseErr(err)
}

// ExplainRestoreRedundancy returns the plan of RESTORE REDUNDANCY ON db;
// empty when redundancy is complete.
func (c *Client) ExplainRestoreRedundancy(ctx context.Context, db string) ([]PlanStep, error) {
	t, err := c.query(ctx, ExplainRestoreRedundancyStmt(db))
	if err != nil {
		return nil, err
	}
	v, err := parsePlan(t)
	return v, c.parseErr(err)
}

// ExplainRebalance returns the plan of REBALANCE PARTITIONS ON db; empty
// when the database is balanced.
func (c *Client) ExplainRebalance(ctx context.Context, db string) ([]PlanStep, error) {
	t, err := c.query(ctx, ExplainRebalanceStmt(db))
	if err != nil {
		return nil, err
	}
	v, err := parsePlan(t)
	return v, c.parseErr(err)
}

// LatestBackups returns the end time of the newest successful backup of
// each user database that has one.
func (c *Client) LatestBackups(ctx context.Context) (map[string]time.Time, error) {
	t, err := c.query(ctx, StmtBackupHistory)
	if err != nil {
		return nil, err
	}
	m, err := parseLatestBackups(t, c.opts.Location)
	return m, c.parseErr(err)
}

// LeafFailureDetection reads leaf_failure_detection: SELECT @@GLOBAL
// first and, if the server refuses that, SHOW GLOBAL VARIABLES LIKE.
func (c *Client) LeafFailureDetection(ctx context.Context) (bool, error) {
	t, err := c.query(ctx, StmtLeafDetection)
	var server *mysql.MySQLError
	if errors.As(err, &server) {
		c.log.Debug("leaf_failure_detection: falling back to SHOW GLOBAL VARIABLES", "err", server.Message)
		t, err = c.query(ctx, StmtLeafDetection2)
	}
	if err != nil {
		return false, err
	}
	v, err := parseVariable(t, "leaf_failure_detection")
	return v, c.parseErr(err)
}

// SetLeafFailureDetection sets leaf_failure_detection ON or OFF.
func (c *Client) SetLeafFailureDetection(ctx context.Context, on bool) error {
	v := "OFF"
	if on {
		v = "ON"
	}
	return c.exec(ctx, "SET GLOBAL leaf_failure_detection = "+v, c.opts.StatementTimeout)
}

// Snapshot runs SNAPSHOT DATABASE db.
func (c *Client) Snapshot(ctx context.Context, db string) error {
	return c.exec(ctx, SnapshotStmt(db), c.opts.AdminTimeout)
}

// SyncSnapshot runs _SYNC_SNAPSHOT db, which makes the replicas snapshot
// too.
func (c *Client) SyncSnapshot(ctx context.Context, db string) error {
	return c.exec(ctx, SyncSnapshotStmt(db), c.opts.AdminTimeout)
}

// Backup runs BACKUP DATABASE db TO "to". A target with characters that
// cannot be quoted safely (double quote, backslash, control characters)
// is an Invalid error and nothing is sent.
func (c *Client) Backup(ctx context.Context, db, to string) error {
	stmt, err := BackupStmt(db, to)
	if err != nil {
		return runbook.Wrap(runbook.Invalid, err, "backup %s: %v", QuoteIdent(db), err)
	}
	return c.exec(ctx, stmt, c.opts.AdminTimeout)
}

// Ping runs SELECT 1 and reports whether the master aggregator answered.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.query(ctx, StmtPing)
	return err
}

// query runs stmt within the statement timeout and reads its result set.
func (c *Client) query(ctx context.Context, stmt string) (*table, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.StatementTimeout)
	defer cancel()
	start := time.Now()
	rows, err := c.db.QueryContext(ctx, stmt)
	if err != nil {
		return nil, c.fail(ctx, stmt, c.opts.StatementTimeout, err)
	}
	t, err := readTable(stmt, rows)
	if err != nil {
		return nil, c.fail(ctx, stmt, c.opts.StatementTimeout, err)
	}
	c.log.Debug("sql", "stmt", stmt, "rows", len(t.rows), "took", time.Since(start))
	return t, nil
}

// exec runs a statement that returns no rows, within timeout if it is set.
func (c *Client) exec(ctx context.Context, stmt string, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	if _, err := c.db.ExecContext(ctx, stmt); err != nil {
		return c.fail(ctx, stmt, timeout, err)
	}
	c.log.Info("sql", "stmt", stmt, "took", time.Since(start))
	return nil
}

// fail turns a failed statement into an Unavailable error whose message
// says, for people, what was sent where and why it failed.
func (c *Client) fail(ctx context.Context, stmt string, timeout time.Duration, err error) error {
	return runbook.Wrap(runbook.Unavailable, err, "%s on %s: %s", stmt, c.opts.Addr, c.reason(ctx, timeout, err))
}

// reason says in a few words why a statement failed.
func (c *Client) reason(ctx context.Context, timeout time.Duration, err error) string {
	var server *mysql.MySQLError
	switch {
	case errors.As(err, &server):
		if server.Number == 1045 {
			return fmt.Sprintf("access denied for user %q (check the user and password)", c.opts.User)
		}
		return fmt.Sprintf("server error %d: %s", server.Number, server.Message)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is the master aggregator running?)"
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		if timeout > 0 {
			return "no answer within " + timeout.String()
		}
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return "timed out"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "cannot resolve host " + strconv.Quote(dns.Name)
	}
	return strings.TrimPrefix(err.Error(), "driver: ")
}

// parseErr turns a parse error into an Unavailable error that names the
// master aggregator; the parse error itself names statement and column.
func (c *Client) parseErr(err error) error {
	if err == nil {
		return nil
	}
	return &runbook.Error{Kind: runbook.Unavailable, Message: fmt.Sprintf("%s: %v", c.opts.Addr, err)}
}
