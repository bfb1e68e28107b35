package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

var now = time.Date(2024, 5, 2, 8, 0, 0, 0, time.UTC)

// healthy is a small cluster in good order: MA, one child, two leaves, two
// databases, backed up two hours ago.
func healthy() *facts {
	return &facts{
		aggs: []Aggregator{
			{Host: "127.0.0.1", Port: 3306, State: "online", Master: true},
			{Host: "10.0.0.11", Port: 3306, State: "online"},
		},
		leaves: []Leaf{
			{Host: "10.0.1.11", Port: 3307, AvailabilityGroup: 1, State: "online"},
			{Host: "10.0.1.12", Port: 3307, AvailabilityGroup: 2, State: "online"},
		},
		status: []DatabaseInstance{
			{Host: "10.0.1.11", Port: 3307, Database: "sales_0", Role: InstanceMaster},
			{Host: "10.0.1.12", Port: 3307, Database: "sales_0", Role: InstanceReplica},
			{Host: "10.0.1.11", Port: 3307, Database: "sales", Role: InstanceReference},
		},
		dbs:       []string{"sales", "we`b"},
		restore:   map[string][]PlanStep{},
		rebalance: map[string][]PlanStep{},
		backups:   map[string]time.Time{"sales": now.Add(-2 * time.Hour), "we`b": now.Add(-3 * time.Hour)},
		nodes: []runbook.Node{
			{ID: "AAAAAAAA", Role: runbook.RoleMaster, Host: "10.0.0.10", Port: 3306},
			{ID: "BBBBBBBB", Role: runbook.RoleAggregator, Host: "10.0.0.11", Port: 3306},
			{ID: "CCCCCCCC", Role: runbook.RoleLeaf, Host: "10.0.1.11", Port: 3307},
			{ID: "DDDDDDDD", Role: runbook.RoleLeaf, Host: "10.0.1.12", Port: 3307},
		},
		now:          now,
		backupRecent: 24 * time.Hour,
	}
}

func byName(checks []runbook.Check) map[string]runbook.Check {
	m := map[string]runbook.Check{}
	for _, c := range checks {
		m[c.Name] = c
	}
	return m
}

func TestEvaluateHealthyPassesEverything(t *testing.T) {
	t.Parallel()
	checks := evaluate(healthy())
	names := []string{runbook.CheckLeavesOnline, runbook.CheckAggregatorsOnline, runbook.CheckNoOrphanPartitions,
		runbook.CheckNodesMatchToolbox, runbook.CheckRestoreRedundancyPlan, runbook.CheckRebalancePlan, runbook.CheckRecentBackup}
	if len(checks) != len(names) {
		t.Fatalf("got %d checks, want %d", len(checks), len(names))
	}
	for i, c := range checks {
		if c.Name != names[i] || c.Status != runbook.Pass || c.Detail == "" {
			t.Errorf("check %d = %+v, want %s pass with a detail", i, c, names[i])
		}
	}
	m := byName(checks)
	if d := m[runbook.CheckNodesMatchToolbox].Detail; !strings.Contains(d, "same 4 nodes") {
		t.Errorf("nodes_match_toolbox detail %q", d)
	}
	if d := m[runbook.CheckRecentBackup].Detail; !strings.Contains(d, "`we``b`") || !strings.Contains(d, "3h ago") {
		t.Errorf("recent_backup detail %q should name the oldest database and its age", d)
	}
}

