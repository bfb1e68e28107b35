package sim_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

func TestMasterAnswersTheRunbookStatements(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{})
	db := openDB(t, c.MySQLAddr())
	st := c.State()

	leaves := query(t, db, "SHOW LEAVES")
	wantCols := []string{"Host", "Port", "Availability_Group", "Pair_Host", "Pair_Port", "State", "Opened_Connections",
		"Average_Roundtrip_Latency_ms", "NodeId", "Grace_Period_in_Seconds", "Minimum_Pre_Prepare_Ts", "Runtime_State"}
	if !slices.Equal(leaves.cols, wantCols) {
		t.Fatalf("SHOW LEAVES columns = %v\nwant %v", leaves.cols, wantCols)
	}
	if len(leaves.rows) != 4 || len(leaves.where(t, "State", "online")) != 4 {
		t.Fatalf("SHOW LEAVES = %v, want 4 online leaves", leaves.rows)
	}
	if len(leaves.where(t, "Availability_Group", "1")) != 2 || len(leaves.where(t, "Availability_Group", "2")) != 2 {
		t.Errorf("availability groups: %v", leaves.rows)
	}
	// pairs point at each other across groups
	port, pairPort := leaves.col(t, "Port"), leaves.col(t, "Pair_Port")
	for _, r := range leaves.rows {
		pair := leaves.where(t, "Port", r[pairPort])
		if len(pair) != 1 || pair[0][pairPort] != r[port] {
			t.Errorf("leaf %s pairs with %s, which does not pair back", r[port], r[pairPort])
		}
	}

	aggs := query(t, db, "SHOW AGGREGATORS")
	wantCols = []string{"Host", "Port", "State", "Opened_Connections", "Average_Roundtrip_Latency_ms", "Master_Aggregator", "Role", "NodeID", "Runtime_State"}
	if !slices.Equal(aggs.cols, wantCols) {
		t.Fatalf("SHOW AGGREGATORS columns = %v", aggs.cols)
	}
	master := aggs.where(t, "Master_Aggregator", "1")
	if len(aggs.rows) != 3 || len(master) != 1 || master[0][aggs.col(t, "Role")] != "leader" ||
		master[0][aggs.col(t, "Average_Roundtrip_Latency_ms")] != "NULL" {
		t.Fatalf("SHOW AGGREGATORS = %v", aggs.rows)
	}
	if got := master[0][aggs.col(t, "Port")]; "127.0.0.1:"+got != c.MySQLAddr() {
		t.Errorf("MA port %s, MySQLAddr %s", got, c.MySQLAddr())
	}

	status := query(t, db, "SHOW CLUSTER STATUS")
	wantCols = []string{"Node ID", "Host", "Port", "Database", "Role", "State", "Position", "Master Host", "Master Port",
		"Metadata Master Node ID", "Metadata Master Host", "Metadata Master Port", "Metadata Role", "Details"}
	if !slices.Equal(status.cols, wantCols) {
		t.Fatalf("SHOW CLUSTER STATUS columns = %v", status.cols)
	}
	// 2 dbs x 8 partitions, redundancy 2; a reference copy per node and db
	if m, r := len(status.where(t, "Role", "Master")), len(status.where(t, "Role", "Replica")); m != 16+2 || r != 16 {
		t.Errorf("Master rows %d (want 16 partitions + 2 reference masters on the MA), Replica rows %d (want 16)", m, r)
	}
	if n := len(status.where(t, "Role", "Reference")); n != 2*6 {
		t.Errorf("Reference rows = %d, want 12", n)
	}
	if n := len(status.where(t, "Role", "Orphan")); n != 0 {
		t.Errorf("orphans in a healthy cluster: %d", n)
	}
	if p := st.Partitions; p != (sim.PartitionCounts{Master: 16, Replica: 16}) {
		t.Errorf("state partitions = %+v", p)
	}

	dbs := query(t, db, "SHOW DATABASES")
	var names []string
	for _, r := range dbs.rows {
		names = append(names, r[0])
	}
	if dbs.cols[0] != "Database" || !slices.Equal(names, []string{"cluster", "information_schema", "memsql", "sales", "web"}) {
		t.Errorf("SHOW DATABASES = %v %v", dbs.cols, names)
	}

	for _, d := range []string{"sales", "web"} {
		r := query(t, db, "EXPLAIN RESTORE REDUNDANCY ON "+quote(d))
		if !slices.Equal(r.cols, []string{"Action", "Ordinal", "Target_Host", "Target_Port", "Phase"}) || len(r.rows) != 0 {
			t.Errorf("EXPLAIN RESTORE REDUNDANCY ON %s = %v %v, want empty", d, r.cols, r.rows)
		}
		r = query(t, db, "EXPLAIN REBALANCE PARTITIONS ON "+quote(d))
		if !slices.Equal(r.cols, []string{"Action", "Ordinal", "Target_Host", "Target_Port", "Phase", "Estimated_Time_Remaining_Ms"}) || len(r.rows) != 0 {
			t.Errorf("EXPLAIN REBALANCE PARTITIONS ON %s = %v %v, want empty", d, r.cols, r.rows)
		}
	}

	for q, want := range map[string][2]string{
		"SELECT @@leaf_failure_detection":                        {"@@leaf_failure_detection", "1"},
		"SELECT @@GLOBAL.leaf_failure_detection":                 {"@@GLOBAL.leaf_failure_detection", "1"},
		"SHOW VARIABLES LIKE 'leaf_failure_detection'":           {"Value", "ON"},
		"show global variables like 'leaf\\_failure_detection';": {"Value", "ON"},
		"SELECT 1":       {"1", "1"},
		"select 1 as ok": {"ok", "1"},
	} {
		r := query(t, db, q)
		if len(r.rows) != 1 || r.rows[0][r.col(t, want[0])] != want[1] {
			t.Errorf("%s = %v %v, want %s=%s", q, r.cols, r.rows, want[0], want[1])
		}
	}

	mustExec(t, db, "SET GLOBAL leaf_failure_detection = OFF")
	if r := query(t, db, "SHOW GLOBAL VARIABLES LIKE 'leaf_failure_detection'"); r.rows[0][1] != "OFF" {
		t.Errorf("after SET OFF: %v", r.rows)
	}
	if c.State().LeafFailureDetection {
		t.Error("state still says detection ON")
	}
	mustExec(t, db, "SET GLOBAL leaf_failure_detection=1")
	if r := query(t, db, "SELECT @@GLOBAL.leaf_failure_detection"); r.rows[0][0] != "1" {
		t.Errorf("after SET 1: %v", r.rows)
	}

	for _, q := range []string{"SNAPSHOT DATABASE `sales`", "SNAPSHOT web", "SNAPSHOT `web`;", "_SYNC_SNAPSHOT `sales`", "_SYNC_SNAPSHOT web",
		`BACKUP DATABASE sales TO "/backups/tonight"`, "BACKUP `web` TO '/backups/tonight'"} {
		mustExec(t, db, q)
	}
	hist := query(t, db, "SELECT DATABASE_NAME, END_TIMESTAMP, STATUS FROM information_schema.MV_BACKUP_HISTORY")
	if len(hist.rows) != 4 { // one seeded backup per database plus tonight's
		t.Fatalf("MV_BACKUP_HISTORY = %v", hist.rows)
	}
	latest := query(t, db, "SELECT DATABASE_NAME, MAX(END_TIMESTAMP) FROM information_schema.MV_BACKUP_HISTORY WHERE STATUS='Success' GROUP BY DATABASE_NAME ORDER BY DATABASE_NAME")
	if len(latest.rows) != 2 || latest.rows[0][0] != "sales" || latest.cols[1] != "MAX(END_TIMESTAMP)" {
		t.Fatalf("latest backups = %v %v", latest.cols, latest.rows)
	}
	end, err := time.Parse("2006-01-02 15:04:05", latest.rows[0][1])
	if err != nil || time.Since(end) > time.Minute {
		t.Errorf("latest sales backup %q (%v), want just now", latest.rows[0][1], err)
	}
	all := query(t, db, "SELECT * FROM information_schema.MV_BACKUP_HISTORY ORDER BY BACKUP_ID DESC LIMIT 1")
	for _, col := range []string{"BACKUP_ID", "CLUSTER_NAME", "CLUSTER_ID", "DATABASE_NAME", "START_TIMESTAMP", "END_TIMESTAMP",
		"NUM_PARTITIONS", "BACKUP_PATH", "CHECKSUM", "STATUS", "SIZE", "INCR_BACKUP_ID", "TYPE", "TAGS", "SERVER_VERSION",
		"MEMORY_USAGE", "IMPLEMENTATION", "LOCKFREE_TIMESTAMP", "ERROR_CODE", "ERROR_MESSAGE"} {
		all.col(t, col)
	}
	if got := all.rows[0][all.col(t, "BACKUP_PATH")]; got != "/backups/tonight/web.backup" {
		t.Errorf("BACKUP_PATH = %q", got)
	}

	// the log has every admin statement, in order, and no session chatter
	var texts []string
	for _, e := range c.Log() {
		if e.Via != "sql" || e.Node != c.Master() {
			t.Errorf("log entry %+v", e)
		}
		texts = append(texts, e.Text)
	}
	for _, want := range []string{"SHOW LEAVES", "SET GLOBAL leaf_failure_detection = OFF", "SNAPSHOT DATABASE `sales`", "_SYNC_SNAPSHOT web"} {
		if !slices.Contains(texts, want) {
			t.Errorf("log lacks %q: %q", want, texts)
		}
	}
	if slices.Contains(texts, "SELECT 1") {
		t.Errorf("log has session chatter: %q", texts)
	}
}

