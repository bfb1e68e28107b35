package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// recordedCluster is a master aggregator answering with recorded 9.x result
// sets and a toolbox host over real SSH answering list-nodes, for preflight
// tests that need exact control over what each statement returns. The
// simulated cluster (sim_test.go) covers the behaviour end to end.
type recordedCluster struct {
	sql *replayServer
	ssh *sshServer

	mu        sync.Mutex
	listNodes []byte
	listCode  int
	listHold  func(ctx context.Context)
}

func newRecordedCluster(t *testing.T) *recordedCluster {
	t.Helper()
	rc := &recordedCluster{sql: startReplayServer(t)}
	rc.sql.answer(StmtShowLeaves, "healthy_leaves.json")
	rc.sql.answer(StmtShowAggregators, "healthy_aggregators.json")
	rc.sql.answer(StmtClusterStatus, "show_cluster_status_8x.json")
	rc.sql.answer(StmtShowDatabases, "healthy_databases.json")
	rc.sql.answer(StmtBackupHistory, "healthy_backups.json")
	rc.sql.answer(StmtLeafDetection, "variable_select.json")
	for _, db := range []string{"sales", "we`b"} {
		rc.sql.answer(ExplainRestoreRedundancyStmt(db), "explain_rebalance_empty.json")
		rc.sql.answer(ExplainRebalanceStmt(db), "explain_rebalance_empty.json")
	}
	data, err := os.ReadFile(filepath.Join("testdata", "listnodes", "healthy.json"))
	if err != nil {
		t.Fatal(err)
	}
	rc.listNodes = data
	rc.ssh = startSSHServer(t, func(s *execSession) {
		if s.Cmd != "sdb-admin list-nodes --json" {
			s.Exit(64)
			return
		}
		rc.mu.Lock()
		out, code, hold := rc.listNodes, rc.listCode, rc.listHold
		rc.mu.Unlock()
		if hold != nil {
			ctx, cancel := context.WithCancel(context.Background())
			go func() { <-s.Closed; cancel() }()
			hold(ctx)
			cancel()
		}
		s.Stdout.Write(out)
		s.Exit(code)
	})
	return rc
}

func (rc *recordedCluster) preflighter(t *testing.T, edit func(*PreflightOptions)) *Preflighter {
	t.Helper()
	opts := PreflightOptions{
		Cluster:      "prod",
		SQL:          rc.sql.client(t, nil),
		Admin:        &SDBAdmin{Runner: newRunner(t, rc.ssh.options())},
		BackupRecent: 24 * time.Hour,
		Clock:        func() time.Time { return now },
	}
	if edit != nil {
		edit(&opts)
	}
	return NewPreflighter(opts)
}

// barrier returns a hold function that keeps each caller waiting until n
// callers are waiting at once (or their context ends).
func barrier(n int) func(ctx context.Context) {
	var mu sync.Mutex
	count := 0
	all := make(chan struct{})
	return func(ctx context.Context) {
		mu.Lock()
		count++
		if count == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-ctx.Done():
		}
	}
}

type extraCheck struct {
	name  string
	check runbook.Check
}

func (x extraCheck) Name() string                      { return x.name }
func (x extraCheck) Run(context.Context) runbook.Check { return x.check }

