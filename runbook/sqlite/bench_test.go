package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// BenchmarkUpdateRun measures one compare-and-set write of a run the size
// of a 37-node maintenance (about 90 steps): the cost the engine pays for
// every step that starts or finishes.
func BenchmarkUpdateRun(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "bench.db"))
	defer s.Close()
	ctx := context.Background()
	r := runbook.NewRun("bench", runbook.StartRequest{Cluster: "prod", By: "U1"}, &runbook.Cluster{Name: "prod"}, time.Now())
	for _, name := range []runbook.PhaseName{runbook.PhaseStop, runbook.PhaseStart} {
		p := r.Phase(name)
		for i := range 45 {
			p.Steps = append(p.Steps, &runbook.Step{ID: fmt.Sprintf("%s/%040X", name, i), Phase: name, Kind: runbook.StepStopNode,
				Role: runbook.RoleLeaf, Target: fmt.Sprintf("%040X", i), Label: "stop leaf", Status: runbook.StepPending})
		}
	}
	if _, err := s.CreateRun(ctx, r); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		next := r.Clone()
		next.Version++
		next.Phase(runbook.PhaseStop).Steps[i%45].Attempts++
		if err := s.UpdateRun(ctx, runbook.Update{Run: next, Prev: r.Version}); err != nil {
			b.Fatal(err)
		}
		r = next
	}
}
