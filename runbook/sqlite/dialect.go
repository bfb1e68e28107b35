package sqlite

import (
	"errors"
	"fmt"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook/internal/sqlstore"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// tsLayout is RFC 3339 with a fixed nine-digit fraction, so that stored
// times sort as text in time order (RFC3339Nano drops trailing zeros and
// would sort "…:00Z" after "…:00.5Z").
const tsLayout = "2006-01-02T15:04:05.000000000Z07:00"

// textTime keeps the runbook tables' times as fixed-width RFC 3339 text in
// UTC, "" for the zero time.
var textTime = sqlstore.TimeCodec{
	Encode: func(t time.Time) any { return ts(t) },
	Decode: func(src any) (time.Time, error) {
		switch v := src.(type) {
		case string:
			return parseTS(v)
		case []byte:
			return parseTS(string(v))
		case nil:
			return time.Time{}, nil
		}
		return time.Time{}, fmt.Errorf("bad time %v (%T) in store: want RFC 3339 text", src, src)
	},
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(tsLayout)
}

func parseTS(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q in store: %w", s, err)
	}
	return t, nil
}

// dialect is SQLite's, with what the schemas in this package call things.
// Every write transaction begins IMMEDIATE and so holds the file's write
// lock from its first statement: no row locks are needed, and no
// transaction is ever rolled back under another's feet to be retried.
var dialect = sqlstore.Dialect{
	Time:               textTime,
	ForUpdate:          "",
	OnConflict:         func(key string) string { return "ON CONFLICT (" + key + ") DO UPDATE SET" },
	Excluded:           func(col string) string { return "excluded." + col },
	IsDuplicate:        isDuplicate,
	IsMissingParent:    isMissingParent,
	SplitSteps:         false, // Exec runs every statement of a step
	SchemaVersionTable: `CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)`,
	OpenRunWhere:       `cluster = ? AND status = 'active'`, // the partial index runs_one_open_per_cluster
	OpenRunsWhere:      `status = 'active'`,
	RunSeq:             "rowid",
	FiringKey:          "key",
}

// isDuplicate reports a PRIMARY KEY or UNIQUE violation (the connection has
// extended result codes on).
func isDuplicate(err error) bool {
	c := code(err)
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// isMissingParent reports a FOREIGN KEY violation.
func isMissingParent(err error) bool { return code(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY }

// code returns the extended result code of a SQLite error, 0 for any other.
func code(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}