func TestDatabaseNamesRoundTrip(t *testing.T) {
	t.Parallel()
	names := []string{"we`ird", "it's", "two words", "données", `quo"te`}
	c := startSim(t, sim.Options{Databases: names, Leaves: 2, Aggregators: -1, Partitions: 2})
	db := openDB(t, c.MySQLAddr())
	r := query(t, db, "SHOW DATABASES")
	for _, n := range names {
		if len(r.where(t, "Database", n)) != 1 {
			t.Errorf("SHOW DATABASES lacks %q: %v", n, r.rows)
		}
		for _, q := range []string{"SNAPSHOT DATABASE ", "_SYNC_SNAPSHOT ", "EXPLAIN REBALANCE PARTITIONS ON ", "EXPLAIN RESTORE REDUNDANCY ON "} {
			if _, err := tryQuery(db, q+quote(n)); err != nil {
				t.Errorf("%s%s: %v", q, quote(n), err)
			}
		}
		mustExec(t, db, "BACKUP DATABASE "+quote(n)+" TO '/b'")
	}
	hist := query(t, db, "SELECT DATABASE_NAME FROM information_schema.MV_BACKUP_HISTORY WHERE BACKUP_PATH LIKE '/b/%'")
	for _, n := range names {
		if len(hist.where(t, "DATABASE_NAME", n)) != 1 {
			t.Errorf("backup history lacks %q: %v", n, hist.rows)
		}
	}
	_, err := tryQuery(db, "SNAPSHOT DATABASE `we``ird2`")
	wantSQLError(t, err, 1049, "Unknown database 'we`ird2'")
	_, err = tryQuery(db, "EXPLAIN REBALANCE PARTITIONS ON memsql")
	wantSQLError(t, err, 1706, "system database")
}