func TestPreflightReport(t *testing.T) {
	t.Parallel()
	rc := newRecordedCluster(t)
	p := rc.preflighter(t, func(o *PreflightOptions) {
		o.Extra = []ExtraCheck{extraCheck{name: runbook.CheckPackagesVerified, check: runbook.Check{Status: runbook.Pass, Detail: "2 packages verified"}}}
	})
	rep, err := p.Preflight(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Cluster != "prod" || !rep.At.Equal(now) || !rep.LeafFailureDetection {
		t.Errorf("report %+v", rep)
	}
	if !reflect.DeepEqual(rep.Databases, []string{"sales", "we`b"}) {
		t.Errorf("databases %q", rep.Databases)
	}
	if len(rep.Nodes) != 4 || rep.Nodes[0].Role != runbook.RoleMaster {
		t.Errorf("nodes %+v", rep.Nodes)
	}
	var names []string
	for _, c := range rep.Checks {
		names = append(names, c.Name)
		if c.Status != runbook.Pass {
			t.Errorf("%s %s: %s", c.Name, c.Status, c.Detail)
		}
	}
	want := []string{"leaves_online", "aggregators_online", "no_orphan_partitions", "nodes_match_toolbox",
		"restore_redundancy_plan", "rebalance_plan", "recent_backup", "packages_verified"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("checks %q, want %q", names, want)
	}
}

// Every statement and list-nodes are in flight at the same time: each is
// held until all of them have arrived, so preflight would time out if any
// waited for another. From the second run on, the EXPLAINs of the
// databases already known go out together with SHOW DATABASES.
func TestPreflightRunsEverythingAtOnce(t *testing.T) {
	t.Parallel()
	rc := newRecordedCluster(t)
	p := rc.preflighter(t, nil)
	cold := []string{StmtShowLeaves, StmtShowAggregators, StmtClusterStatus, StmtShowDatabases, StmtBackupHistory, StmtLeafDetection}
	hold := func(stmts []string, n int) {
		h := barrier(n)
		for _, s := range stmts {
			a := rc.sql.get(s)
			a.hold = h
			rc.sql.set(s, a)
		}
		rc.mu.Lock()
		rc.listHold = h
		rc.mu.Unlock()
	}
	hold(cold, len(cold)+1)
	if _, err := p.Preflight(testCtx(t)); err != nil {
		t.Fatalf("first run: %v", err)
	}
	warm := append(cold,
		ExplainRestoreRedundancyStmt("sales"), ExplainRebalanceStmt("sales"),
		ExplainRestoreRedundancyStmt("we`b"), ExplainRebalanceStmt("we`b"))
	hold(warm, len(warm)+1)
	rep, err := p.Preflight(testCtx(t))
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if !rep.OK {
		t.Errorf("report %+v", rep.Checks)
	}
}

// Seeded with the databases of the last run in the store, the very first
// preflight already runs everything at once.
func TestPreflightSeededRunsEverythingAtOnceTheFirstTime(t *testing.T) {
	t.Parallel()
	rc := newRecordedCluster(t)
	p := rc.preflighter(t, func(o *PreflightOptions) { o.KnownDatabases = []string{"sales", "we`b", "memsql"} })
	all := []string{StmtShowLeaves, StmtShowAggregators, StmtClusterStatus, StmtShowDatabases, StmtBackupHistory, StmtLeafDetection,
		ExplainRestoreRedundancyStmt("sales"), ExplainRebalanceStmt("sales"),
		ExplainRestoreRedundancyStmt("we`b"), ExplainRebalanceStmt("we`b")}
	h := barrier(len(all) + 1)
	for _, s := range all {
		a := rc.sql.get(s)
		a.hold = h
		rc.sql.set(s, a)
	}
	rc.mu.Lock()
	rc.listHold = h
	rc.mu.Unlock()
	rep, err := p.Preflight(testCtx(t))
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	if !rep.OK {
		t.Errorf("report %+v", rep.Checks)
	}
}

// A database created between runs is explained as soon as SHOW DATABASES
// names it; one dropped between runs is not reported, even though its
// early EXPLAIN failed.
func TestPreflightFollowsDatabaseChanges(t *testing.T) {
	t.Parallel()
	rc := newRecordedCluster(t)
	p := rc.preflighter(t, nil)
	if _, err := p.Preflight(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	rc.sql.set(StmtShowDatabases, replayAnswer{result: &recorded{Statement: StmtShowDatabases, Columns: []string{"Database"}, Rows: [][]*string{{ptr("sales")}, {ptr("new db")}}}})
	rc.sql.set(ExplainRestoreRedundancyStmt("we`b"), replayAnswer{errNum: 1049, errMsg: "Unknown database 'we`b'"})
	rc.sql.set(ExplainRebalanceStmt("we`b"), replayAnswer{errNum: 1049, errMsg: "Unknown database 'we`b'"})
	rc.sql.answer(ExplainRestoreRedundancyStmt("new db"), "explain_restore_redundancy_8.1.json")
	rc.sql.answer(ExplainRebalanceStmt("new db"), "explain_rebalance_empty.json")
	rep, err := p.Preflight(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Databases, []string{"sales", "new db"}) {
		t.Errorf("databases %q", rep.Databases)
	}
	c := byName(rep.Checks)[runbook.CheckRestoreRedundancyPlan]
	if c.Status != runbook.Warn || !strings.Contains(c.Detail, "`new db`: 2 step(s) (COPY PARTITION FORCE)") {
		t.Errorf("restore_redundancy_plan %+v", c)
	}
	if c := byName(rep.Checks)[runbook.CheckRecentBackup]; !strings.Contains(c.Detail, "`new db` never") {
		t.Errorf("recent_backup %+v", c)
	}
}

func ptr(s string) *string { return &s }

// What cannot be read is an error that says why, not a failing check; the
// reason is the first real failure, not the cancellation it caused.
func TestPreflightCannotDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		break_ func(rc *recordedCluster)
		want   []string
	}{
		{"missing column", func(rc *recordedCluster) { rc.sql.answer(StmtClusterStatus, "show_cluster_status_no_role.json") },
			[]string{"SHOW CLUSTER STATUS returned no Role column"}},
		{"explain refused", func(rc *recordedCluster) {
			rc.sql.set(ExplainRebalanceStmt("we`b"), replayAnswer{errNum: 1706, errMsg: "Leaf Error: timed out"})
		}, []string{"EXPLAIN REBALANCE PARTITIONS ON `we``b`", "Leaf Error: timed out"}},
		{"list-nodes fails", func(rc *recordedCluster) {
			rc.listNodes, rc.listCode = []byte("Toolbox state file is locked\n"), 1
		}, []string{"sdb-admin list-nodes --json exited with status 1", "Toolbox state file is locked"}},
		{"host key changed", func(rc *recordedCluster) {
			other, _ := newSigner(rc.ssh.t)
			rc.ssh.writeKnownHosts(other.PublicKey())
		}, []string{"HOST KEY CHANGED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newRecordedCluster(t)
			tt.break_(rc)
			rep, err := rc.preflighter(t, nil).Preflight(testCtx(t))
			if err == nil {
				t.Fatalf("no error; report %+v", rep)
			}
			if errors.Is(err, context.Canceled) {
				t.Errorf("the error is a cancellation: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(runbook.ErrorMessage(err), w) {
					t.Errorf("message %q does not say %q", runbook.ErrorMessage(err), w)
				}
			}
		})
	}
}
