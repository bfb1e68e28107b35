package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

// BenchmarkPreflight measures preflight against a simulated cluster whose
// every SQL statement takes 20ms (slow:20ms), side by side with the same
// statements and list-nodes run one after another. The metrics are ratios
// to the slowest single statement of the sequential run:
//
//	concurrent/slowest  preflight as the runbook runs it (the Preflighter
//	                    knows the databases from its previous run); target <= 1.3
//	cold/slowest        a new Preflighter, whose EXPLAINs must wait for
//	                    SHOW DATABASES: two rounds
//	sequential/slowest  the sum of all statements
//
// with the default two databases (13 statements) and with twenty (49).
//
// Run: go test -run '^$' -bench Preflight -benchtime 20x ./cluster/
func BenchmarkPreflight(b *testing.B) {
	for _, n := range []int{2, 20} {
		var dbs []string
		for i := range n {
			dbs = append(dbs, fmt.Sprintf("db%02d", i))
		}
		b.Run(fmt.Sprintf("databases=%d", n), func(b *testing.B) { benchmarkPreflight(b, dbs) })
	}
}

func benchmarkPreflight(b *testing.B, dbs []string) {
	const slow = 20 * time.Millisecond
	sc := startSim(b, sim.Options{Databases: dbs, Partitions: 4, Faults: []string{"slow:" + slow.String()}})
	ctx := context.Background()
	opts := PreflightOptions{Cluster: "sim", SQL: sc.sql, Admin: sc.admin, BackupRecent: 24 * time.Hour}
	// One run first: connections open, the SSH session up, the databases known.
	if _, err := sc.flight.Preflight(ctx); err != nil {
		b.Fatal(err)
	}
	var concurrent, cold, sequential, slowest time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := sc.flight.Preflight(ctx); err != nil {
			b.Fatal(err)
		}
		concurrent += time.Since(start)

		start = time.Now()
		if _, err := NewPreflighter(opts).Preflight(ctx); err != nil {
			b.Fatal(err)
		}
		cold += time.Since(start)

		sum, max, err := runSequentially(ctx, sc)
		if err != nil {
			b.Fatal(err)
		}
		sequential += sum
		slowest += max
	}
	b.ReportMetric(float64(concurrent)/float64(slowest), "concurrent/slowest")
	b.ReportMetric(float64(cold)/float64(slowest), "cold/slowest")
	b.ReportMetric(float64(sequential)/float64(slowest), "sequential/slowest")
	n := float64(b.N) * float64(time.Millisecond)
	b.ReportMetric(float64(slowest)/n, "slowest-ms")
	b.ReportMetric(float64(concurrent)/n, "concurrent-ms")
	b.ReportMetric(float64(sequential)/n, "sequential-ms")
}

// runSequentially runs preflight's statements and list-nodes one at a
// time and returns their total time and the slowest one's.
func runSequentially(ctx context.Context, sc *simCluster) (sum, slowest time.Duration, err error) {
	timed := func(f func() error) {
		if err != nil {
			return
		}
		start := time.Now()
		err = f()
		d := time.Since(start)
		sum += d
		slowest = max(slowest, d)
	}
	var dbs []string
	timed(func() (err error) { _, err = sc.sql.ShowLeaves(ctx); return })
	timed(func() (err error) { _, err = sc.sql.ShowAggregators(ctx); return })
	timed(func() (err error) { _, err = sc.sql.ClusterStatus(ctx); return })
	timed(func() (err error) { dbs, err = sc.sql.Databases(ctx); return })
	timed(func() (err error) { _, err = sc.sql.LeafFailureDetection(ctx); return })
	timed(func() (err error) { _, err = sc.sql.LatestBackups(ctx); return })
	timed(func() (err error) { _, err = sc.admin.ListNodes(ctx); return })
	for _, db := range dbs {
		timed(func() (err error) { _, err = sc.sql.ExplainRestoreRedundancy(ctx, db); return })
		timed(func() (err error) { _, err = sc.sql.ExplainRebalance(ctx, db); return })
	}
	return sum, slowest, err
}