func TestUnknownStatementsAreSyntaxErrors(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{Leaves: 2, Aggregators: -1})
	db := openDB(t, c.MySQLAddr())
	for _, q := range []string{"DROP DATABASE sales", "REBALANCE PARTITIONS ON sales", "SHOW TABLES", "SELEC 1",
		"SNAPSHOT", "EXPLAIN SELECT 1", "SHOW LEAVES EXTENDED", "BACKUP sales", "DELETE FROM t"} {
		_, err := tryQuery(db, q)
		wantSQLError(t, err, 1064, "SQL syntax")
		if !strings.Contains(err.Error(), strings.Fields(q)[len(strings.Fields(q))-1]) {
			t.Errorf("%s: error %v does not name the statement", q, err)
		}
	}
	_, err := tryQuery(db, "SET GLOBAL no_such_variable = 1")
	wantSQLError(t, err, 1193, "no_such_variable")
	_, err = tryQuery(db, "SET leaf_failure_detection = OFF")
	wantSQLError(t, err, 1229, "SET GLOBAL")
	_, err = tryQuery(db, "SET GLOBAL leaf_failure_detection = maybe")
	wantSQLError(t, err, 1231, "maybe")
	_, err = tryQuery(db, "SELECT NO_SUCH FROM information_schema.MV_BACKUP_HISTORY")
	wantSQLError(t, err, 1054, "NO_SUCH")
	_, err = tryQuery(db, "SELECT * FROM information_schema.NO_SUCH_TABLE")
	wantSQLError(t, err, 1109, "NO_SUCH_TABLE")
	if !c.State().LeafFailureDetection {
		t.Error("a refused SET changed detection")
	}
}

