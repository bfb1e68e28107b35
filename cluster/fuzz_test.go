package cluster

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// Fuzz targets for everything this package reads from the outside: the
// result sets of the admin statements and the JSON of sdb-admin list-nodes.
// None may panic, and none may accept garbage silently: a parse either
// fails with an error that names the statement, or returns values that
// agree with the input.

// The result-set parsers, in the order FuzzResultSet's first argument
// picks them.
var fuzzParsers = []struct {
	stmt  string
	parse func(*table) (any, error)
	check func(t *testing.T, tab *table, v any)
}{
	{StmtShowLeaves, func(t *table) (any, error) { return parseLeaves(t) }, checkFuzzLeaves},
	{StmtShowAggregators, func(t *table) (any, error) { return parseAggregators(t) }, checkFuzzAggregators},
	{StmtClusterStatus, func(t *table) (any, error) { return parseClusterStatus(t) }, checkFuzzClusterStatus},
	{ExplainRebalanceStmt("db"), func(t *table) (any, error) { return parsePlan(t) }, checkFuzzPlan},
	{StmtShowDatabases, func(t *table) (any, error) { return parseDatabases(t) }, checkFuzzDatabases},
	{StmtLeafDetection, func(t *table) (any, error) { return parseVariable(t, "leaf_failure_detection") }, checkFuzzVariable},
	{StmtBackupHistory, func(t *table) (any, error) { return parseLatestBackups(t, time.UTC) }, checkFuzzBackups},
}

// fuzzNull stands for SQL NULL in an encoded result set.
const fuzzNull = `\N`

// encodeTable writes a result set as the fuzz input format: the column
// names on the first line, then one line per row; values separated by
// tabs, NULL written as \N.
func encodeTable(r recorded) string {
	lines := []string{strings.Join(r.Columns, "\t")}
	for _, row := range r.Rows {
		vals := make([]string, len(row))
		for i, v := range row {
			if v == nil {
				vals[i] = fuzzNull
			} else {
				vals[i] = *v
			}
		}
		lines = append(lines, strings.Join(vals, "\t"))
	}
	return strings.Join(lines, "\n")
}

