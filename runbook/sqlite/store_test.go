package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/internal/sqlstore/sqlstoretest"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
	"github.com/sdbmaint/sdbmaint/runbook/storetest"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.RunConformance(t, func(t *testing.T) runbook.Store {
		return open(t, filepath.Join(t.TempDir(), "sdbmaint.db"))
	})
}

// TestSharedSQL checks what the conformance suite leaves to the SQL the
// stores share: rows past one INSERT, refusals' messages.
func TestSharedSQL(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "sdbmaint.db"))
	defer s.Close()
	sqlstoretest.Run(t, s)
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "sdbmaint.db"))
	defer s.Close()
	ctx := context.Background()
	for _, tc := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
		{"synchronous", "2"}, // FULL
	} {
		var got string
		if err := s.DB().QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if !strings.EqualFold(got, tc.want) {
			t.Errorf("PRAGMA %s = %q, want %q", tc.pragma, got, tc.want)
		}
	}
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sdbmaint.db")
	s := open(t, path)
	v, err := s.SchemaVersion(ctx, "runbook")
	if err != nil || v != 1 {
		t.Fatalf("runbook schema version = %d, %v; want 1", v, err)
	}
	// Another component (the window scheduler) adds its tables to the file.
	windows := []string{
		`CREATE TABLE windows (id TEXT PRIMARY KEY, cluster TEXT NOT NULL)`,
		`ALTER TABLE windows ADD COLUMN schedule TEXT NOT NULL DEFAULT ''`,
	}
	if err := s.Migrate(ctx, "windows", windows[:1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx, "windows", windows); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO windows (id, cluster, schedule) VALUES ('w1', 'prod', '0 2 * * SUN')`); err != nil {
		t.Fatalf("windows table after two migrations: %v", err)
	}
	s.Close()

	// Reopening migrates nothing twice.
	s = open(t, path)
	if v, _ := s.SchemaVersion(ctx, "windows"); v != 2 {
		t.Fatalf("windows schema version after reopen = %d, want 2", v)
	}
	// An older program that knows fewer steps refuses the newer file.
	err = s.Migrate(ctx, "windows", windows[:1])
	if err == nil || !strings.Contains(err.Error(), "newer sdbmaint") {
		t.Fatalf("migrating a newer file back: err %v, want a refusal that asks for a newer sdbmaint", err)
	}
	s.Close()
}

func TestAuditIsAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "sdbmaint.db"))
	defer s.Close()
	if err := s.AppendAudit(ctx, runbook.Audit{RunID: "r", Who: "U1", What: "approve"}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{`UPDATE audit SET who = 'someone else'`, `DELETE FROM audit`} {
		if _, err := s.DB().ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err %v, want the append-only refusal", stmt, err)
		}
	}
}

func TestBadPath(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "a?b.db", filepath.Join(t.TempDir(), "missing-dir", "x.db")} {
		if s, err := sqlite.Open(context.Background(), p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
}

// Runs started on a whole second and half a second later must come back in
// time order: stored times sort as text.
func TestHistoryOrdersWholeSecondsCorrectly(t *testing.T) {
	ctx := context.Background()
	st := open(t, filepath.Join(t.TempDir(), "s.db"))
	defer st.Close()
	base := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	for i, at := range []time.Time{base, base.Add(500 * time.Millisecond), base.Add(time.Second)} {
		r := runbook.NewRun(fmt.Sprintf("run%d", i), runbook.StartRequest{Cluster: "prod", By: "U1"}, &runbook.Cluster{Name: "prod"}, at)
		r.Status = runbook.RunEnded
		if _, err := st.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := st.History(ctx, "prod", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range runs {
		got = append(got, r.ID)
	}
	if want := "run2 run1 run0"; strings.Join(got, " ") != want {
		t.Fatalf("history order = %v, want %s", got, want)
	}
}
