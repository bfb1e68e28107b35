package sim

import (
	"slices"
	"strings"
	"testing"

	"github.com/dolthub/vitess/go/mysql"
	querypb "github.com/dolthub/vitess/go/vt/proto/query"
)

func TestParseStatement(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind stmtKind
		db   string
		chk  func(*statement) bool
	}{
		{in: "SHOW LEAVES", kind: stmtShowLeaves},
		{in: "  show leaves ;  ", kind: stmtShowLeaves},
		{in: "SHOW AGGREGATORS EXTENDED", kind: stmtShowAggregators, chk: func(s *statement) bool { return s.extended }},
		{in: "SHOW CLUSTER STATUS", kind: stmtShowClusterStatus},
		{in: "SHOW SCHEMAS LIKE 's%'", kind: stmtShowDatabases, chk: func(s *statement) bool { return s.hasLike && s.like == "s%" }},
		{in: "SHOW GLOBAL VARIABLES LIKE 'leaf_failure_detection'", kind: stmtShowVariables, chk: func(s *statement) bool { return s.global }},
		{in: "EXPLAIN RESTORE REDUNDANCY ON `we``ird`", kind: stmtExplainRestore, db: "we`ird"},
		{in: "explain rebalance partitions on sales", kind: stmtExplainRebalance, db: "sales"},
		{in: "SNAPSHOT DATABASE `two words`", kind: stmtSnapshot, db: "two words"},
		{in: "SNAPSHOT données", kind: stmtSnapshot, db: "données"},
		{in: "SNAPSHOT `DATABASE`", kind: stmtSnapshot, db: "DATABASE"},
		{in: "_SYNC_SNAPSHOT `sales`;", kind: stmtSyncSnapshot, db: "sales"},
		{in: "_sync_snapshot DATABASE web", kind: stmtSyncSnapshot, db: "web"},
		{in: `BACKUP DATABASE sales TO "/b"`, kind: stmtBackup, db: "sales", chk: func(s *statement) bool { return s.path == "/b" && s.backup == "FULL" }},
		{in: `BACKUP sales WITH SPLIT PARTITIONS BY 2 TO S3 'bucket/p' CONFIG '{}' CREDENTIALS '{}' TIMEOUT 10 TAGS ('a','b')`, kind: stmtBackup, db: "sales",
			chk: func(s *statement) bool { return s.path == "s3://bucket/p" && s.backup == "SPLIT_PARTITIONS" }},
		{in: "SET GLOBAL leaf_failure_detection=OFF", kind: stmtSet, chk: func(s *statement) bool {
			return len(s.assigns) == 1 && s.assigns[0] == assignment{"global", "leaf_failure_detection", "OFF"}
		}},
		{in: "SET @@GLOBAL.leaf_failure_detection = 1, autocommit = 0", kind: stmtSet, chk: func(s *statement) bool {
			return len(s.assigns) == 2 && s.assigns[0].scope == "global" && s.assigns[1] == assignment{"session", "autocommit", "0"}
		}},
		{in: "SET NAMES utf8mb4 COLLATE utf8mb4_general_ci", kind: stmtSet, chk: func(s *statement) bool { return s.session() }},
		{in: "USE `information_schema`", kind: stmtUse, db: "information_schema"},
		{in: "SELECT @@version_comment LIMIT 1", kind: stmtSelectExprs, chk: func(s *statement) bool {
			return s.limit == 1 && s.exprs[0].kind == exprVar && s.exprs[0].label() == "@@version_comment" && s.session()
		}},
		{in: "SELECT @@GLOBAL.leaf_failure_detection", kind: stmtSelectExprs, chk: func(s *statement) bool {
			return s.exprs[0].scope == "global" && s.exprs[0].name == "leaf_failure_detection" && !s.session()
		}},
		{in: "SELECT 1", kind: stmtSelectExprs, chk: func(s *statement) bool { return s.exprs[0].value == int64(1) && s.exprs[0].label() == "1" }},
		{in: "select DATABASE() db, 'x' AS `y`", kind: stmtSelectExprs, chk: func(s *statement) bool {
			return s.exprs[0].label() == "db" && s.exprs[1].label() == "y"
		}},
		{in: "SELECT DATABASE_NAME, MAX(END_TIMESTAMP) AS last FROM information_schema.MV_BACKUP_HISTORY WHERE STATUS='Success' AND SIZE >= -1 GROUP BY DATABASE_NAME ORDER BY 2 DESC LIMIT 5, 10",
			kind: stmtSelectTable, chk: func(s *statement) bool {
				q := s.table
				return q.schema == "information_schema" && q.name == "MV_BACKUP_HISTORY" && len(q.where) == 2 &&
					q.where[1].values[0] == int64(-1) && slices.Equal(q.groupBy, []string{"DATABASE_NAME"}) &&
					q.orderBy[0] == orderBy{"2", true} && s.offset == 5 && s.limit == 10 && s.exprs[1].arg == "END_TIMESTAMP"
			}},
		{in: "SELECT * FROM information_schema.mv_cluster_status WHERE ROLE IN ('Orphan', 'Master') AND DETAILS IS NOT NULL", kind: stmtSelectTable,
			chk: func(s *statement) bool {
				return len(s.table.where[0].values) == 2 && s.table.where[1].op == "IS NOT NULL"
			}},
		{in: "/* comment */ COMMIT -- trailing", kind: stmtTxn},
	} {
		st, err := parseStatement(tc.in)
		if err != nil {
			t.Errorf("parseStatement(%q): %v", tc.in, err)
			continue
		}
		if st.kind != tc.kind || st.db != tc.db || (tc.chk != nil && !tc.chk(st)) {
			t.Errorf("parseStatement(%q) = %+v", tc.in, st)
		}
	}
}