// decodeTable reads the fuzz input format. Short rows are padded with
// NULLs and long ones cut, as a server's rows always match its columns.
func decodeTable(stmt, data string) *table {
	lines := strings.Split(data, "\n")
	t := &table{stmt: stmt, cols: strings.Split(lines[0], "\t")}
	for _, line := range lines[1:] {
		vals := strings.Split(line, "\t")
		row := make([]sql.NullString, len(t.cols))
		for i := range row {
			if i < len(vals) && vals[i] != fuzzNull {
				row[i] = sql.NullString{String: vals[i], Valid: true}
			}
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// parserFor picks the parser a recorded result set belongs to.
func parserFor(stmt string) int {
	s := strings.ToUpper(stmt)
	switch {
	case strings.HasPrefix(s, "SHOW LEAVES") || strings.Contains(s, "LEAVES"):
		return 0
	case strings.Contains(s, "AGGREGATORS"):
		return 1
	case strings.Contains(s, "CLUSTER STATUS") || strings.Contains(s, "MV_CLUSTER_STATUS"):
		return 2
	case strings.HasPrefix(s, "EXPLAIN"):
		return 3
	case strings.Contains(s, "DATABASES"):
		return 4
	case strings.Contains(s, "LEAF_FAILURE_DETECTION"):
		return 5
	case strings.Contains(s, "BACKUP"):
		return 6
	}
	return -1
}

func FuzzResultSet(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "results", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no recorded result sets: %v", err)
	}
	for _, file := range files {
		r := loadRecorded(f, filepath.Base(file))
		p := parserFor(r.Statement)
		if p < 0 {
			f.Fatalf("%s: which parser reads %q?", file, r.Statement)
		}
		enc := encodeTable(r)
		f.Add(uint8(p), enc)
		// Every recorded set through every other parser too: a result set
		// of the wrong statement must be refused or read consistently.
		f.Add(uint8(p+1), enc)
	}
	f.Add(uint8(0), "")
	f.Add(uint8(5), "Value\n")
	f.Add(uint8(0), "host\tPORT\tstate\nh\t-1\tONLINE")
	f.Add(uint8(1), "Host\tPort\tState\tRole\nh\t70000\tonline\tLeader")
	f.Add(uint8(6), "DATABASE_NAME\tEND_TIMESTAMP\tSTATUS\nsales\t0001-01-01 00:00:00\tSuccess")
	f.Fuzz(func(t *testing.T, which uint8, data string) {
		p := fuzzParsers[int(which)%len(fuzzParsers)]
		tab := decodeTable(p.stmt, data)
		v, err := p.parse(tab)
		if err != nil {
			if !strings.Contains(err.Error(), p.stmt) {
				t.Fatalf("error %q does not name the statement %s", err, p.stmt)
			}
			return
		}
		p.check(t, tab, v)
	})
}

// cellOf returns the trimmed value of column name in row, and whether the
// column exists and the value is not NULL.
func cellOf(tab *table, row int, names ...string) (string, bool) {
	i := tab.find(names...)
	if i < 0 || !tab.rows[row][i].Valid {
		return "", false
	}
	return strings.TrimSpace(tab.rows[row][i].String), true
}

// checkPort fails unless the row's Port is a port and was read as port.
func checkPort(t *testing.T, tab *table, row, port int) {
	t.Helper()
	s, ok := cellOf(tab, row, "Port")
	if !ok {
		t.Fatalf("row %d: NULL or missing Port accepted as %d", row+1, port)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n != port {
		t.Fatalf("row %d: Port %q read as %d", row+1, s, port)
	}
	if port < 1 || port > 65535 {
		t.Fatalf("row %d: port %d accepted", row+1, port)
	}
}

func mustHave(t *testing.T, tab *table, cols ...string) {
	t.Helper()
	for _, c := range cols {
		if tab.find(c) < 0 {
			t.Fatalf("parsed without a %s column: %q", c, tab.cols)
		}
	}
}

func checkFuzzLeaves(t *testing.T, tab *table, v any) {
	leaves := v.([]Leaf)
	mustHave(t, tab, "Host", "Port", "State")
	if len(leaves) != len(tab.rows) {
		t.Fatalf("%d leaves from %d rows", len(leaves), len(tab.rows))
	}
	for i, l := range leaves {
		checkPort(t, tab, i, l.Port)
		state, _ := cellOf(tab, i, "State")
		if l.State != strings.ToLower(state) {
			t.Fatalf("row %d: State %q read as %q", i+1, state, l.State)
		}
		if l.PairHost == "" && l.PairPort != 0 {
			t.Fatalf("row %d: pair port %d without a pair host", i+1, l.PairPort)
		}
	}
}

func checkFuzzAggregators(t *testing.T, tab *table, v any) {
	aggs := v.([]Aggregator)
	mustHave(t, tab, "Host", "Port", "State")
	if len(aggs) != len(tab.rows) {
		t.Fatalf("%d aggregators from %d rows", len(aggs), len(tab.rows))
	}
	for i, a := range aggs {
		checkPort(t, tab, i, a.Port)
		if (a.Role == "leader" || a.Role == "master") && !a.Master {
			t.Fatalf("row %d: role %q but not the master", i+1, a.Role)
		}
		if a.Role != strings.ToLower(a.Role) || a.State != strings.ToLower(a.State) {
			t.Fatalf("row %d: not lower case: %+v", i+1, a)
		}
	}
}

func checkFuzzClusterStatus(t *testing.T, tab *table, v any) {
	insts := v.([]DatabaseInstance)
	mustHave(t, tab, "Host", "Port", "Role")
	if len(insts) != len(tab.rows) {
		t.Fatalf("%d instances from %d rows", len(insts), len(tab.rows))
	}
	for i, d := range insts {
		checkPort(t, tab, i, d.Port)
		if d.Role == "slave" || d.Role != strings.ToLower(d.Role) {
			t.Fatalf("row %d: role %q not normalised", i+1, d.Role)
		}
	}
}

func checkFuzzPlan(t *testing.T, tab *table, v any) {
	steps := v.([]PlanStep)
	mustHave(t, tab, "Action")
	// Every row is a step: a plan is never shortened.
	if len(steps) != len(tab.rows) {
		t.Fatalf("%d plan steps from %d rows", len(steps), len(tab.rows))
	}
	for i, s := range steps {
		if a, _ := cellOf(tab, i, "Action"); s.Action != a {
			t.Fatalf("row %d: Action %q read as %q", i+1, a, s.Action)
		}
	}
}

func checkFuzzDatabases(t *testing.T, tab *table, v any) {
	dbs := v.([]string)
	col := tab.find("Database", "Database_Name", "Schema")
	if col < 0 {
		t.Fatalf("parsed without a Database column: %q", tab.cols)
	}
	var want []string
	for r, row := range tab.rows {
		if !row[col].Valid {
			t.Fatalf("row %d: NULL database name accepted", r+1)
		}
		if !IsSystemDatabase(row[col].String) {
			want = append(want, row[col].String)
		}
	}
	if !slices.Equal(dbs, want) {
		t.Fatalf("databases %q, want %q", dbs, want)
	}
}

func checkFuzzVariable(t *testing.T, tab *table, v any) {
	on := v.(bool)
	if len(tab.rows) == 0 {
		t.Fatal("a value read from no rows")
	}
	col := 0
	if len(tab.cols) > 1 {
		col = tab.find("Value")
	}
	c := tab.rows[0][col]
	b, ok := parseBool(c.String)
	if !c.Valid || !ok || b != on {
		t.Fatalf("value %+v read as %v", c, on)
	}
}

func checkFuzzBackups(t *testing.T, tab *table, v any) {
	latest := v.(map[string]time.Time)
	mustHave(t, tab, "DATABASE_NAME", "END_TIMESTAMP", "STATUS")
	dbCol := tab.find("DATABASE_NAME")
	// Every database with a successful, finished backup is in the map.
	for r := range tab.rows {
		status, _ := cellOf(tab, r, "STATUS")
		_, ended := cellOf(tab, r, "END_TIMESTAMP")
		name := tab.rows[r][dbCol].String
		if strings.EqualFold(status, "success") && ended && !IsSystemDatabase(name) {
			if _, ok := latest[name]; !ok {
				t.Fatalf("row %d: the successful backup of %q is missing from %v", r+1, name, latest)
			}
		}
	}
	for db := range latest {
		if IsSystemDatabase(db) {
			t.Fatalf("system database %q in the backups", db)
		}
	}
}

func FuzzParseListNodes(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "listnodes", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no recorded list-nodes output: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"nodes": null}`))
	f.Add([]byte(`{"NODES": [{"MEMSQLID": "ABCDEF12", "Port": 1}]}`))
	f.Add([]byte(`{"nodes": [{"memsqlId": "ABCDEF12", "port": "3306", "nodeID": 7, "isConnectable": "1"}]}`))
	f.Add([]byte(`{"nodes": [{"memsqlId": "ABCDEF12", "port": 3306}, {"memsqlId": "abcdef12", "port": 3307}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		nodes, err := parseListNodes(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		// Accepted: the output was a JSON object whose nodes list has one
		// entry per node, each with the ID sdb-admin printed.
		var raw struct {
			Nodes []struct {
				MemsqlID string `json:"memsqlId"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatalf("accepted output that is not a JSON object with a nodes list: %v", err)
		}
		if len(raw.Nodes) != len(nodes) {
			t.Fatalf("%d nodes from %d entries", len(nodes), len(raw.Nodes))
		}
		seen := map[string]bool{}
		for i, n := range nodes {
			if id := raw.Nodes[i].MemsqlID; !strings.EqualFold(id, n.ID) {
				t.Fatalf("node %d: memsqlId %q read as %q", i+1, id, n.ID)
			}
			if !ValidNodeID(n.ID) || n.ID != strings.ToUpper(n.ID) {
				t.Fatalf("node %d: ID %q accepted", i+1, n.ID)
			}
			if seen[n.ID] {
				t.Fatalf("node %s listed twice and accepted", n.ID)
			}
			seen[n.ID] = true
			if n.Port < 1 || n.Port > 65535 {
				t.Fatalf("node %s: port %d accepted", n.ID, n.Port)
			}
			switch n.Role {
			case runbook.RoleMaster, runbook.RoleAggregator, runbook.RoleLeaf, runbook.RoleUnknown:
			default:
				t.Fatalf("node %s: role %q", n.ID, n.Role)
			}
		}
	})
}
