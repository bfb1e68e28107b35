package mysqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sdbmaint/sdbmaint/bot"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/internal/sqlstore/sqlstoretest"
	"github.com/sdbmaint/sdbmaint/runbook/mysqlstore"
	"github.com/sdbmaint/sdbmaint/runbook/storetest"
)

// The tests run against a real MySQL-compatible server: the local MariaDB
// that .ci/run starts (root without a password on 127.0.0.1:3306), or the
// server SDBMAINT_TEST_MYSQL_DSN names (a DSN without a database: each test
// creates its own sdbmaint_test_* database and drops it afterwards).

const defaultServerDSN = "root@tcp(127.0.0.1:3306)/"

func serverDSN() string {
	if dsn := os.Getenv("SDBMAINT_TEST_MYSQL_DSN"); dsn != "" {
		return dsn
	}
	return defaultServerDSN
}

var (
	serverOnce sync.Once
	serverDB   *sql.DB
	serverErr  error
)

// server returns a connection to the server without a database, or skips
// the test when no server answers.
func server(t testing.TB) *sql.DB {
	t.Helper()
	serverOnce.Do(func() {
		cfg, err := mysql.ParseDSN(serverDSN())
		if err != nil {
			serverErr = err
			return
		}
		cfg.Timeout = 3 * time.Second
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			serverErr = err
			return
		}
		serverDB = sql.OpenDB(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		serverErr = serverDB.PingContext(ctx)
	})
	if serverErr != nil {
		t.Skipf("no MySQL-compatible server at %s (set SDBMAINT_TEST_MYSQL_DSN, or start MariaDB as .ci/run does): %v", redact(serverDSN()), serverErr)
	}
	return serverDB
}

func redact(dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "an unparsable DSN"
	}
	return cfg.User + "@" + cfg.Addr
}

