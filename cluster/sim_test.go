package cluster

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
)

// simCluster is a simulated cluster and this package's adapters pointed at
// it, as cmd/sdbmaint wires them for a real one.
type simCluster struct {
	sim    *sim.Cluster
	sql    *Client
	ssh    *SSHRunner
	admin  *SDBAdmin
	files  sim.Files
	flight *Preflighter
}

func startSim(t testing.TB, opts sim.Options) *simCluster {
	t.Helper()
	c, err := sim.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	files, err := c.Files(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sqlc, err := NewClient(SQLOptions{Addr: c.MySQLAddr(), User: sim.DefaultUser, Password: sim.DefaultPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlc.Close() })
	runner, err := NewSSHRunner(SSHOptions{Addr: c.SSHAddr(), User: files.User, KeyFile: files.KeyFile, KnownHostsFile: files.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Close() })
	sc := &simCluster{sim: c, sql: sqlc, ssh: runner, admin: &SDBAdmin{Runner: runner}, files: files}
	sc.flight = NewPreflighter(PreflightOptions{Cluster: "sim", SQL: sqlc, Admin: sc.admin, BackupRecent: 24 * time.Hour})
	return sc
}

func (sc *simCluster) addr(id string) string {
	for _, n := range sc.sim.State().Nodes {
		if n.ID == id {
			return addr(n.Host, n.Port)
		}
	}
	return "?"
}

func TestSimHealthyPassesEveryCheck(t *testing.T) {
	t.Parallel()
	sc := startSim(t, sim.Options{})
	rep, err := sc.flight.Preflight(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checks {
		t.Logf("%s %s: %s", c.Name, c.Status, c.Detail)
		if c.Status != runbook.Pass {
			t.Errorf("%s %s: %s", c.Name, c.Status, c.Detail)
		}
	}
	if !rep.OK || len(rep.Checks) != 7 || len(rep.Nodes) != 7 || !rep.LeafFailureDetection {
		t.Errorf("report %+v", rep)
	}
}

// Each fault fails (or, for advisory checks, warns) exactly the check it
// should, with the evidence in the detail, and every other check passes
// except the advisories the fault really implies (also).
func TestSimEachFaultHitsItsCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		detection bool // leaf_failure_detection before the fault
		fault     func(sc *simCluster) string
		check     string
		status    runbook.CheckStatus
		detail    func(sc *simCluster) []string
		also      []string // checks that warn as a consequence
	}{
		{"leaf offline", false, func(sc *simCluster) string { return "leaf-offline:" + sc.sim.Leaves()[1] },
			runbook.CheckLeavesOnline, runbook.Fail,
			func(sc *simCluster) []string {
				return []string{"1 of 4 leaves not online", sc.addr(sc.sim.Leaves()[1]) + " (availability group 2) is offline"}
			}, nil},
		// With detection ON the MA fails the leaf over: its partitions lose
		// their replicas, so both plans have work to do.
		{"leaf offline, failed over", true, func(sc *simCluster) string { return "leaf-offline:" + sc.sim.Leaves()[1] },
			runbook.CheckLeavesOnline, runbook.Fail,
			func(sc *simCluster) []string {
				return []string{sc.addr(sc.sim.Leaves()[1]) + " (availability group 2) is offline"}
			},
			[]string{runbook.CheckRestoreRedundancyPlan, runbook.CheckRebalancePlan}},
		{"aggregator offline", true, func(sc *simCluster) string { return "aggregator-offline:" + sc.sim.Aggregators()[0] },
			runbook.CheckAggregatorsOnline, runbook.Fail,
			func(sc *simCluster) []string {
				return []string{"child aggregator " + sc.addr(sc.sim.Aggregators()[0]) + " is offline"}
			}, nil},
		// An orphaned copy is what a rebalance would drop.
		{"orphan", true, func(*simCluster) string { return "orphan:web" },
			runbook.CheckNoOrphanPartitions, runbook.Fail,
			func(*simCluster) []string { return []string{"1 orphan partition(s): `web`: web_0 on 127.0.0.1:"} },
			[]string{runbook.CheckRebalancePlan}},
		{"rebalance pending", true, func(*simCluster) string { return "rebalance-pending:web" },
			runbook.CheckRebalancePlan, runbook.Warn,
			func(*simCluster) []string { return []string{"plan not empty for 1 of 2 databases: `web`: "} }, nil},
		{"redundancy pending", true, func(*simCluster) string { return "redundancy-pending:sales" },
			runbook.CheckRestoreRedundancyPlan, runbook.Warn,
			func(*simCluster) []string { return []string{"plan not empty for 1 of 2 databases: `sales`: "} }, nil},
		{"stale backup", true, func(*simCluster) string { return "stale-backup:sales" },
			runbook.CheckRecentBackup, runbook.Warn,
			func(*simCluster) []string {
				return []string{"no successful backup within 24h: `sales` last ", "(30d ago)"}
			}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := startSim(t, sim.Options{})
			if !tt.detection {
				if err := sc.sql.SetLeafFailureDetection(testCtx(t), false); err != nil {
					t.Fatal(err)
				}
			}
			if err := sc.sim.Inject(tt.fault(sc)); err != nil {
				t.Fatal(err)
			}
			rep, err := sc.flight.Preflight(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK != (tt.status != runbook.Fail) {
				t.Errorf("report OK = %v", rep.OK)
			}
			for _, c := range rep.Checks {
				if c.Name != tt.check {
					if slices.Contains(tt.also, c.Name) {
						if c.Status != runbook.Warn {
							t.Errorf("%s = %s, want warn as a consequence: %s", c.Name, c.Status, c.Detail)
						}
						continue
					}
					if c.Status != runbook.Pass {
						t.Errorf("%s is %s too: %s", c.Name, c.Status, c.Detail)
					}
					continue
				}
				if c.Status != tt.status {
					t.Errorf("%s = %s, want %s: %s", c.Name, c.Status, tt.status, c.Detail)
				}
				for _, w := range tt.detail(sc) {
					if !strings.Contains(c.Detail, w) {
						t.Errorf("%s detail %q does not say %q", c.Name, c.Detail, w)
					}
				}
			}
		})
	}
}

