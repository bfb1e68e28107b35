package sim_test

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

// The operator stops a leaf while the MA runs with leaf_failure_detection
// ON: the MA marks it offline and fails its masters over to the pair; when
// it returns, its old copies are orphans and the plans are non-empty.
func TestLeafStoppedBeforeMasterFailsOverAndLeavesOrphans(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{})
	cl := sshClient(t, c)
	db := openDB(t, c.MySQLAddr())
	leaf := c.Leaves()[0]

	stopNode(t, cl, leaf)
	st := c.State()
	if !hasViolation(st, sim.RuleLeafStoppedBeforeMaster) {
		t.Errorf("violations = %+v", st.Violations)
	}
	// the leaf held masters of ordinals 0,4 and replicas of 2,6 of each db
	if p := st.Partitions; p.Master != 16 || p.Replica != 8 || p.Orphan != 8 {
		t.Errorf("partitions after failover = %+v, want 16 masters, 8 replicas, 8 orphaned copies", p)
	}
	leaves := query(t, db, "SHOW LEAVES")
	port := strings.TrimPrefix(addrOf(t, c, leaf), "127.0.0.1:")
	if r := leaves.where(t, "Port", port); len(r) != 1 || r[0][leaves.col(t, "State")] != "offline" {
		t.Errorf("SHOW LEAVES for the stopped leaf: %v", r)
	}
	status := query(t, db, "SHOW CLUSTER STATUS")
	for _, r := range status.where(t, "Port", port) {
		if r[status.col(t, "State")] != "offline" || r[status.col(t, "Role")] == "Master" && strings.Contains(r[3], "_") {
			t.Errorf("stopped leaf row %v", r)
		}
	}
	if n := len(status.where(t, "Role", "Orphan")); n != 0 {
		t.Errorf("the MA lists %d orphans on a leaf it cannot reach", n)
	}
	if r := query(t, db, "EXPLAIN RESTORE REDUNDANCY ON sales"); len(r.rows) != 4 {
		t.Errorf("restore redundancy plan = %v, want 4 copies", r.rows)
	}
	// SNAPSHOT still works: every partition has a master
	mustExec(t, db, "SNAPSHOT DATABASE sales")

	startNode(t, cl, leaf)
	st = c.State()
	if n := node(t, st, leaf); n.State != "recovering" && n.State != "online" {
		t.Errorf("started leaf state %q", n.State)
	}
	waitState(t, c, "leaf online", func(s sim.State) bool { return node(t, s, leaf).State == "online" })
	status = query(t, db, "SHOW CLUSTER STATUS")
	orphans := status.where(t, "Role", "Orphan")
	if len(orphans) != 8 {
		t.Fatalf("orphans after the leaf returned = %d, want 8: %v", len(orphans), orphans)
	}
	for _, r := range orphans {
		if r[status.col(t, "Port")] != port {
			t.Errorf("orphan on the wrong leaf: %v", r)
		}
	}
	if r := query(t, db, "EXPLAIN REBALANCE PARTITIONS ON web"); len(r.rows) == 0 {
		t.Error("rebalance plan empty with orphans and lost replicas")
	} else if r.rows[0][0] != "DROP PARTITION" || r.rows[0][r.col(t, "Estimated_Time_Remaining_Ms")] == "" {
		t.Errorf("rebalance plan %v", r.rows)
	}
	if r := query(t, db, "EXPLAIN RESTORE REDUNDANCY ON web"); len(r.rows) != 4 {
		t.Errorf("restore redundancy plan = %v", r.rows)
	}
}

// The runbook's order: MA, child aggregators, leaves; then leaves, wait for
// recovery, aggregators, MA. Nothing fails over and nothing is violated.
func TestRunbookOrderKeepsTheClusterWhole(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{RecoveryTime: 30 * time.Millisecond})
	cl := sshClient(t, c)
	ma := c.MySQLAddr()

	stopNode(t, cl, c.Master())
	if !refuses(ma) {
		t.Fatal("the stopped MA's port accepts connections")
	}
	parallel(t, c.Aggregators(), func(id string) { stopNode(t, cl, id) })
	parallel(t, c.Leaves(), func(id string) { stopNode(t, cl, id) })
	for _, n := range c.State().Nodes {
		if n.Process != "stopped" || !refuses(addrOf(t, c, n.ID)) {
			t.Errorf("node %+v still up", n)
		}
	}

	parallel(t, c.Leaves(), func(id string) { startNode(t, cl, id) })
	waitState(t, c, "leaves recovered", func(s sim.State) bool {
		for _, n := range s.Nodes {
			if n.Role == "leaf" && n.Recovery != "Online" {
				return false
			}
		}
		return true
	})
	parallel(t, c.Aggregators(), func(id string) { startNode(t, cl, id) })
	startNode(t, cl, c.Master())

	st := c.State()
	if len(st.Violations) != 0 {
		t.Errorf("violations = %+v", st.Violations)
	}
	if st.Partitions != (sim.PartitionCounts{Master: 16, Replica: 16}) {
		t.Errorf("partitions = %+v", st.Partitions)
	}
	if !allRecovered(st) {
		t.Errorf("nodes = %+v", st.Nodes)
	}
	db := openDB(t, ma)
	if r := query(t, db, "SHOW CLUSTER STATUS"); len(r.where(t, "Role", "Orphan")) != 0 {
		t.Error("orphans after an in-order restart")
	}
	if r := query(t, db, "SHOW LEAVES"); len(r.where(t, "State", "online")) != 4 {
		t.Errorf("SHOW LEAVES = %v", r.rows)
	}
	for _, d := range []string{"sales", "web"} {
		if r := query(t, db, "EXPLAIN REBALANCE PARTITIONS ON "+d); len(r.rows) != 0 {
			t.Errorf("rebalance plan on %s = %v", d, r.rows)
		}
	}
}

