package cluster

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

// BenchmarkPreflight measures preflight against a simulated cluster whose
// every SQL statement takes 20ms (slow:20ms), side by side with the same
// statements and list-nodes run one after another. The metrics are the
// medians over iterations of ratios to the slowest single statement of the
// same iteration's sequential run:
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
	var concurrent, cold, sequential, slowest []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := sc.flight.Preflight(ctx); err != nil {
			b.Fatal(err)
		}
		concurrent = append(concurrent, time.Since(start))

		start = time.Now()
		if _, err := NewPreflighter(opts).Preflight(ctx); err != nil {
			b.Fatal(err)
		}
		cold = append(cold, time.Since(start))

		sum, max, err := runSequentially(ctx, sc)
		if err != nil {
			b.Fatal(err)
		}
		sequential = append(sequential, sum)
		slowest = append(slowest, max)
	}
	// Medians, not means: on a shared machine one stalled statement would
	// otherwise swing a ratio either way.
	b.ReportMetric(medianRatio(concurrent, slowest), "concurrent/slowest")
	b.ReportMetric(medianRatio(cold, slowest), "cold/slowest")
	b.ReportMetric(medianRatio(sequential, slowest), "sequential/slowest")
	b.ReportMetric(ms(median(slowest)), "slowest-ms")
	b.ReportMetric(ms(median(concurrent)), "concurrent-ms")
	b.ReportMetric(ms(median(sequential)), "sequential-ms")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// medianRatio is the median over iterations of a[i]/b[i].
func medianRatio(a, b []time.Duration) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = float64(a[i]) / float64(b[i])
	}
	slices.Sort(r)
	return r[len(r)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

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