// Database names that need quoting go through every statement intact.
func TestSimOddDatabaseNames(t *testing.T) {
	t.Parallel()
	names := []string{"we`b", `it's "q"`, "with space", "Müller_数据"}
	sc := startSim(t, sim.Options{Databases: names})
	ctx := testCtx(t)
	rep, err := sc.flight.Preflight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// SHOW DATABASES lists them in the server's order.
	if got := slices.Sorted(slices.Values(rep.Databases)); !rep.OK || !slices.Equal(got, slices.Sorted(slices.Values(names))) {
		t.Fatalf("report %+v", rep)
	}
	for _, c := range rep.Checks {
		if c.Status != runbook.Pass {
			t.Errorf("%s %s: %s", c.Name, c.Status, c.Detail)
		}
	}
	for _, db := range names {
		if err := sc.sql.Snapshot(ctx, db); err != nil {
			t.Error(err)
		}
		if err := sc.sql.SyncSnapshot(ctx, db); err != nil {
			t.Error(err)
		}
		if err := sc.sql.Backup(ctx, db, "/backups/nightly"); err != nil {
			t.Error(err)
		}
	}
	var logged []string
	for _, e := range sc.sim.Log() {
		if e.Error != "" {
			t.Errorf("the sim refused %s: %s", e.Text, e.Error)
		}
		logged = append(logged, e.Text)
	}
	for _, want := range []string{
		"SNAPSHOT DATABASE `we``b`",
		"_SYNC_SNAPSHOT `it's \"q\"`",
		"BACKUP DATABASE `with space` TO \"/backups/nightly\"",
		"EXPLAIN REBALANCE PARTITIONS ON `Müller_数据`",
	} {
		if !slices.Contains(logged, want) {
			t.Errorf("the sim never received %s", want)
		}
	}

	if err := sc.sim.Inject("orphan:we`b"); err != nil {
		t.Fatal(err)
	}
	rep, err = sc.flight.Preflight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := byName(rep.Checks)[runbook.CheckNoOrphanPartitions]; c.Status != runbook.Fail || !strings.Contains(c.Detail, "`we``b`: we`b_0 on 127.0.0.1:") {
		t.Errorf("orphan in we`b: %+v", c)
	}
}

// When the cluster cannot be read, preflight says why instead of judging.
func TestSimPreflightCannotDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault string
		want  string
	}{
		{"statement refused", "sql-error:SHOW CLUSTER STATUS", "SHOW CLUSTER STATUS on 127.0.0.1:"},
		{"ssh session drops", "ssh-drop", "session dropped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := startSim(t, sim.Options{})
			if err := sc.sim.Inject(tt.fault); err != nil {
				t.Fatal(err)
			}
			_, err := sc.flight.Preflight(testCtx(t))
			if err == nil || !strings.Contains(runbook.ErrorMessage(err), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		sc := startSim(t, sim.Options{Password: "other"})
		_, err := sc.flight.Preflight(testCtx(t))
		if err == nil || !strings.Contains(runbook.ErrorMessage(err), "access denied for user") {
			t.Fatalf("got %v", err)
		}
	})
}

// The node controller and failure detection against the sim: what the
// runbook's stop, start and finalize phases will call.
func TestSimNodeControl(t *testing.T) {
	t.Parallel()
	sc := startSim(t, sim.Options{})
	ctx := testCtx(t)
	if err := sc.sql.SetLeafFailureDetection(ctx, false); err != nil {
		t.Fatal(err)
	}
	if on, err := sc.sql.LeafFailureDetection(ctx); err != nil || on {
		t.Fatalf("detection after SET OFF: %v, %v", on, err)
	}
	leaf := sc.sim.Leaves()[0]
	var out lines
	if err := sc.admin.StopNode(ctx, leaf, out.add); err != nil {
		t.Fatal(err)
	}
	if out.String() == "" {
		t.Error("stop-node printed nothing")
	}
	nodes, err := sc.admin.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == leaf && n.Running {
			t.Errorf("leaf %s still running after stop-node", leaf)
		}
	}
	if err := sc.admin.StartNode(ctx, leaf, nil); err != nil {
		t.Fatal(err)
	}
	// Poll list-nodes, as the runbook does, until the leaf has recovered.
	for recovered := false; !recovered; {
		nodes, err := sc.admin.ListNodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.ID == leaf {
				recovered = n.Recovered()
			}
		}
		if !recovered {
			select {
			case <-sc.sim.Changed():
			case <-ctx.Done():
				t.Fatal("the leaf never recovered")
			}
		}
	}

	ma := sc.sim.Master()
	if err := sc.admin.StopNode(ctx, ma, nil); err != nil {
		t.Fatal(err)
	}
	if err := sc.sql.Ping(ctx); err == nil || !strings.Contains(runbook.ErrorMessage(err), "connection refused") {
		t.Errorf("ping of a stopped MA: %v", err)
	}
	if err := sc.admin.StartNode(ctx, ma, nil); err != nil {
		t.Fatal(err)
	}
	if err := sc.sql.Ping(ctx); err != nil {
		t.Errorf("ping after start: %v", err)
	}
	if err := sc.admin.StopNode(ctx, "0000000000", nil); err == nil {
		t.Error("stop-node of an unknown node succeeded")
	}
}
