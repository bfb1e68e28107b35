package mysqlstore

import (
	"errors"

	"github.com/go-sql-driver/mysql"

	"github.com/sdbmaint/sdbmaint/runbook/internal/sqlstore"
)

// Server error numbers the store tells apart.
const (
	erDupEntry        = 1062
	erNoReferencedRow = 1452
	erLockWaitTimeout = 1205
	erLockDeadlock    = 1213
)

// errNumber returns the server's error number, 0 for any other error.
func errNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

const schemaVersionTable = `CREATE TABLE IF NOT EXISTS schema_version (
	component VARBINARY(64) NOT NULL PRIMARY KEY,
	version   INT NOT NULL
) ENGINE=InnoDB`

// dialect is MySQL's (InnoDB), with what the schemas in this package call
// things. Transactions lock the rows they read to change, and one that
// InnoDB picks as a deadlock victim is run again.
var dialect = sqlstore.Dialect{
	Time:               sqlstore.UnixNanos, // DATETIME keeps microseconds at best
	ForUpdate:          " FOR UPDATE",
	OnConflict:         func(string) string { return "ON DUPLICATE KEY UPDATE" },
	Excluded:           func(col string) string { return "VALUES(" + col + ")" },
	IsDuplicate:        func(err error) bool { return errNumber(err) == erDupEntry },
	IsMissingParent:    func(err error) bool { return errNumber(err) == erNoReferencedRow },
	Retryable:          retryable,
	SplitSteps:         true, // the connection runs one statement per Exec
	SchemaVersionTable: schemaVersionTable,
	OpenRunWhere:       `open_cluster = ?`, // the unique index runs_one_open_per_cluster
	OpenRunsWhere:      `open_cluster IS NOT NULL`,
	RunSeq:             "seq",
	FiringKey:          "firing_key", // KEY is a reserved word
}

// retryable reports a deadlock (InnoDB rolled the transaction back) or a
// lock wait timeout (the store rolls it back): the transaction may well
// succeed when it is run again.
func retryable(err error) bool {
	n := errNumber(err)
	return n == erLockDeadlock || n == erLockWaitTimeout
}
