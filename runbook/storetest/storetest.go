// Package storetest is the one conformance suite for runbook.Store: every
// implementation (runbook/sqlite, runbook/memstore, and any later one such
// as a shared MySQL store) runs RunConformance and so keeps the same
// promises: one open run per cluster, compare-and-set updates, one approval
// per gate, an append-only audit log, output in order.
package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// RunConformance runs the suite. newStore returns a fresh, empty store; the
// suite closes it.
func RunConformance(t *testing.T, newStore func(t *testing.T) runbook.Store) {
	open := func(t *testing.T) runbook.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s runbook.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"OneOpenRunPerCluster", testOneOpenRunPerCluster},
		{"CompareAndSet", testCompareAndSet},
		{"OneApprovalPerGate", testOneApprovalPerGate},
		{"RacingUpdates", testRacingUpdates},
		{"EndedRunStaysEnded", testEndedRunStaysEnded},
		{"ReplanSteps", testReplanSteps},
		{"History", testHistory},
		{"Audit", testAudit},
		{"Output", testOutput},
		{"Unknown", testUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

var ctx = context.Background()

// base is a fixed instant, in a non-UTC zone on purpose: stores may give
// times back in UTC, and runs compare with Equal.
var base = time.Date(2026, 3, 1, 2, 0, 0, 123456789, time.FixedZone("CET", 3600))

// sampleRun returns a run with every field set, mid-way through stop.
func sampleRun(id, cluster string) *runbook.Run {
	r := runbook.NewRun(id, runbook.StartRequest{Cluster: cluster, By: "U0START", Window: "sun-02", WindowEnds: base.Add(3 * time.Hour)},
		&runbook.Cluster{Name: cluster, BackupTo: "/backups", AutoApprove: []runbook.PhaseName{runbook.PhaseSnapshot},
			StopParallelism: 4, RecoveryTimeout: 30 * time.Minute}, base)
	r.Preflight = &runbook.Report{Cluster: cluster, OK: true, At: base, Took: 1500 * time.Millisecond,
		Checks:    []runbook.Check{{Name: runbook.CheckLeavesOnline, Status: runbook.Pass, Detail: "4/4 leaves online"}, {Name: runbook.CheckRebalancePlan, Status: runbook.Warn, Detail: "2 steps on `web`"}},
		Databases: []string{"sales", "web"},
		Nodes: []runbook.Node{{ID: "AAA1", Role: runbook.RoleMaster, Host: "10.0.0.1", Port: 3306, Running: true, Connectable: true, RecoveryState: "Online", Version: "8.9.3"},
			{ID: "BBB2", Role: runbook.RoleLeaf, Host: "10.0.0.2", Port: 3307, Running: true, RecoveryState: "Online", AvailabilityGroup: 2}},
		LeafFailureDetection: true,
	}
	r.DetectionOriginal = true
	r.DetectionChanged = true
	r.Recovering = true
	r.DownSince = base.Add(10 * time.Minute)
	r.UpAt = base.Add(20 * time.Minute)
	r.Note = "a note"
	r.Current = runbook.PhaseStop
	pf := r.Phase(runbook.PhasePreflight)
	pf.Status, pf.EndedAt = runbook.PhaseDone, base.Add(time.Second)
	pf.Steps[0].Status, pf.Steps[0].Attempts, pf.Steps[0].StartedAt, pf.Steps[0].EndedAt, pf.Steps[0].Evidence = runbook.StepDone, 1, base, base.Add(time.Second), "7 checks"
	bk := r.Phase(runbook.PhaseBackup)
	bk.Status, bk.Note, bk.Auto = runbook.PhaseSkipped, "skipped by U0APPROVE: tape is full", false
	bk.Approval = &runbook.Approval{By: "U0APPROVE", At: base.Add(2 * time.Minute), Action: runbook.ActSkipPhase, Reason: "tape is full"}
	sn := r.Phase(runbook.PhaseSnapshot)
	sn.Status, sn.Auto, sn.StartedAt, sn.EndedAt = runbook.PhaseDone, true, base.Add(3*time.Minute), base.Add(4*time.Minute)
	sn.Steps = []*runbook.Step{{ID: "snapshot/sales", Phase: runbook.PhaseSnapshot, Kind: runbook.StepSnapshot, Target: "sales",
		Label: "SNAPSHOT DATABASE `sales`", Status: runbook.StepSkipped, Attempts: 2, Error: "sql error", SkipReason: "known issue"}}
	st := r.Phase(runbook.PhaseStop)
	st.Status, st.StartedAt = runbook.PhaseRunning, base.Add(10*time.Minute)
	st.Steps = []*runbook.Step{
		{ID: "stop/AAA1", Phase: runbook.PhaseStop, Kind: runbook.StepStopNode, Tier: 3, Role: runbook.RoleMaster, Target: "AAA1",
			Label: "stop MA AAA1", Status: runbook.StepRunning, Attempts: 1, StartedAt: base.Add(10 * time.Minute)},
		{ID: "stop/BBB2", Phase: runbook.PhaseStop, Kind: runbook.StepStopNode, Tier: 2, Role: runbook.RoleLeaf, Target: "BBB2",
			Label: "stop leaf BBB2", Status: runbook.StepDone, Attempts: 1, StartedAt: base.Add(11 * time.Minute), EndedAt: base.Add(12 * time.Minute), Evidence: "list-nodes shows it stopped"},
	}
	st.Approval = &runbook.Approval{By: "U0APPROVE", At: base.Add(9 * time.Minute), Action: runbook.ActOverride}
	return r
}

// equalRuns compares runs field by field, times with Equal.
func equalRuns(t *testing.T, got, want *runbook.Run) {
	t.Helper()
	norm := func(r *runbook.Run) *runbook.Run {
		c := r.Clone()
		utc := func(tt *time.Time) {
			if !tt.IsZero() {
				*tt = tt.UTC()
			}
		}
		for _, p := range []*time.Time{&c.StartedAt, &c.WindowEnds, &c.DownSince, &c.UpAt, &c.EndedAt} {
			utc(p)
		}
		for _, rep := range []*runbook.Report{c.Preflight, c.PostCheck} {
			if rep != nil {
				utc(&rep.At)
			}
		}
		for _, p := range c.Phases {
			utc(&p.StartedAt)
			utc(&p.EndedAt)
			if p.Approval != nil {
				utc(&p.Approval.At)
			}
			if len(p.Steps) == 0 {
				p.Steps = nil
			}
			for _, s := range p.Steps {
				utc(&s.StartedAt)
				utc(&s.EndedAt)
			}
		}
		if len(c.Settings.AutoApprove) == 0 {
			c.Settings.AutoApprove = nil
		}
		return c
	}
	g, w := norm(got), norm(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("run read back differs:\n got %s\nwant %s", dump(g), dump(w))
	}
}

func dump(r *runbook.Run) string {
	s := fmt.Sprintf("%+v\n", *r)
	for _, p := range r.Phases {
		s += fmt.Sprintf("  phase %+v approval=%+v\n", *p, p.Approval)
		for _, st := range p.Steps {
			s += fmt.Sprintf("    step %+v\n", *st)
		}
	}
	return s
}

func mustCreate(t *testing.T, s runbook.Store, r *runbook.Run) {
	t.Helper()
	existing, err := s.CreateRun(ctx, r)
	if err != nil {
		t.Fatalf("CreateRun(%s): %v", r.ID, err)
	}
	if existing != nil {
		t.Fatalf("CreateRun(%s): refused, open run %s exists", r.ID, existing.ID)
	}
}

func mustGet(t *testing.T, s runbook.Store, id string) *runbook.Run {
	t.Helper()
	r, err := s.GetRun(ctx, id)
	if err != nil {
		t.Fatalf("GetRun(%s): %v", id, err)
	}
	return r
}

func testRoundTrip(t *testing.T, s runbook.Store) {
	r := sampleRun("r1", "prod")
	mustCreate(t, s, r)
	equalRuns(t, mustGet(t, s, "r1"), r)

	next := r.Clone()
	next.Version++
	next.Phase(runbook.PhaseStop).Steps[0].Status = runbook.StepDone
	next.PostCheck = &runbook.Report{Cluster: "prod", OK: false, Checks: []runbook.Check{{Name: runbook.CheckNoOrphanPartitions, Status: runbook.Fail, Detail: "1 orphan"}}}
	mp := next.Phase(runbook.PhaseMaintenance)
	mp.Approval = &runbook.Approval{By: "U0OTHER", At: base.Add(time.Hour), Action: runbook.ActMaintenanceDone}
	if err := s.UpdateRun(ctx, runbook.Update{Run: next, Prev: r.Version, Approval: runbook.PhaseMaintenance}); err != nil {
		t.Fatalf("UpdateRun: %v", err)
	}
	equalRuns(t, mustGet(t, s, "r1"), next)

	open, err := s.OpenRun(ctx, "prod")
	if err != nil || open == nil || open.ID != "r1" {
		t.Fatalf("OpenRun(prod) = %v, %v; want r1", open, err)
	}
	equalRuns(t, open, next)
}

func testOneOpenRunPerCluster(t *testing.T, s runbook.Store) {
	r1 := sampleRun("r1", "prod")
	mustCreate(t, s, r1)
	existing, err := s.CreateRun(ctx, sampleRun("r2", "prod"))
	if err != nil {
		t.Fatalf("second CreateRun: %v", err)
	}
	if existing == nil || existing.ID != "r1" || existing.StartedBy != "U0START" || !existing.StartedAt.Equal(base) {
		t.Fatalf("second CreateRun: existing = %+v, want r1 started by U0START at %v", existing, base)
	}
	if _, err := s.GetRun(ctx, "r2"); runbook.ErrorKind(err) != runbook.Invalid {
		t.Fatalf("refused run r2 was stored anyway (GetRun err %v)", err)
	}
	mustCreate(t, s, sampleRun("r3", "staging")) // another cluster is independent

	// Racing starts on a fresh cluster: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex, err := s.CreateRun(ctx, sampleRun(fmt.Sprintf("race%d", i), "race"))
			if err != nil {
				t.Errorf("CreateRun race%d: %v", i, err)
				return
			}
			if ex == nil {
				mu.Lock()
				created++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("%d racing CreateRun calls succeeded on one cluster, want 1", created)
	}

	// Once the open run ends, a new one may start.
	end := r1.Clone()
	end.Version++
	end.Status, end.Current, end.EndedAt = runbook.RunSucceeded, "", base.Add(time.Hour)
	if err := s.UpdateRun(ctx, runbook.Update{Run: end, Prev: r1.Version}); err != nil {
		t.Fatalf("end r1: %v", err)
	}
	if open, err := s.OpenRun(ctx, "prod"); err != nil || open != nil {
		t.Fatalf("OpenRun after end = %v, %v; want nil", open, err)
	}
	mustCreate(t, s, sampleRun("r4", "prod"))
	runs, err := s.OpenRuns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range runs {
		ids[r.ID] = true
	}
	if len(runs) != 3 || !ids["r3"] || !ids["r4"] {
		t.Fatalf("OpenRuns = %v, want r3, r4 and one race run", ids)
	}
}

func testCompareAndSet(t *testing.T, s runbook.Store) {
	r := sampleRun("r1", "prod")
	mustCreate(t, s, r)
	a := r.Clone()
	a.Version++
	a.Note = "first"
	if err := s.UpdateRun(ctx, runbook.Update{Run: a, Prev: r.Version}); err != nil {
		t.Fatal(err)
	}
	b := r.Clone()
	b.Version++
	b.Note = "stale"
	err := s.UpdateRun(ctx, runbook.Update{Run: b, Prev: r.Version, Audit: []runbook.Audit{{At: base, RunID: "r1", Who: "x", What: "must not appear"}}})
	if runbook.ErrorKind(err) != runbook.Conflict {
		t.Fatalf("stale UpdateRun: err %v, want a Conflict", err)
	}
	got := mustGet(t, s, "r1")
	if got.Note != "first" || got.Version != a.Version {
		t.Fatalf("after stale update: note %q version %d, want first/%d", got.Note, got.Version, a.Version)
	}
	audit, err := s.Audit(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 0 {
		t.Fatalf("a refused update wrote audit lines: %+v", audit)
	}
}

func testOneApprovalPerGate(t *testing.T, s runbook.Store) {
	r := sampleRun("r1", "prod")
	mustCreate(t, s, r)
	a := r.Clone()
	a.Version++
	a.Phase(runbook.PhaseStart).Approval = &runbook.Approval{By: "U1", At: base, Action: runbook.ActApprove}
	if err := s.UpdateRun(ctx, runbook.Update{Run: a, Prev: r.Version, Approval: runbook.PhaseStart}); err != nil {
		t.Fatal(err)
	}
	// Same gate again, even on the current version: refused.
	b := a.Clone()
	b.Version++
	b.Phase(runbook.PhaseStart).Approval = &runbook.Approval{By: "U2", At: base, Action: runbook.ActApprove}
	if err := s.UpdateRun(ctx, runbook.Update{Run: b, Prev: a.Version, Approval: runbook.PhaseStart}); runbook.ErrorKind(err) != runbook.Conflict {
		t.Fatalf("second approval of start: err %v, want a Conflict", err)
	}
	if got := mustGet(t, s, "r1").Phase(runbook.PhaseStart).Approval; got == nil || got.By != "U1" {
		t.Fatalf("approval of start = %+v, want U1's", got)
	}
	// A later update cannot rewrite or drop a stored approval.
	c := a.Clone()
	c.Version++
	c.Phase(runbook.PhaseStart).Approval = &runbook.Approval{By: "U3", At: base, Action: runbook.ActApprove}
	if err := s.UpdateRun(ctx, runbook.Update{Run: c, Prev: a.Version}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "r1").Phase(runbook.PhaseStart).Approval; got == nil || got.By != "U1" {
		t.Fatalf("approval of start after a plain update = %+v, want U1's", got)
	}
}

func testRacingUpdates(t *testing.T, s runbook.Store) {
	r := sampleRun("r1", "prod")
	mustCreate(t, s, r)
	const n = 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := []string{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := r.Clone()
			next.Version++
			who := fmt.Sprintf("U%02d", i)
			next.Phase(runbook.PhaseStart).Approval = &runbook.Approval{By: who, At: base, Action: runbook.ActApprove}
			err := s.UpdateRun(ctx, runbook.Update{Run: next, Prev: r.Version, Approval: runbook.PhaseStart,
				Audit: []runbook.Audit{{At: base, RunID: "r1", Cluster: "prod", Phase: runbook.PhaseStart, Who: who, What: "approve"}}})
			switch runbook.ErrorKind(err) {
			case "":
				mu.Lock()
				won = append(won, who)
				mu.Unlock()
			case runbook.Conflict:
			default:
				t.Errorf("UpdateRun by %s: %v", who, err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d of %d racing updates won: %v; want exactly 1", len(won), n, won)
	}
	if got := mustGet(t, s, "r1").Phase(runbook.PhaseStart).Approval; got == nil || got.By != won[0] {
		t.Fatalf("stored approval %+v, want %s's", got, won[0])
	}
	audit, _ := s.Audit(ctx, "r1")
	if len(audit) != 1 || audit[0].Who != won[0] {
		t.Fatalf("audit after the race = %+v, want one line by %s", audit, won[0])
	}
}

func testEndedRunStaysEnded(t *testing.T, s runbook.Store) {
	r := sampleRun("r1", "prod")
	mustCreate(t, s, r)
	end := r.Clone()
	end.Version++
	end.Status = runbook.RunAborted
	if err := s.UpdateRun(ctx, runbook.Update{Run: end, Prev: r.Version}); err != nil {
		t.Fatal(err)
	}
	again := end.Clone()
	again.Version++
	again.Status = runbook.RunActive
	if err := s.UpdateRun(ctx, runbook.Update{Run: again, Prev: end.Version}); runbook.ErrorKind(err) != runbook.Conflict {
		t.Fatalf("reopening an ended run: err %v, want a Conflict", err)
	}
}

func testReplanSteps(t *testing.T, s runbook.Store) {
	r := sampleRun("r1", "prod")
	mustCreate(t, s, r)
	next := r.Clone()
	next.Version++
	// A re-run preflight may change the plan: steps disappear and appear.
	next.Phase(runbook.PhaseStop).Steps = next.Phase(runbook.PhaseStop).Steps[1:]
	next.Phase(runbook.PhaseStart).Steps = []*runbook.Step{{ID: "start/BBB2", Phase: runbook.PhaseStart, Kind: runbook.StepStartNode, Role: runbook.RoleLeaf, Target: "BBB2", Status: runbook.StepPending}}
	if err := s.UpdateRun(ctx, runbook.Update{Run: next, Prev: r.Version}); err != nil {
		t.Fatal(err)
	}
	equalRuns(t, mustGet(t, s, "r1"), next)
}

func testHistory(t *testing.T, s runbook.Store) {
	for i, c := range []string{"prod", "staging", "prod", "prod"} {
		r := sampleRun(fmt.Sprintf("h%d", i), c)
		r.StartedAt = base.Add(time.Duration(i) * time.Hour)
		if c == "prod" && i < 3 {
			r.Status = runbook.RunSucceeded
		}
		mustCreate(t, s, r)
	}
	ids := func(runs []*runbook.Run) (out []string) {
		for _, r := range runs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, tc := range []struct {
		cluster string
		limit   int
		want    []string
	}{
		{"prod", 0, []string{"h3", "h2", "h0"}},
		{"prod", 2, []string{"h3", "h2"}},
		{"", 0, []string{"h3", "h2", "h1", "h0"}},
		{"nope", 0, nil},
	} {
		runs, err := s.History(ctx, tc.cluster, tc.limit)
		if err != nil {
			t.Fatalf("History(%q, %d): %v", tc.cluster, tc.limit, err)
		}
		if got := ids(runs); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("History(%q, %d) = %v, want %v", tc.cluster, tc.limit, got, tc.want)
		}
	}
	runs, _ := s.History(ctx, "prod", 1)
	if len(runs) != 1 || len(runs[0].Phases) != len(runbook.Phases) || runs[0].Phase(runbook.PhaseBackup).Approval == nil {
		t.Fatalf("History runs come without their phases and approvals: %+v", runs)
	}
	if _, err := s.History(ctx, "", -1); runbook.ErrorKind(err) != runbook.Invalid {
		t.Fatalf("History with a negative limit: err %v, want Invalid", err)
	}
}

func testAudit(t *testing.T, s runbook.Store) {
	mustCreate(t, s, sampleRun("r1", "prod"))
	mustCreate(t, s, sampleRun("r2", "staging"))
	want := []runbook.Audit{
		{At: base, RunID: "r1", Cluster: "prod", Phase: runbook.PhaseStop, Who: "U1", What: "approve", Result: "accepted"},
		{At: base.Add(time.Second), RunID: "r2", Cluster: "staging", Who: "U2", What: "start", Result: "run r2"},
		{At: base.Add(2 * time.Second), RunID: "r1", Cluster: "prod", Phase: runbook.PhaseStop, Who: "U3", What: "refused approve", Result: "already approved by U1"},
	}
	for _, a := range want {
		if err := s.AppendAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	check := func(runID string, want []runbook.Audit) {
		t.Helper()
		got, err := s.Audit(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("Audit(%q) has %d lines, want %d: %+v", runID, len(got), len(want), got)
		}
		for i := range got {
			g, w := got[i], want[i]
			if !g.At.Equal(w.At) || g.RunID != w.RunID || g.Cluster != w.Cluster || g.Phase != w.Phase || g.Who != w.Who || g.What != w.What || g.Result != w.Result {
				t.Fatalf("Audit(%q)[%d] = %+v, want %+v", runID, i, g, w)
			}
		}
	}
	check("", want)
	check("r1", []runbook.Audit{want[0], want[2]})
}

func testOutput(t *testing.T, s runbook.Store) {
	mustCreate(t, s, sampleRun("r1", "prod"))
	var want []runbook.Chunk
	for i := range 30 {
		c := runbook.Chunk{RunID: "r1", StepID: []string{"stop/AAA1", "stop/BBB2"}[i%2], At: base.Add(time.Duration(i) * time.Millisecond),
			Stream: []string{"stdout", "stderr"}[i%3%2], Line: fmt.Sprintf("line %d: `quoted` 'and' \"more\" ✓", i)}
		if err := s.AppendOutput(ctx, c); err != nil {
			t.Fatal(err)
		}
		want = append(want, c)
	}
	got, err := s.Output(ctx, "r1", "stop/BBB2")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 15 {
		t.Fatalf("Output(stop/BBB2) has %d lines, want 15", len(got))
	}
	for i, c := range got {
		w := want[2*i+1]
		if c.StepID != w.StepID || c.Line != w.Line || c.Stream != w.Stream || !c.At.Equal(w.At) || c.RunID != "r1" {
			t.Fatalf("Output line %d = %+v, want %+v", i, c, w)
		}
	}
	all, err := s.Output(ctx, "r1", "")
	if err != nil || len(all) != 30 {
		t.Fatalf("Output(r1, all) = %d lines, %v; want 30", len(all), err)
	}
	if err := s.AppendOutput(ctx, runbook.Chunk{RunID: "nope", StepID: "x", At: base, Stream: "stdout", Line: "x"}); runbook.ErrorKind(err) != runbook.Invalid {
		t.Fatalf("output for an unknown run: err %v, want Invalid", err)
	}
	// Several lines at once: stored in order, all or none.
	batch := []runbook.Chunk{
		{RunID: "r1", StepID: "batch", At: base, Stream: "stdout", Line: "one"},
		{RunID: "r1", StepID: "batch", At: base, Stream: "stdout", Line: "two"},
	}
	if err := s.AppendOutput(ctx, append(batch, runbook.Chunk{RunID: "nope", StepID: "batch", At: base, Stream: "stdout", Line: "x"})...); runbook.ErrorKind(err) != runbook.Invalid {
		t.Fatalf("a batch with an unknown run: err %v, want Invalid", err)
	}
	if got, _ := s.Output(ctx, "r1", "batch"); len(got) != 0 {
		t.Fatalf("a refused batch stored %d lines", len(got))
	}
	if err := s.AppendOutput(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendOutput(ctx); err != nil {
		t.Fatalf("an empty batch: %v", err)
	}
	if got, _ := s.Output(ctx, "r1", "batch"); len(got) != 2 || got[0].Line != "one" || got[1].Line != "two" {
		t.Fatalf("batch read back as %+v", got)
	}
}

func testUnknown(t *testing.T, s runbook.Store) {
	if _, err := s.GetRun(ctx, "nope"); runbook.ErrorKind(err) != runbook.Invalid {
		t.Fatalf("GetRun(unknown): err %v, want Invalid", err)
	}
	r := sampleRun("ghost", "prod")
	if err := s.UpdateRun(ctx, runbook.Update{Run: r, Prev: 1}); runbook.ErrorKind(err) != runbook.Invalid {
		t.Fatalf("UpdateRun(unknown): err %v, want Invalid", err)
	}
	if open, err := s.OpenRun(ctx, "nope"); open != nil || err != nil {
		t.Fatalf("OpenRun(unknown cluster) = %v, %v; want nil, nil", open, err)
	}
	if _, err := s.CreateRun(ctx, &runbook.Run{ID: "", Cluster: "x"}); runbook.ErrorKind(err) != runbook.Invalid {
		t.Fatalf("CreateRun without an ID: err %v, want Invalid", err)
	}
}
