package main

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
)

// After a restart the cluster source seeds each Preflighter with the
// databases of the cluster's newest run, read from the store.
func TestClusterSourceSeedsDatabasesFromHistory(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	r := runbook.NewRun("run1", runbook.StartRequest{Cluster: "prod", By: "U1"}, &runbook.Cluster{Name: "prod"}, at)
	r.Preflight = &runbook.Report{Cluster: "prod", At: at, Databases: []string{"sales", "we`b"}}
	r.Status = runbook.RunSucceeded
	if _, err := st.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	src := newClusterSource(nil, nil)
	src.seedFromHistory(ctx, st)
	if got := src.known("prod"); !slices.Equal(got, []string{"sales", "we`b"}) {
		t.Errorf("known(prod) = %q, want the last run's databases", got)
	}
	if got := src.known("staging"); got != nil {
		t.Errorf("known(staging) = %q, want nothing for a cluster without runs", got)
	}
}
