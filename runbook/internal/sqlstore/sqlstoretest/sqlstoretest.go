// Package sqlstoretest checks, over each SQL store, what the store
// conformance suite leaves to the shared code of runbook/internal/sqlstore:
// runs and output batches larger than one INSERT holds, the messages of
// refusals, and a run ID used twice.
package sqlstoretest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// rows is more than two INSERTs' worth of rows, so that a run's steps and a
// batch of output are each written by three statements.
const rows = 450

// Run runs the checks on s, a fresh empty store.
func Run(t *testing.T, s runbook.Store) {
	t.Helper()
	t.Run("LargeRun", func(t *testing.T) { testLargeRun(t, s) })
	t.Run("LargeOutputBatch", func(t *testing.T) { testLargeOutputBatch(t, s) })
	t.Run("RunIDUsedTwice", func(t *testing.T) { testRunIDUsedTwice(t, s) })
}

var at = time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)

func newRun(id, cluster string, steps int) *runbook.Run {
	r := runbook.NewRun(id, runbook.StartRequest{Cluster: cluster, By: "U1"}, &runbook.Cluster{Name: cluster}, at)
	p := r.Phase(runbook.PhaseStop)
	for i := range steps {
		p.Steps = append(p.Steps, &runbook.Step{ID: fmt.Sprintf("stop/%04d", i), Phase: runbook.PhaseStop, Kind: runbook.StepStopNode,
			Tier: i % 3, Role: runbook.RoleLeaf, Target: fmt.Sprintf("%040X", i), Label: fmt.Sprintf("stop leaf %d", i),
			Status: runbook.StepPending, StartedAt: at.Add(time.Duration(i) * time.Millisecond)})
	}
	return r
}

func testLargeRun(t *testing.T, s runbook.Store) {
	ctx := context.Background()
	r := newRun("large", "large", rows)
	if existing, err := s.CreateRun(ctx, r); err != nil || existing != nil {
		t.Fatalf("CreateRun: %v, %v", existing, err)
	}
	// A replan rewrites every row; a step's change rewrites one.
	next := r.Clone()
	next.Version++
	next.Phase(runbook.PhaseStop).Steps = next.Phase(runbook.PhaseStop).Steps[1:]
	if err := s.UpdateRun(ctx, runbook.Update{Run: next, Prev: r.Version}); err != nil {
		t.Fatal(err)
	}
	last := next.Clone()
	last.Version++
	last.Phase(runbook.PhaseStop).Steps[rows-2].Status = runbook.StepDone
	if err := s.UpdateRun(ctx, runbook.Update{Run: last, Prev: next.Version}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRun(ctx, "large")
	if err != nil {
		t.Fatal(err)
	}
	steps := got.Phase(runbook.PhaseStop).Steps
	if len(steps) != rows-1 {
		t.Fatalf("the run has %d stop steps, want %d", len(steps), rows-1)
	}
	for i, st := range steps {
		want := last.Phase(runbook.PhaseStop).Steps[i]
		if st.ID != want.ID || st.Target != want.Target || st.Tier != want.Tier || st.Status != want.Status || !st.StartedAt.Equal(want.StartedAt) {
			t.Fatalf("stop step %d = %+v, want %+v", i, st, want)
		}
	}
}

func testLargeOutputBatch(t *testing.T, s runbook.Store) {
	ctx := context.Background()
	if _, err := s.CreateRun(ctx, newRun("out", "out", 1)); err != nil {
		t.Fatal(err)
	}
	batch := make([]runbook.Chunk, rows)
	for i := range batch {
		batch[i] = runbook.Chunk{RunID: "out", StepID: "stop/0000", At: at.Add(time.Duration(i) * time.Microsecond), Stream: "stdout", Line: fmt.Sprintf("line %d", i)}
	}
	// The unknown run's line is in the last INSERT: the two before it are
	// undone with it.
	bad := append(append([]runbook.Chunk(nil), batch...), runbook.Chunk{RunID: "nope", StepID: "x", At: at, Stream: "stdout", Line: "x"})
	err := s.AppendOutput(ctx, bad...)
	if runbook.ErrorKind(err) != runbook.Invalid || !strings.Contains(runbook.ErrorMessage(err), `"nope"`) {
		t.Fatalf("a batch with a line for an unknown run: %v; want Invalid naming \"nope\"", err)
	}
	if got, err := s.Output(ctx, "out", ""); err != nil || len(got) != 0 {
		t.Fatalf("a refused batch left %d lines (%v)", len(got), err)
	}
	if err := s.AppendOutput(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	got, err := s.Output(ctx, "out", "stop/0000")
	if err != nil || len(got) != rows {
		t.Fatalf("Output = %d lines, %v; want %d", len(got), err, rows)
	}
	for i, c := range got {
		if c.Line != batch[i].Line || !c.At.Equal(batch[i].At) {
			t.Fatalf("line %d = %+v, want %+v", i, c, batch[i])
		}
	}
}

func testRunIDUsedTwice(t *testing.T, s runbook.Store) {
	ctx := context.Background()
	r := newRun("twice", "twice-a", 1)
	r.Status = runbook.RunEnded
	if _, err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	// Another cluster, so the ID is all that collides.
	again := newRun("twice", "twice-b", 1)
	existing, err := s.CreateRun(ctx, again)
	if runbook.ErrorKind(err) != runbook.Conflict || existing != nil || !strings.Contains(runbook.ErrorMessage(err), "run twice exists") {
		t.Fatalf("CreateRun with a used ID: %v, %v; want a Conflict saying the run exists", existing, err)
	}
	if open, err := s.OpenRun(ctx, "twice-b"); err != nil || open != nil {
		t.Fatalf("the refused run is open: %v, %v", open, err)
	}
}