// freshDatabase creates an empty database for one test, drops it when the
// test ends, and returns a DSN for it.
func freshDatabase(t testing.TB) string {
	t.Helper()
	db := server(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "sdbmaint_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP DATABASE `"+name+"`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	cfg, err := mysql.ParseDSN(serverDSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = name
	return cfg.FormatDSN()
}

func open(t testing.TB, dsn string) *mysqlstore.Store {
	t.Helper()
	s, err := mysqlstore.Open(context.Background(), dsn, mysqlstore.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	server(t)
	storetest.RunConformance(t, func(t *testing.T) runbook.Store {
		return open(t, freshDatabase(t))
	})
}

// TestSharedSQL checks what the conformance suite leaves to the SQL the
// stores share: rows past one INSERT, refusals' messages.
func TestSharedSQL(t *testing.T) {
	t.Parallel()
	s := open(t, freshDatabase(t))
	defer s.Close()
	sqlstoretest.Run(t, s)
}

// Two bot replicas on one database: the database, not either process,
// decides who opens the run and whose click approves the gate.
func TestReplicasShareOneDatabase(t *testing.T) {
	t.Parallel()
	dsn := freshDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	replicas := []*mysqlstore.Store{a, b}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var opened []string
	for i := range 10 {
		wg.Go(func() {
			run := newRun(fmt.Sprintf("run%d", i), "prod")
			existing, err := replicas[i%2].CreateRun(ctx, run)
			if err != nil {
				t.Errorf("CreateRun %s: %v", run.ID, err)
				return
			}
			if existing == nil {
				mu.Lock()
				opened = append(opened, run.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(opened) != 1 {
		t.Fatalf("runs opened on one cluster by two replicas: %v", opened)
	}
	id := opened[0]
	// Each replica reads the run the other opened.
	run, err := b.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if open, err := a.OpenRun(ctx, "prod"); err != nil || open == nil || open.ID != id {
		t.Fatalf("OpenRun on the other replica: %v, %v", open, err)
	}

	// Clicks on the same gate arrive at both replicas at once: one wins.
	var won []string
	for i := range 20 {
		wg.Go(func() {
			next := run.Clone()
			next.Version++
			who := fmt.Sprintf("U%02d", i)
			next.Phase(runbook.PhaseBackup).Approval = &runbook.Approval{By: who, At: time.Now(), Action: runbook.ActApprove}
			err := replicas[i%2].UpdateRun(ctx, runbook.Update{Run: next, Prev: run.Version, Approval: runbook.PhaseBackup,
				Audit: []runbook.Audit{{At: time.Now(), RunID: id, Cluster: "prod", Phase: runbook.PhaseBackup, Who: who, What: "approve"}}})
			switch runbook.ErrorKind(err) {
			case "":
				mu.Lock()
				won = append(won, who)
				mu.Unlock()
			case runbook.Conflict:
			default:
				t.Errorf("UpdateRun by %s: %v", who, err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("approvals that won: %v", won)
	}
	audit, err := b.Audit(ctx, id)
	if err != nil || len(audit) != 1 || audit[0].Who != won[0] {
		t.Fatalf("audit %+v, %v; want one line by %s", audit, err, won[0])
	}

	// A replica whose idea of the run is stale (the other wrote since)
	// writes the whole run, not just what it thinks changed.
	cur, err := a.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	next := cur.Clone()
	next.Version++
	next.Phase(runbook.PhaseBackup).Steps[0].Status = runbook.StepDone
	if err := b.UpdateRun(ctx, runbook.Update{Run: next, Prev: cur.Version}); err != nil {
		t.Fatal(err)
	}
	later := next.Clone()
	later.Version++
	later.Phase(runbook.PhaseBackup).Steps[0].Evidence = "BACKUP DATABASE took 3s"
	if err := a.UpdateRun(ctx, runbook.Update{Run: later, Prev: next.Version}); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st := got.Phase(runbook.PhaseBackup).Steps[0]; st.Status != runbook.StepDone || st.Evidence != "BACKUP DATABASE took 3s" {
		t.Fatalf("step after writes by both replicas: %+v", st)
	}
}

// newRun is a fresh run with a plan, as the engine creates one.
func newRun(id, cluster string) *runbook.Run {
	r := runbook.NewRun(id, runbook.StartRequest{Cluster: cluster, By: "U0START"},
		&runbook.Cluster{Name: cluster, BackupTo: "/backups"}, time.Now())
	r.Phase(runbook.PhaseBackup).Steps = []*runbook.Step{{ID: "backup/sales", Phase: runbook.PhaseBackup, Kind: runbook.StepBackup,
		Target: "sales", Label: "BACKUP DATABASE `sales`", Status: runbook.StepPending}}
	return r
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	dsn := freshDatabase(t)
	ctx := context.Background()

	// Replicas starting at once migrate one after the other.
	var wg sync.WaitGroup
	stores := make([]*mysqlstore.Store, 4)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = mysqlstore.Open(ctx, dsn, mysqlstore.Options{}) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, s := range stores {
		defer s.Close()
	}
	s := stores[0]
	if v, err := s.SchemaVersion(ctx, "runbook"); err != nil || v != 1 {
		t.Fatalf("runbook schema version %d, %v; want 1", v, err)
	}

	// The bot keeps its card locations in the same database.
	cards, err := bot.NewSQLCardStore(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := cards.SaveCard(ctx, "r1", "C1", "1.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := bot.NewSQLCardStore(ctx, stores[1]); err != nil {
		t.Fatalf("card store opened a second time: %v", err)
	}
	if ch, ts, err := cards.LoadCard(ctx, "r1"); err != nil || ch != "C1" || ts != "1.2" {
		t.Fatalf("LoadCard = %q, %q, %v", ch, ts, err)
	}

	// A database migrated by a newer sdbmaint is refused.
	if err := s.Migrate(ctx, "runbook", nil); err == nil || !strings.Contains(err.Error(), "use a newer sdbmaint") {
		t.Fatalf("older schema list: %v", err)
	}
	// A step that fails leaves the version where it was.
	err = s.Migrate(ctx, "extra", []string{"CREATE TABLE IF NOT EXISTS extra_a (id INT PRIMARY KEY);", "CREATE TABLE nonsense ((;"})
	if err == nil || !strings.Contains(err.Error(), "migrate extra to version 2") {
		t.Fatalf("broken step: %v", err)
	}
	if v, _ := s.SchemaVersion(ctx, "extra"); v != 1 {
		t.Fatalf("extra at version %d after a failed step 2, want 1", v)
	}
}

// Text the runbook stores comes back byte for byte: names that differ only
// in case or trailing space are different clusters, and long output lines
// are not cut.
func TestExactText(t *testing.T) {
	t.Parallel()
	s := open(t, freshDatabase(t))
	defer s.Close()
	ctx := context.Background()
	for _, c := range []string{"prod", "Prod", "PROD"} {
		if existing, err := s.CreateRun(ctx, newRun("run-"+c, c)); err != nil || existing != nil {
			t.Fatalf("CreateRun on %s: %v, %v", c, existing, err)
		}
	}
	long := strings.Repeat("ü", 40000) // 80 kB: more than a TEXT column holds
	c := runbook.Chunk{RunID: "run-prod", StepID: "backup/sales", At: time.Now(), Stream: "stdout", Line: long}
	if err := s.AppendOutput(ctx, c); err != nil {
		t.Fatal(err)
	}
	out, err := s.Output(ctx, "run-prod", "")
	if err != nil || len(out) != 1 || out[0].Line != long {
		t.Fatalf("long line read back: %d lines, %v", len(out), err)
	}
	// All or none: a batch with one line for an unknown run stores nothing.
	err = s.AppendOutput(ctx, runbook.Chunk{RunID: "run-prod", StepID: "x", Line: "kept?"}, runbook.Chunk{RunID: "nope", StepID: "x", Line: "x"})
	if runbook.ErrorKind(err) != runbook.Invalid {
		t.Fatalf("batch with an unknown run: %v", err)
	}
	if out, _ := s.Output(ctx, "run-prod", "x"); len(out) != 0 {
		t.Fatalf("half a batch was stored: %+v", out)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct{ dsn, want string }{
		{"root@tcp(127.0.0.1:3306)/", "names no database"},
		{"not a dsn", "mysql_dsn"},
		{"sdbmaint:hunter2-secret@tcp(127.0.0.1:1)/sdbmaint", "database sdbmaint on 127.0.0.1:1 as sdbmaint"},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := mysqlstore.Open(ctx, tt.dsn, mysqlstore.Options{})
		cancel()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%s): %v, want an error saying %q", redact(tt.dsn), err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}
