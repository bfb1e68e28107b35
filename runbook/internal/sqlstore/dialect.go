// Package sqlstore is the part of the runbook's SQL stores that does not
// depend on the database: saving and loading runs with their phases, steps
// and approvals (writing only the rows that changed), the audit log, step
// output, the window scheduler's records and the bookkeeping of schema
// migrations, all over database/sql. runbook/sqlite and runbook/mysqlstore
// each describe their database in a Dialect and keep what only they can do
// (opening, the driver, the schema, locking a migration).
//
// The package imports no SQL driver: each store package imports its own.
package sqlstore

import (
	"fmt"
	"strconv"
	"time"
)

// Dialect says how one database, and the schema its store made there,
// differs from the others. The schemas have shipped and are never edited,
// so the few names they spell differently are here too.
type Dialect struct {
	// Time is how the runbook's tables (runs, phases, steps, approvals,
	// audit, output) keep times. Whatever it is, stored times must sort
	// in time order. The window tables always use UnixNanos.
	Time TimeCodec

	// ForUpdate ends a SELECT of a row that the transaction goes on to
	// change, so that racing transactions take turns on it: " FOR UPDATE"
	// where rows are locked one by one, "" where every write transaction
	// already holds the whole database (SQLite's BEGIN IMMEDIATE).
	ForUpdate string

	// OnConflict returns the clause that turns an INSERT into an upsert on
	// the unique key, ending just before the first "col = expr"; Excluded
	// names, inside it, the value the INSERT proposed for col.
	OnConflict func(key string) string
	Excluded   func(col string) string

	// IsDuplicate reports an error from a unique or primary key: the row
	// exists. IsMissingParent reports an error from a foreign key: the row
	// refers to one that does not exist.
	IsDuplicate     func(error) bool
	IsMissingParent func(error) bool
	// Retryable reports an error after which the transaction, rolled back
	// whole, may well succeed when run again (an InnoDB deadlock or lock
	// wait timeout). Nil: none is.
	Retryable func(error) bool

	// SplitSteps says that a migration step holding several statements is
	// cut into them (at lines ending in ";") and each run on its own,
	// because one Exec runs only one.
	SplitSteps bool
	// SchemaVersionTable creates the table of migration versions if it
	// does not exist.
	SchemaVersionTable string

	// OpenRunWhere selects the open run of the cluster "?", OpenRunsWhere
	// every open run: each through the index the schema has for it.
	OpenRunWhere  string
	OpenRunsWhere string
	// RunSeq is the column that orders runs as they were inserted, for
	// runs that started at the same instant.
	RunSeq string
	// FiringKey is the column of a window firing's key.
	FiringKey string
}

// TimeCodec turns times into column values and back. The zero time is
// stored as its own value and comes back as the zero time.
type TimeCodec struct {
	Encode func(time.Time) any
	// Decode takes what the driver scanned (int64, string, []byte or nil).
	Decode func(src any) (time.Time, error)
}

// UnixNanos keeps times as integer Unix nanoseconds, 0 for the zero time:
// exact, and in time order as numbers.
var UnixNanos = TimeCodec{
	Encode: func(t time.Time) any { return nanos(t) },
	Decode: decodeNanos,
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func decodeNanos(src any) (time.Time, error) {
	switch v := src.(type) {
	case nil:
		return time.Time{}, nil
	case int64:
		return fromNanos(v), nil
	case []byte: // MySQL's text protocol, for a query without arguments
		return parseNanos(string(v))
	case string:
		return parseNanos(v)
	}
	return time.Time{}, fmt.Errorf("bad time %v (%T) in store: want integer nanoseconds", src, src)
}

func parseNanos(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q in store: %w", s, err)
	}
	return fromNanos(n), nil
}

// timeDest scans a column through a TimeCodec.
type timeDest struct {
	t      *time.Time
	decode func(any) (time.Time, error)
}

func (d *timeDest) Scan(src any) error {
	t, err := d.decode(src)
	if err != nil {
		return err
	}
	*d.t = t
	return nil
}