func TestParseStatementRefuses(t *testing.T) {
	for in, near := range map[string]string{
		"DROP DATABASE x":                   "DROP DATABASE x",
		"SHOW LEAVES now":                   "now",
		"SNAPSHOT":                          "SNAPSHOT",
		"SNAPSHOT DATABASE":                 "SNAPSHOT DATABASE",
		"SNAPSHOT `unterminated":            "`unterminated",
		"EXPLAIN REBALANCE ALL DATABASES":   "EXPLAIN REBALANCE ALL DATABASES",
		"BACKUP sales TO /plain/path":       "/plain/path",
		"SELECT a FROM t WHERE a = 1 OR 1":  "OR 1",
		"SET GLOBAL":                        "SET GLOBAL",
		"SELECT 'unterminated":              "'unterminated",
		"SHOW VARIABLES LIKE leaf_failure_": "leaf_failure_",
		"SELECT ?":                          "?",
	} {
		_, err := parseStatement(in)
		se, ok := err.(*mysql.SQLError)
		if !ok || se.Num != mysql.ERParseError || !strings.Contains(se.Message, "near '"+near) {
			t.Errorf("parseStatement(%q) = %v, want 1064 near %q", in, err, near)
		}
	}
	if _, err := parseStatement(" ; "); err == nil || err.(*mysql.SQLError).Num != mysql.EREmptyQuery {
		t.Errorf("empty statement: %v", err)
	}
}

func TestSplitStatements(t *testing.T) {
	for _, tc := range [][3]string{
		{"SHOW LEAVES", "SHOW LEAVES", ""},
		{"SNAPSHOT `a;b`; SHOW LEAVES", "SNAPSHOT `a;b`", "SHOW LEAVES"},
		{"SELECT ';' ; ;  SELECT 2;", "SELECT ';' ", "SELECT 2;"},
		{"SELECT 1 -- x;y\n; SELECT 2", "SELECT 1 -- x;y\n", "SELECT 2"},
		{"SELECT 'it\\'s;'", "SELECT 'it\\'s;'", ""},
	} {
		first, rest := splitStatements(tc[0])
		if first != tc[1] || rest != tc[2] {
			t.Errorf("splitStatements(%q) = %q, %q", tc[0], first, rest)
		}
	}
}

func TestLikeMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"leaf%", "leaf_failure_detection", true},
		{"leaf\\_failure%", "leaf_failure_detection", true},
		{"leaf\\_failure%", "leafxfailure", false},
		{"LEAF_FAILURE_DETECTION", "leaf_failure_detection", true},
		{"_", "é", true},
		{"%s", "sales", true},
		{"", "", true},
		{"a", "", false},
	} {
		if got := likeMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("likeMatch(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}

func TestInterpolate(t *testing.T) {
	vars := map[string]*querypb.BindVariable{
		"v1": {Type: querypb.Type_VARCHAR, Value: []byte("it's")},
		"v2": {Type: querypb.Type_INT64, Value: []byte("42")},
		"v3": {Type: querypb.Type_NULL_TYPE},
	}
	got, err := interpolate("SELECT '?', ? , `?`, ?, ?", vars)
	if err != nil || got != "SELECT '?', 'it\\'s' , `?`, 42, NULL" {
		t.Errorf("interpolate = %q, %v", got, err)
	}
	if _, err := interpolate("SELECT ?, ?, ?, ?", vars); err == nil {
		t.Error("missing parameter accepted")
	}
}

func TestSplitWordsAndAdminArgs(t *testing.T) {
	words, err := splitWords(`sdb-admin stop-node --memsql-id 'AB CD' "--yes" x\ y`)
	if err != nil || !slices.Equal(words, []string{"sdb-admin", "stop-node", "--memsql-id", "AB CD", "--yes", "x y"}) {
		t.Errorf("splitWords = %q, %v", words, err)
	}
	for _, bad := range []string{"a 'b", `a "b`, "a; b", "a | b", "a $(b)"} {
		if _, err := splitWords(bad); err == nil {
			t.Errorf("splitWords(%q) accepted", bad)
		}
	}
	a, err := parseAdminArgs([]string{"-y", "start-node", "--memsql-id=ABC", "--json"})
	if err != nil || a.sub != "start-node" || !a.yes || !a.json || !slices.Equal(a.ids, []string{"ABC"}) {
		t.Errorf("parseAdminArgs = %+v, %v", a, err)
	}
	for _, bad := range [][]string{{"stop-node", "--memsql-id"}, {"list-nodes", "extra"}, {"--nope"}} {
		if _, err := parseAdminArgs(bad); err == nil {
			t.Errorf("parseAdminArgs(%q) accepted", bad)
		}
	}
}

func TestParseFault(t *testing.T) {
	for in, want := range map[string]string{
		"leaf-offline:ab12":           "leaf-offline:AB12",
		" slow:250ms\n":               "slow:250ms",
		"sql-error:SNAPSHOT DATABASE": "sql-error:SNAPSHOT DATABASE",
		"orphan:two words":            "orphan:two words",
		"ssh-drop":                    "ssh-drop",
		"clear":                       "clear",
		"clear:stop-fails:ab":         "clear:stop-fails:AB",
	} {
		f, err := parseFault(in)
		if err != nil || f.String() != want {
			t.Errorf("parseFault(%q) = %q, %v; want %q", in, f, err, want)
		}
	}
	for _, bad := range []string{"", "nope", "orphan", "orphan:", "slow", "slow:1parsec", "ssh-drop:x", "clear:clear", "clear:nope"} {
		if _, err := parseFault(bad); err == nil {
			t.Errorf("parseFault(%q) accepted", bad)
		}
	}
}

func TestSystemDatabases(t *testing.T) {
	for name, want := range map[string]bool{
		"information_schema": true, "memsql": true, "cluster": true, "cluster_42": true, "sharding": true, "sharding_x": true,
		"cluster_logs": false, "clusters": false, "sales": false, "cluster_": false,
	} {
		if isSystemDatabase(name) != want {
			t.Errorf("isSystemDatabase(%q) = %v", name, !want)
		}
	}
}
