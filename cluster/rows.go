package cluster

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// table is one result set as text: what a statement returned, before it is
// given a type. Parsers work on tables so that they can be tested with
// recorded result sets of several server versions, without a server.
type table struct {
	stmt string // the statement that produced it, for errors
	cols []string
	rows [][]sql.NullString
}

// readTable reads every row of rows as nullable strings and closes rows.
func readTable(stmt string, rows *sql.Rows) (*table, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	t := &table{stmt: stmt, cols: cols}
	dest := make([]any, len(cols))
	for rows.Next() {
		row := make([]sql.NullString, len(cols))
		for i := range row {
			dest[i] = &row[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		t.rows = append(t.rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// normColumn folds a column name so that "Node ID", "NODE_ID", "NodeId"
// and "NodeID" compare equal: lower case, without spaces and underscores.
func normColumn(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r != ' ' && r != '_' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// find returns the index of the first column whose name matches one of
// names (folded by normColumn, tried in order), or -1.
func (t *table) find(names ...string) int {
	for _, n := range names {
		want := normColumn(n)
		for i, c := range t.cols {
			if normColumn(c) == want {
				return i
			}
		}
	}
	return -1
}

// need returns the index of a required column, or an error naming the
// statement, the first of names and the columns the server did send.
func (t *table) need(names ...string) (int, error) {
	if i := t.find(names...); i >= 0 {
		return i, nil
	}
	return -1, fmt.Errorf("%s returned no %s column (columns: %s)", t.stmt, names[0], strings.Join(t.cols, ", "))
}

// needEach returns the indexes of several required columns, in order;
// each spec lists one column's accepted names separated by "|".
func (t *table) needEach(specs ...string) ([]int, error) {
	idx := make([]int, len(specs))
	for i, spec := range specs {
		j, err := t.need(strings.Split(spec, "|")...)
		if err != nil {
			return nil, err
		}
		idx[i] = j
	}
	return idx, nil
}

// cell is one value of a row, addressed by a column index that may be -1
// (an optional column the server did not send).
type cell struct {
	t   *table
	row int
	col int
}

func (t *table) at(row, col int) cell { return cell{t: t, row: row, col: col} }

// str returns the value, or "" for NULL and missing columns.
func (c cell) str() string {
	if c.col < 0 || !c.t.rows[c.row][c.col].Valid {
		return ""
	}
	return strings.TrimSpace(c.t.rows[c.row][c.col].String)
}

// null reports whether the value is NULL or its column is missing.
func (c cell) null() bool {
	return c.col < 0 || !c.t.rows[c.row][c.col].Valid
}

// int returns the value as an integer; NULL and missing columns are 0. A
// value that is not a number is an error naming the statement, column and
// row.
func (c cell) int() (int, error) {
	s := c.str()
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: column %s, row %d: %q is not a number", c.t.stmt, c.t.cols[c.col], c.row+1, s)
	}
	return n, nil
}

// requiredInt is int for a column whose NULL is an error.
func (c cell) requiredInt() (int, error) {
	if c.null() {
		return 0, fmt.Errorf("%s: column %s, row %d is NULL", c.t.stmt, c.t.cols[c.col], c.row+1)
	}
	return c.int()
}

// port is requiredInt for a column that holds a TCP port: anything
// outside 1 to 65535 is an error rather than an address nobody can reach.
func (c cell) port() (int, error) {
	n, err := c.requiredInt()
	if err != nil {
		return 0, err
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s: column %s, row %d: %d is not a port", c.t.stmt, c.t.cols[c.col], c.row+1, n)
	}
	return n, nil
}

// bool reads 1/0, ON/OFF, true/false, yes/no; NULL and missing are false.
func (c cell) bool() (bool, error) {
	s := c.str()
	if s == "" {
		return false, nil
	}
	b, ok := parseBool(s)
	if !ok {
		return false, fmt.Errorf("%s: column %s, row %d: %q is not a boolean", c.t.stmt, c.t.cols[c.col], c.row+1, s)
	}
	return b, nil
}

// parseBool normalises the spellings SingleStore and MySQL use for a
// boolean variable.
func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "on", "true", "yes":
		return true, true
	case "0", "off", "false", "no":
		return false, true
	}
	return false, false
}