// Each problem fails (or warns) exactly its own check, and the detail names
// the evidence.
func TestEvaluateEachProblemHitsOneCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		break_ func(f *facts)
		check  string
		status runbook.CheckStatus
		detail []string
	}{
		{"leaf offline", func(f *facts) { f.leaves[1].State = "offline" },
			runbook.CheckLeavesOnline, runbook.Fail, []string{"1 of 2", "10.0.1.12:3307", "availability group 2", "offline"}},
		{"leaf recovering", func(f *facts) { f.leaves[0].State = "recovering" },
			runbook.CheckLeavesOnline, runbook.Fail, []string{"10.0.1.11:3307", "recovering"}},
		{"child aggregator offline", func(f *facts) { f.aggs[1].State = "offline" },
			runbook.CheckAggregatorsOnline, runbook.Fail, []string{"child aggregator 10.0.0.11:3306 is offline"}},
		{"orphan", func(f *facts) {
			f.status = append(f.status, DatabaseInstance{Host: "10.0.1.12", Port: 3307, Database: "we`b_3", Role: InstanceOrphan})
		}, runbook.CheckNoOrphanPartitions, runbook.Fail, []string{"`we``b`", "we`b_3 on 10.0.1.12:3307"}},
		{"toolbox misses a leaf", func(f *facts) { f.nodes = f.nodes[:3] },
			runbook.CheckNodesMatchToolbox, runbook.Fail, []string{"SQL reports 10.0.1.12:3307 (leaf) but sdb-admin list-nodes does not"}},
		{"toolbox has an extra node", func(f *facts) {
			f.nodes = append(f.nodes, runbook.Node{ID: "EEEEEEEE", Role: runbook.RoleLeaf, Host: "10.0.1.13", Port: 3307})
		}, runbook.CheckNodesMatchToolbox, runbook.Fail, []string{"list-nodes shows 10.0.1.13:3307 (leaf EEEEEEEE) but SQL does not"}},
		{"role differs", func(f *facts) { f.nodes[1].Role = runbook.RoleLeaf },
			runbook.CheckNodesMatchToolbox, runbook.Fail, []string{"10.0.0.11:3306: SQL reports it as aggregator, list-nodes as leaf"}},
		{"restore plan", func(f *facts) {
			f.restore["sales"] = []PlanStep{{Action: "COPY PARTITION FORCE"}, {Action: "COPY PARTITION FORCE"}}
		}, runbook.CheckRestoreRedundancyPlan, runbook.Warn, []string{"`sales`: 2 step(s) (COPY PARTITION FORCE)", "1 of 2 databases"}},
		{"rebalance plan", func(f *facts) {
			f.rebalance["we`b"] = []PlanStep{{Action: "COPY PARTITION"}, {Action: "DROP PARTITION"}}
		}, runbook.CheckRebalancePlan, runbook.Warn, []string{"`we``b`: 2 step(s) (COPY PARTITION, DROP PARTITION)"}},
		{"stale backup", func(f *facts) {
			f.backups["sales"] = now.Add(-30 * time.Hour)
			delete(f.backups, "we`b")
		}, runbook.CheckRecentBackup, runbook.Warn, []string{"within 24h", "`sales` last 2024-05-01 02:00 UTC (30h ago)", "`we``b` never"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := healthy()
			tt.break_(f)
			for _, c := range evaluate(f) {
				if c.Name != tt.check {
					if c.Status != runbook.Pass {
						t.Errorf("%s also %s: %s", c.Name, c.Status, c.Detail)
					}
					continue
				}
				if c.Status != tt.status {
					t.Errorf("%s = %s (%s), want %s", c.Name, c.Status, c.Detail, tt.status)
				}
				for _, w := range tt.detail {
					if !strings.Contains(c.Detail, w) {
						t.Errorf("%s detail %q does not mention %q", c.Name, c.Detail, w)
					}
				}
			}
		})
	}
}

func TestNodesMatchHostless(t *testing.T) {
	t.Parallel()
	f := healthy()
	// memsqlctl-style output without hosts still matches by port and role
	// when that is unambiguous.
	f.leaves = f.leaves[:1]
	f.aggs = f.aggs[:1]
	f.nodes = []runbook.Node{
		{ID: "AAAAAAAA", Role: runbook.RoleMaster, Port: 3306},
		{ID: "CCCCCCCC", Role: runbook.RoleLeaf, Port: 3307},
	}
	if c := checkNodesMatch(f.leaves, f.aggs, f.nodes); c.Status != runbook.Pass {
		t.Errorf("got %+v", c)
	}
}

func TestEmptyClusterFails(t *testing.T) {
	t.Parallel()
	f := healthy()
	f.leaves, f.aggs = nil, nil
	m := byName(evaluate(f))
	if m[runbook.CheckLeavesOnline].Status != runbook.Fail || m[runbook.CheckAggregatorsOnline].Status != runbook.Fail {
		t.Errorf("a cluster without leaves or aggregators passed: %+v", m)
	}
}

func TestRecentBackupNotConfigured(t *testing.T) {
	t.Parallel()
	c := checkBackups(nil, []string{"sales"}, now, 0)
	if c.Status != runbook.Pass || !strings.Contains(c.Detail, "not checked") {
		t.Errorf("got %+v", c)
	}
}
