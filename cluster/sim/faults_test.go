package sim_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

func TestFaultsHaveTheirEffect(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{})
	db := openDB(t, c.MySQLAddr())
	cl := sshClient(t, c)
	leaf, ca := c.Leaves()[3], c.Aggregators()[1]
	port := func(id string) string { return strings.TrimPrefix(addrOf(t, c, id), "127.0.0.1:") }

	t.Run("leaf-offline", func(t *testing.T) {
		inject(t, c, "leaf-offline:"+strings.ToLower(leaf))
		r := query(t, db, "SHOW LEAVES")
		if got := r.where(t, "Port", port(leaf))[0][r.col(t, "State")]; got != "offline" {
			t.Errorf("SHOW LEAVES state %s", got)
		}
		for _, n := range listNodes(t, cl).Nodes {
			if n.MemsqlID == leaf && n.ProcessState != "Running" {
				t.Errorf("the process is up; list-nodes says %+v", n)
			}
		}
		if st := c.State(); st.Partitions.Replica != 8 {
			t.Errorf("detection ON: the offline leaf fails over; partitions %+v", st.Partitions)
		}
		inject(t, c, "clear:leaf-offline:"+leaf)
		if r := query(t, db, "SHOW LEAVES"); len(r.where(t, "State", "online")) != 4 {
			t.Errorf("after clear: %v", r.rows)
		}
	})
	t.Run("aggregator-offline", func(t *testing.T) {
		inject(t, c, "aggregator-offline:"+ca)
		r := query(t, db, "SHOW AGGREGATORS")
		if got := r.where(t, "Port", port(ca))[0][r.col(t, "State")]; got != "offline" {
			t.Errorf("SHOW AGGREGATORS state %s", got)
		}
		inject(t, c, "clear:aggregator-offline:"+ca)
	})
	t.Run("orphan", func(t *testing.T) {
		before := c.State().Partitions.Orphan
		inject(t, c, "orphan:sales")
		r := query(t, db, "SHOW CLUSTER STATUS")
		o := r.where(t, "Role", "Orphan")
		if len(o) != 1+before || len(r.where(t, "Database", "sales_0")) != 3 { // master, replica, orphan
			t.Errorf("orphans %v", o)
		}
		if p := query(t, db, "EXPLAIN REBALANCE PARTITIONS ON sales"); len(p.where(t, "Action", "DROP PARTITION")) == 0 {
			t.Errorf("rebalance plan does not drop the orphan: %v", p.rows)
		}
		if c.State().Partitions.Orphan != before+1 {
			t.Errorf("state orphans %d", c.State().Partitions.Orphan)
		}
		inject(t, c, "clear:orphan:sales")
	})
	t.Run("plans", func(t *testing.T) {
		base := map[string]int{}
		for _, q := range []string{"EXPLAIN REBALANCE PARTITIONS ON web", "EXPLAIN RESTORE REDUNDANCY ON web", "EXPLAIN REBALANCE PARTITIONS ON sales", "EXPLAIN RESTORE REDUNDANCY ON sales"} {
			base[q] = len(query(t, db, q).rows)
		}
		inject(t, c, "rebalance-pending:web")
		inject(t, c, "redundancy-pending:sales")
		for q, more := range map[string]bool{"EXPLAIN REBALANCE PARTITIONS ON web": true, "EXPLAIN RESTORE REDUNDANCY ON web": false,
			"EXPLAIN REBALANCE PARTITIONS ON sales": false, "EXPLAIN RESTORE REDUNDANCY ON sales": true} {
			if got := len(query(t, db, q).rows); (got > base[q]) != more {
				t.Errorf("%s: %d rows, %d before", q, got, base[q])
			}
		}
		inject(t, c, "clear")
	})
	t.Run("stale-backup", func(t *testing.T) {
		inject(t, c, "stale-backup:web")
		r := query(t, db, "SELECT DATABASE_NAME, MAX(END_TIMESTAMP) AS last FROM information_schema.MV_BACKUP_HISTORY WHERE STATUS = 'Success' GROUP BY DATABASE_NAME")
		for _, row := range r.rows {
			end, _ := time.Parse("2006-01-02 15:04:05", row[1])
			if old := time.Since(end) > 24*time.Hour; old != (row[0] == "web") {
				t.Errorf("last backup of %s at %s", row[0], row[1])
			}
		}
		inject(t, c, "clear:stale-backup:web")
		if r := query(t, db, "SELECT COUNT(*) FROM information_schema.MV_BACKUP_HISTORY"); r.rows[0][0] != "2" {
			t.Errorf("history after clear: %v", r.rows)
		}
	})
	t.Run("sql-error", func(t *testing.T) {
		inject(t, c, "sql-error:snapshot database")
		_, err := tryQuery(db, "SNAPSHOT   DATABASE `sales`")
		wantSQLError(t, err, 1105, "injected")
		mustExec(t, db, "SNAPSHOT sales") // another prefix
		inject(t, c, "clear:sql-error:snapshot database")
		mustExec(t, db, "SNAPSHOT DATABASE sales")
	})
	t.Run("stop-fails and start-fails", func(t *testing.T) {
		id := c.Aggregators()[0]
		inject(t, c, "stop-fails:"+id)
		r := runSSH(t, cl, "sdb-admin stop-node --memsql-id "+id+" --yes")
		if r.code != 1 || !strings.Contains(r.stderr, "Failed to stop") {
			t.Errorf("stop with stop-fails: %+v", r)
		}
		if n := node(t, c.State(), id); n.Process != "running" {
			t.Errorf("node %+v", n)
		}
		inject(t, c, "clear")
		inject(t, c, "start-fails:"+id)
		stopNode(t, cl, id)
		r = runSSH(t, cl, "sdb-admin start-node --memsql-id "+id+" --yes")
		if r.code != 1 || !strings.Contains(r.stderr, "Failed to start") {
			t.Errorf("start with start-fails: %+v", r)
		}
		if n := node(t, c.State(), id); n.Process != "stopped" {
			t.Errorf("node %+v", n)
		}
		inject(t, c, "clear:start-fails:"+id)
		startNode(t, cl, id)
	})
	t.Run("stuck-recovering", func(t *testing.T) {
		inject(t, c, "stuck-recovering:"+leaf)
		r := query(t, db, "SHOW LEAVES")
		if got := r.where(t, "Port", port(leaf))[0][r.col(t, "State")]; got != "recovering" {
			t.Errorf("SHOW LEAVES state %s", got)
		}
		for _, n := range listNodes(t, cl).Nodes {
			if n.MemsqlID == leaf && n.RecoveryState != "Recovering" {
				t.Errorf("list-nodes %+v", n)
			}
		}
		inject(t, c, "clear:stuck-recovering:"+leaf)
		waitState(t, c, "leaf recovered after clear", func(s sim.State) bool { return node(t, s, leaf).State == "online" })
	})
	if f := c.State().Faults; len(f) != 0 {
		t.Errorf("faults left: %v", f)
	}
}

