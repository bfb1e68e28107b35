package runbook_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/runbooktest"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
)

// Fixed per-node durations of the benchmark's simulated cluster.
const (
	benchStop     = 200 * time.Millisecond
	benchStart    = 200 * time.Millisecond
	benchRecovery = 500 * time.Millisecond
	benchCAs      = 4
	benchLeaves   = 32
)

// BenchmarkMaintenance takes a sim of 1 MA + 4 child aggregators + 32
// leaves through the whole runbook (every gate auto-approved) and reports
// the time from the start of the stop phase to the MA answering SQL
// again, divided by the floor: per tier the slowest node's operation (MA,
// CAs, leaves to stop; leaves, CAs, MA to start) plus the leaves'
// recovery. Beside it: the same with leaves one at a time, and what doing
// every node one by one would take.
func BenchmarkMaintenance(b *testing.B) {
	floor := 3*benchStop + 3*benchStart + benchRecovery
	serial := (1+benchCAs+benchLeaves)*(benchStop+benchStart) + benchLeaves*benchRecovery
	for _, tc := range []struct {
		name        string
		parallelism int
	}{{"Parallel", 0}, {"LeavesOneByOne", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				b.StopTimer()
				sc := runbooktest.StartSim(b, runbooktest.Options{
					Sim: sim.Options{Aggregators: benchCAs, Leaves: benchLeaves, StopTime: benchStop, StartTime: benchStart, RecoveryTime: benchRecovery},
					AutoApprove: []runbook.PhaseName{runbook.PhaseBackup, runbook.PhaseSnapshot, runbook.PhaseSyncSnapshot,
						runbook.PhaseStop, runbook.PhaseMaintenance, runbook.PhaseStart},
					Parallelism:     tc.parallelism,
					RecoveryTimeout: time.Minute,
				})
				store, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
				if err != nil {
					b.Fatal(err)
				}
				eng := runbook.NewEngine(runbook.EngineConfig{Store: store, Clusters: sc.Source()})
				sub := eng.Subscribe()
				b.StartTimer()
				if _, err := eng.Start(context.Background(), runbook.StartRequest{Cluster: "sim", By: "bench"}); err != nil {
					b.Fatal(err)
				}
				r := runbooktest.Await(b, sub, 5*time.Minute, "the end of the run", runbooktest.Finished).Run
				b.StopTimer()
				if r.Status != runbook.RunSucceeded {
					b.Fatalf("run ended %s: %s", r.Status, r.Note)
				}
				if v := sc.Sim.Violations(); len(v) > 0 {
					b.Fatalf("violations: %+v", v)
				}
				total += r.UpAt.Sub(r.Phase(runbook.PhaseStop).StartedAt)
				sub.Close()
				eng.Drain(context.Background())
				store.Close()
			}
			wall := total / time.Duration(b.N)
			b.ReportMetric(float64(wall.Milliseconds()), "wall-ms")
			b.ReportMetric(float64(floor.Milliseconds()), "floor-ms")
			b.ReportMetric(float64(wall)/float64(floor), "wall/floor")
			b.ReportMetric(float64(serial.Milliseconds()), "one-by-one-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
