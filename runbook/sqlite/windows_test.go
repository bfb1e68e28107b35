package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
	"github.com/sdbmaint/sdbmaint/runbook/windows/windowstest"
)

func openWindows(t *testing.T, path string) *sqlite.WindowStore {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ws, err := s.Windows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func TestWindowStoreConformance(t *testing.T) {
	t.Parallel()
	windowstest.TestStore(t, func(t *testing.T) windows.Store {
		return openWindows(t, filepath.Join(t.TempDir(), "sdbmaint.db"))
	})
}

// TestWindowStoreTwoProcesses claims the same firing through two handles on
// one file, as two bot processes would: exactly one wins, and the windows
// table is migrated once however many times it is opened.
func TestWindowStoreTwoProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sdbmaint.db")
	a, b := openWindows(t, path), openWindows(t, path)
	ctx := context.Background()
	start := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	for i := range 10 {
		st := start.Add(time.Duration(i) * 7 * 24 * time.Hour)
		f := windows.Firing{Key: windows.FiringKey("w-1", st, windows.KindStart, 0), WindowID: "w-1", Cluster: "prod",
			Start: st, Kind: windows.KindStart, Due: st, Plan: windows.PlanPerform, ClaimedAt: st}
		var (
			wg   sync.WaitGroup
			wins = make([]bool, 2)
		)
		for j, s := range []*sqlite.WindowStore{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g := f
				g.Owner = []string{"a", "b"}[j]
				won, _, err := s.Claim(ctx, g)
				if err != nil {
					t.Errorf("claim: %v", err)
				}
				wins[j] = won
			}()
		}
		wg.Wait()
		if wins[0] == wins[1] {
			t.Fatalf("occurrence %d: wins %v, want exactly one", i, wins)
		}
	}
	c := openWindows(t, path) // a third open migrates nothing and sees the claims
	if f, err := c.Firing(ctx, windows.FiringKey("w-1", start, windows.KindStart, 0)); err != nil || f == nil {
		t.Fatalf("claim not visible through a third handle: %v, %v", f, err)
	}
}