func inject(t *testing.T, c *sim.Cluster, spec string) {
	t.Helper()
	if err := c.Inject(spec); err != nil {
		t.Fatalf("Inject(%q): %v", spec, err)
	}
}

func TestBadFaultSpecsAreRefused(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{Leaves: 2, Aggregators: 1})
	for spec, why := range map[string]string{
		"":                                       "unknown fault",
		"meltdown":                               "unknown fault",
		"leaf-offline":                           "needs an argument",
		"leaf-offline:DEADBEEF":                  "no node DEADBEEF",
		"leaf-offline:" + c.Master():             "not a leaf",
		"aggregator-offline:" + c.Master():       "not a aggregator",
		"stuck-recovering:" + c.Aggregators()[0]: "not a leaf",
		"orphan:nosuch":                          `no user database "nosuch"`,
		"slow:fast":                              "Go duration",
		"slow:-1s":                               "Go duration",
		"ssh-drop:now":                           "no argument",
		"clear:leaf-offline:" + c.Leaves()[0]:    "not active",
	} {
		err := c.Inject(spec)
		if !errors.Is(err, sim.ErrBadFault) || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "sql-error:PREFIX") {
			t.Errorf("Inject(%q) = %v, want ErrBadFault with %q and the valid forms", spec, err, why)
		}
	}
	if _, err := sim.Start(t.Context(), sim.Options{Faults: []string{"bogus"}}); !errors.Is(err, sim.ErrBadFault) {
		t.Errorf("Start with a bad fault: %v", err)
	}
	if len(c.State().Faults) != 0 {
		t.Errorf("refused faults became active: %v", c.State().Faults)
	}
}

func TestBadOptionsAreRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts sim.Options
		want string
	}{
		{sim.Options{Leaves: 3}, "even"},
		{sim.Options{Databases: []string{"memsql"}}, "system database"},
		{sim.Options{Databases: []string{"a", "a"}}, "twice"},
		{sim.Options{Databases: []string{""}}, "empty"},
		{sim.Options{StopTime: -time.Second}, "negative"},
	} {
		if _, err := sim.Start(t.Context(), tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start(%+v) = %v, want %q", tc.opts, err, tc.want)
		}
	}
}