func TestOtherNodesRefuseClusterStatements(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{Leaves: 2, Aggregators: 1})
	ca := openDB(t, addrOf(t, c, c.Aggregators()[0]))
	leaf := openDB(t, addrOf(t, c, c.Leaves()[0]))
	for _, db := range []*sql.DB{ca, leaf} {
		if r := query(t, db, "SELECT 1"); r.rows[0][0] != "1" {
			t.Errorf("SELECT 1 = %v", r.rows)
		}
		for _, q := range []string{"SHOW LEAVES", "SHOW AGGREGATORS", "SNAPSHOT DATABASE sales", "_SYNC_SNAPSHOT sales",
			"EXPLAIN REBALANCE PARTITIONS ON sales", "BACKUP DATABASE sales TO '/b'", "SET GLOBAL leaf_failure_detection = OFF"} {
			_, err := tryQuery(db, q)
			wantSQLError(t, err, 1706, "master aggregator")
		}
	}
	if r := query(t, ca, "SHOW CLUSTER STATUS"); len(r.rows) == 0 {
		t.Error("a child aggregator answers SHOW CLUSTER STATUS with nothing")
	}
	_, err := tryQuery(leaf, "SHOW CLUSTER STATUS")
	wantSQLError(t, err, 1706, "leaf")
	// a leaf lists its partition databases
	r := query(t, leaf, "SHOW DATABASES LIKE 'sales%'")
	if r.cols[0] != "Database (sales%)" || len(r.rows) != 1+8 {
		t.Errorf("leaf SHOW DATABASES LIKE = %v %v", r.cols, r.rows)
	}
	if !c.State().LeafFailureDetection {
		t.Error("a refused SET GLOBAL changed detection")
	}
}

func TestWrongPasswordIsAccessDenied(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{Leaves: 2, Aggregators: -1, User: "admin", Password: "s3cret"})
	db, err := sql.Open("mysql", "admin:wrong@tcp("+c.MySQLAddr()+")/?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wantSQLError(t, db.PingContext(t.Context()), 1045, "Access denied for user 'admin'")
	good, _ := sql.Open("mysql", "admin:s3cret@tcp("+c.MySQLAddr()+")/?timeout=5s")
	defer good.Close()
	if err := good.PingContext(t.Context()); err != nil {
		t.Fatalf("right password: %v", err)
	}
}

