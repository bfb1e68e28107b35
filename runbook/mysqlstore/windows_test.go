package mysqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook/mysqlstore"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
	"github.com/sdbmaint/sdbmaint/runbook/windows/windowstest"
)

func openWindows(t *testing.T, dsn string) *mysqlstore.WindowStore {
	t.Helper()
	s := open(t, dsn)
	t.Cleanup(func() { s.Close() })
	ws, err := s.Windows(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func TestWindowStoreConformance(t *testing.T) {
	server(t)
	windowstest.TestStore(t, func(t *testing.T) windows.Store {
		return openWindows(t, freshDatabase(t))
	})
}

// Two replicas claim the same firings: exactly one wins each, and the
// tables are migrated once however many replicas open them.
func TestWindowStoreTwoReplicas(t *testing.T) {
	t.Parallel()
	dsn := freshDatabase(t)
	a, b := openWindows(t, dsn), openWindows(t, dsn)
	ctx := context.Background()
	start := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	for i := range 10 {
		st := start.Add(time.Duration(i) * 7 * 24 * time.Hour)
		f := windows.Firing{Key: windows.FiringKey("w-1", st, windows.KindStart, 0), WindowID: "w-1", Cluster: "prod",
			Start: st, Kind: windows.KindStart, Due: st, Plan: windows.PlanPerform, ClaimedAt: st}
		var wg sync.WaitGroup
		wins := make([]bool, 2)
		for j, s := range []*mysqlstore.WindowStore{a, b} {
			wg.Go(func() {
				g := f
				g.Owner = []string{"a", "b"}[j]
				won, cur, err := s.Claim(ctx, g)
				if err != nil {
					t.Errorf("claim: %v", err)
				}
				if !won && cur.Owner == g.Owner {
					t.Errorf("lost the claim to itself: %+v", cur)
				}
				wins[j] = won
			})
		}
		wg.Wait()
		if wins[0] == wins[1] {
			t.Fatalf("occurrence %d: wins %v, want exactly one", i, wins)
		}
	}
	c := openWindows(t, dsn)
	if f, err := c.Firing(ctx, windows.FiringKey("w-1", start, windows.KindStart, 0)); err != nil || f == nil {
		t.Fatalf("claim not visible through a third replica: %v, %v", f, err)
	}
}