func parallel(t *testing.T, ids []string, f func(string)) {
	t.Helper()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() { f(id) })
	}
	wg.Wait()
}

// With detection OFF, stopping leaves first is the runbook's way out: no
// violation and no failover.
func TestDetectionOffAllowsLeavesFirst(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{RecoveryTime: time.Second})
	cl := sshClient(t, c)
	db := openDB(t, c.MySQLAddr())
	mustExec(t, db, "SET GLOBAL leaf_failure_detection = OFF")
	leaf := c.Leaves()[2]
	stopNode(t, cl, leaf)
	st := c.State()
	if len(st.Violations) != 0 || st.Partitions != (sim.PartitionCounts{Master: 16, Replica: 16}) {
		t.Errorf("detection OFF: violations %+v partitions %+v", st.Violations, st.Partitions)
	}
	// the leaf's masters are not available: SNAPSHOT fails like a real MA's
	_, err := tryQuery(db, "SNAPSHOT DATABASE sales")
	wantSQLError(t, err, 1777, "not available")

	// a started leaf recovers: SHOW LEAVES says recovering, then online
	start := time.Now()
	startNode(t, cl, leaf)
	port := strings.TrimPrefix(addrOf(t, c, leaf), "127.0.0.1:")
	leaves := query(t, db, "SHOW LEAVES")
	if got := leaves.where(t, "Port", port)[0][leaves.col(t, "State")]; got != "recovering" {
		t.Errorf("SHOW LEAVES right after start: %s", got)
	}
	for _, n := range listNodes(t, cl).Nodes {
		if n.MemsqlID == leaf && n.RecoveryState != "Recovering" {
			t.Errorf("list-nodes right after start: %+v", n)
		}
	}
	waitState(t, c, "leaf online", func(s sim.State) bool { return node(t, s, leaf).State == "online" })
	if took := time.Since(start); took < time.Second {
		t.Errorf("leaf recovered after %v, before RecoveryTime", took)
	}
	mustExec(t, db, "SET GLOBAL leaf_failure_detection = ON")
	if st := c.State(); st.Partitions != (sim.PartitionCounts{Master: 16, Replica: 16}) || len(st.Violations) != 0 {
		t.Errorf("after detection back ON: %+v %+v", st.Partitions, st.Violations)
	}
}

// Stopping an aggregator before the MA and starting aggregators before the
// leaves recovered are violations.
func TestOrderViolations(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{Leaves: 2, Aggregators: 1, Faults: nil})
	cl := sshClient(t, c)
	ca := c.Aggregators()[0]
	stopNode(t, cl, ca)
	if !hasViolation(c.State(), sim.RuleAggregatorStoppedBeforeMaster) {
		t.Errorf("violations = %+v", c.State().Violations)
	}
	stopNode(t, cl, c.Master())
	parallel(t, c.Leaves(), func(id string) { stopNode(t, cl, id) })
	if n := len(c.State().Violations); n != 1 {
		t.Errorf("leaves stopped after the MA: %d violations", n)
	}
	if err := c.Inject("stuck-recovering:" + c.Leaves()[0]); err != nil {
		t.Fatal(err)
	}
	parallel(t, c.Leaves(), func(id string) { startNode(t, cl, id) })
	startNode(t, cl, ca)
	startNode(t, cl, c.Master())
	st := c.State()
	if !hasViolation(st, sim.RuleAggregatorStartedEarly) || !hasViolation(st, sim.RuleMasterStartedEarly) {
		t.Errorf("violations = %+v", st.Violations)
	}
	for _, v := range st.Violations {
		if v.At.IsZero() || v.Detail == "" {
			t.Errorf("violation without time or detail: %+v", v)
		}
	}
}

// Close stops every listener and leaves no goroutine behind.
func TestCloseLeavesNothingRunning(t *testing.T) {
	before := runtime.NumGoroutine()
	c, err := sim.Start(t.Context(), sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, c.MySQLAddr())
	query(t, db, "SHOW LEAVES")
	leafDB := openDB(t, addrOf(t, c, c.Leaves()[0]))
	query(t, leafDB, "SELECT 1")
	cl := sshClient(t, c)
	listNodes(t, cl)
	addrs := []string{c.MySQLAddr(), c.SSHAddr(), strings.TrimPrefix(c.ControlURL(), "http://")}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	db.Close()
	leafDB.Close()
	cl.Close()
	for _, a := range addrs {
		if !refuses(a) {
			t.Errorf("%s still accepts connections after Close", a)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling for goroutines to exit, not waiting for the sim
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before Start, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
