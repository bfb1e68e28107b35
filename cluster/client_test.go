package cluster

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// Each server version's result sets reach the typed results intact over
// the real protocol, NULLs included.
func TestClientReadsEachVersionOverTheWire(t *testing.T) {
	t.Parallel()
	versions := []struct {
		name                        string
		leaves, aggs, status, plans string
	}{
		{"5.x", "show_leaves_5x.json", "show_aggregators_8.0_example.json", "show_cluster_status_5x.json", "explain_rebalance_7.3.json"},
		{"7.x", "show_leaves_7.6.json", "show_aggregators_8.0_example.json", "show_cluster_status_7col.json", "explain_rebalance_7.5.json"},
		{"8.x", "show_leaves_8.5.json", "show_aggregators_9.1.json", "show_cluster_status_8x.json", "explain_restore_redundancy_8.1.json"},
		{"info schema names", "show_leaves_info_schema.json", "show_aggregators_role_only.json", "show_cluster_status_mv.json", "explain_rebalance_empty.json"},
	}
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			srv := startReplayServer(t)
			srv.answer(StmtShowLeaves, v.leaves)
			srv.answer(StmtShowAggregators, v.aggs)
			srv.answer(StmtClusterStatus, v.status)
			srv.answer(ExplainRebalanceStmt("sales"), v.plans)
			c := srv.client(t, nil)
			ctx := testCtx(t)

			leaves, err := c.ShowLeaves(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := parseLeaves(loadTable(t, v.leaves)); !reflect.DeepEqual(leaves, want) {
				t.Errorf("leaves over the wire %+v\nfrom the recording %+v", leaves, want)
			}
			aggs, err := c.ShowAggregators(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := parseAggregators(loadTable(t, v.aggs)); !reflect.DeepEqual(aggs, want) {
				t.Errorf("aggregators over the wire %+v\nfrom the recording %+v", aggs, want)
			}
			status, err := c.ClusterStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := parseClusterStatus(loadTable(t, v.status)); !reflect.DeepEqual(status, want) {
				t.Errorf("cluster status over the wire %+v\nfrom the recording %+v", status, want)
			}
			plan, err := c.ExplainRebalance(ctx, "sales")
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := parsePlan(loadTable(t, v.plans)); !reflect.DeepEqual(plan, want) {
				t.Errorf("plan over the wire %+v\nfrom the recording %+v", plan, want)
			}
		})
	}
}

// Database names with backticks, quotes, spaces and non-ASCII reach the
// server quoted, as plain text: no statement is ever prepared (the replay
// server fails the test if one is).
func TestClientQuotesNamesAndNeverPrepares(t *testing.T) {
	t.Parallel()
	srv := startReplayServer(t)
	names := []string{"we`b", `it's "q"`, "with space", "Müller_数据"}
	for _, db := range names {
		srv.answer(ExplainRestoreRedundancyStmt(db), "explain_rebalance_empty.json")
		srv.answer(ExplainRebalanceStmt(db), "explain_rebalance_empty.json")
		srv.set(SnapshotStmt(db), replayAnswer{})
		srv.set(SyncSnapshotStmt(db), replayAnswer{})
		stmt, err := BackupStmt(db, "/backups/nightly")
		if err != nil {
			t.Fatal(err)
		}
		srv.set(stmt, replayAnswer{})
	}
	srv.set("SET GLOBAL leaf_failure_detection = OFF", replayAnswer{})
	c := srv.client(t, nil)
	ctx := testCtx(t)
	for _, db := range names {
		if _, err := c.ExplainRestoreRedundancy(ctx, db); err != nil {
			t.Error(err)
		}
		if _, err := c.ExplainRebalance(ctx, db); err != nil {
			t.Error(err)
		}
		if err := c.Snapshot(ctx, db); err != nil {
			t.Error(err)
		}
		if err := c.SyncSnapshot(ctx, db); err != nil {
			t.Error(err)
		}
		if err := c.Backup(ctx, db, "/backups/nightly"); err != nil {
			t.Error(err)
		}
	}
	if err := c.SetLeafFailureDetection(ctx, false); err != nil {
		t.Error(err)
	}
	for _, want := range []string{
		"EXPLAIN RESTORE REDUNDANCY ON `we``b`",
		"EXPLAIN REBALANCE PARTITIONS ON `it's \"q\"`",
		"SNAPSHOT DATABASE `with space`",
		"_SYNC_SNAPSHOT `Müller_数据`",
		"BACKUP DATABASE `we``b` TO \"/backups/nightly\"",
		"SET GLOBAL leaf_failure_detection = OFF",
	} {
		if !srv.hasStatement(want) {
			t.Errorf("the server never received %s; it got %q", want, srv.statements())
		}
	}
}

func TestClientBackupRefusesUnquotableTarget(t *testing.T) {
	t.Parallel()
	srv := startReplayServer(t)
	c := srv.client(t, nil)
	err := c.Backup(testCtx(t), "sales", `/backups" TO S3 "evil`)
	if runbook.ErrorKind(err) != runbook.Invalid || !strings.Contains(err.Error(), "cannot be quoted safely") {
		t.Fatalf("got %v", err)
	}
	if n := len(srv.statements()); n != 0 {
		t.Errorf("%d statements sent", n)
	}
}