func TestSessionStatementsTheClientsSend(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{Leaves: 2, Aggregators: -1})
	db := openDB(t, c.MySQLAddr())
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"SET NAMES utf8mb4", "SET NAMES utf8mb4 COLLATE utf8mb4_general_ci", "SET autocommit=1",
		"SET SESSION sql_mode = 'STRICT_ALL_TABLES'", "SET @@session.wait_timeout = 60", "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
		"SET character_set_results = NULL", "BEGIN", "COMMIT", "ROLLBACK", "START TRANSACTION", "USE sales", "/* ping */ SELECT 1"} {
		if _, err := conn.ExecContext(t.Context(), q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	if r := query(t, conn, "SELECT DATABASE(), @@version_comment LIMIT 1"); r.rows[0][0] != "sales" || !strings.Contains(r.rows[0][1], "SingleStore") {
		t.Errorf("SELECT DATABASE(), @@version_comment = %v", r.rows)
	}
	if r := query(t, conn, "SELECT @@wait_timeout"); r.rows[0][0] != "60" {
		t.Errorf("session variable not kept: %v", r.rows)
	}
	_, err = conn.ExecContext(t.Context(), "USE nope")
	wantSQLError(t, err, 1049, "Unknown database 'nope'")
	if log := c.Log(); len(log) != 0 {
		t.Errorf("session statements logged: %+v", log)
	}

	// a database in the DSN (COM_INIT_DB at connect)
	withDB, _ := sql.Open("mysql", sim.DefaultUser+":"+sim.DefaultPassword+"@tcp("+c.MySQLAddr()+")/information_schema?timeout=5s")
	defer withDB.Close()
	if r := query(t, withDB, "SELECT COUNT(*) AS n FROM MV_BACKUP_HISTORY"); r.rows[0][0] != "2" {
		t.Errorf("COUNT(*) = %v", r.rows)
	}
	bad, _ := sql.Open("mysql", sim.DefaultUser+":"+sim.DefaultPassword+"@tcp("+c.MySQLAddr()+")/nope?timeout=5s")
	defer bad.Close()
	wantSQLError(t, bad.PingContext(t.Context()), 1049, "nope")
}

// Statements with arguments are prepared (COM_STMT_PREPARE) unless the DSN
// interpolates: what vitess can parse works, the rest fails cleanly.
func TestPreparedStatements(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{Leaves: 2, Aggregators: -1})
	db := openDB(t, c.MySQLAddr())
	r := query(t, db, "SELECT DATABASE_NAME, END_TIMESTAMP FROM information_schema.MV_BACKUP_HISTORY WHERE STATUS = ? ORDER BY DATABASE_NAME", "Success")
	if len(r.rows) != 2 || r.rows[0][0] != "sales" {
		t.Errorf("prepared select = %v", r.rows)
	}
	_, err := tryQuery(db, "SHOW VARIABLES LIKE ?", "leaf_failure_detection")
	if err == nil {
		t.Fatal("SHOW VARIABLES LIKE ? prepared: want the clean parse error vitess gives")
	}
	if err := db.PingContext(t.Context()); err != nil {
		t.Fatalf("pool unusable after a refused prepare: %v", err)
	}

	interp, err := sql.Open("mysql", dsn(c.MySQLAddr(), "interpolateParams=true"))
	if err != nil {
		t.Fatal(err)
	}
	defer interp.Close()
	if r := query(t, interp, "SHOW VARIABLES LIKE ?", "leaf_failure_detection"); len(r.rows) != 1 || r.rows[0][1] != "ON" {
		t.Errorf("interpolated SHOW VARIABLES LIKE ? = %v", r.rows)
	}
}

func TestSlowFaultDelaysEveryStatement(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{Leaves: 2, Aggregators: -1, Faults: []string{"slow:60ms"}})
	db := openDB(t, c.MySQLAddr())
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	query(t, conn, "SHOW LEAVES")
	if took := time.Since(start); took < 60*time.Millisecond {
		t.Errorf("SHOW LEAVES took %v with slow:60ms", took)
	}
	if err := c.Inject("clear:slow:60ms"); err != nil {
		t.Fatal(err)
	}
	if f := c.State().Faults; len(f) != 0 {
		t.Errorf("faults after clear = %v", f)
	}
}