func TestClientDatabasesAndBackups(t *testing.T) {
	t.Parallel()
	srv := startReplayServer(t)
	srv.answer(StmtShowDatabases, "show_databases.json")
	srv.answer(StmtBackupHistory, "mv_backup_history.json")
	c := srv.client(t, nil)
	dbs, err := c.Databases(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sales", "we`b", `it's "q"`, "with space", "Müller_数据", "cluster_backup"}; !reflect.DeepEqual(dbs, want) {
		t.Errorf("got %q, want %q", dbs, want)
	}
	latest, err := c.LatestBackups(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 2 || !latest["sales"].Equal(time.Date(2024, 5, 2, 3, 10, 0, 123456000, time.UTC)) {
		t.Errorf("got %v", latest)
	}
}

func TestClientLeafFailureDetection(t *testing.T) {
	t.Parallel()
	srv := startReplayServer(t)
	srv.answer(StmtLeafDetection, "variable_select.json")
	c := srv.client(t, nil)
	if on, err := c.LeafFailureDetection(testCtx(t)); err != nil || !on {
		t.Errorf("SELECT @@: got %v, %v", on, err)
	}

	// A server that refuses SELECT @@GLOBAL is asked with SHOW VARIABLES.
	old := startReplayServer(t)
	old.answer(StmtLeafDetection2, "variable_show.json")
	c = old.client(t, nil)
	if on, err := c.LeafFailureDetection(testCtx(t)); err != nil || on {
		t.Errorf("SHOW VARIABLES: got %v, %v", on, err)
	}
	if got := old.statements(); !reflect.DeepEqual(got, []string{StmtLeafDetection, StmtLeafDetection2}) {
		t.Errorf("statements %q", got)
	}
}

func TestClientMissingColumnIsAnError(t *testing.T) {
	t.Parallel()
	srv := startReplayServer(t)
	srv.answer(StmtShowLeaves, "show_leaves_no_state.json")
	c := srv.client(t, nil)
	_, err := c.ShowLeaves(testCtx(t))
	if runbook.ErrorKind(err) != runbook.Unavailable {
		t.Fatalf("got %v", err)
	}
	msg := runbook.ErrorMessage(err)
	for _, want := range []string{srv.Addr, "SHOW LEAVES", "no State column"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not name %q", msg, want)
		}
	}
}

func TestClientErrorsSayWhy(t *testing.T) {
	t.Parallel()
	srv := startReplayServer(t)
	srv.set(SnapshotStmt("sales"), replayAnswer{errNum: 1706, errMsg: "Feature 'SNAPSHOT' is not supported by MemSQL"})
	srv.set(StmtShowLeaves, replayAnswer{hold: func(ctx context.Context) { <-ctx.Done() }})

	c := srv.client(t, nil)
	err := c.Snapshot(testCtx(t), "sales")
	if msg := runbook.ErrorMessage(err); !strings.Contains(msg, "SNAPSHOT DATABASE `sales` on "+srv.Addr+": server error 1706: Feature 'SNAPSHOT' is not supported") {
		t.Errorf("server error: %q", msg)
	}
	if _, err := c.ShowAggregators(testCtx(t)); !strings.Contains(runbook.ErrorMessage(err), "server error 1064") {
		t.Errorf("unknown statement: %v", err)
	}

	slow := srv.client(t, func(o *SQLOptions) { o.StatementTimeout = 50 * time.Millisecond })
	_, err = slow.ShowLeaves(testCtx(t))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(runbook.ErrorMessage(err), "SHOW LEAVES on "+srv.Addr+": no answer within 50ms") {
		t.Errorf("timeout: %v", err)
	}

	wrong := srv.client(t, func(o *SQLOptions) { o.Password = "wrong" })
	err = wrong.Ping(testCtx(t))
	if !strings.Contains(runbook.ErrorMessage(err), `access denied for user "sdbmaint"`) || runbook.ErrorKind(err) != runbook.Unavailable {
		t.Errorf("bad password: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	c, err = NewClient(SQLOptions{Addr: closed, User: "u"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Ping(testCtx(t))
	if !strings.Contains(runbook.ErrorMessage(err), "SELECT 1 on "+closed+": connection refused") {
		t.Errorf("refused: %v", err)
	}
}

func TestNewClientChecksOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []SQLOptions{{Addr: "10.0.0.1", User: "u"}, {Addr: "", User: "u"}, {Addr: "h:3306"}} {
		if _, err := NewClient(o); runbook.ErrorKind(err) != runbook.Invalid {
			t.Errorf("NewClient(%+v) = %v", o, err)
		}
	}
}

// The pool gives every concurrent statement its own connection: the
// server holds each statement until all of them are in flight at once, so
// a client that queued them would time out here.
func TestClientRunsStatementsConcurrently(t *testing.T) {
	t.Parallel()
	const n = 12
	srv := startReplayServer(t)
	var mu sync.Mutex
	inFlight := 0
	all := make(chan struct{})
	srv.set(StmtPing, replayAnswer{hold: func(ctx context.Context) {
		mu.Lock()
		inFlight++
		if inFlight == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-ctx.Done():
		}
	}})
	c := srv.client(t, func(o *SQLOptions) { o.MaxConns = n })
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.Ping(testCtx(t))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
