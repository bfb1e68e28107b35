package windows_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
)

// The config window of prod, 02:00 Berlin time every Sunday: on Sunday 4
// January 2026 (CET, UTC+1) it starts 01:00Z and ends 04:00Z.
const (
	friNoon   = "2026-01-02T12:00:00Z"
	ann24h    = "2026-01-03T01:00:00Z"
	ann1h     = "2026-01-04T00:00:00Z"
	ann10m    = "2026-01-04T00:50:00Z"
	sunStart  = "2026-01-04T01:00:00Z"
	sunEnd    = "2026-01-04T04:00:00Z"
	nextAnn24 = "2026-01-10T01:00:00Z"
)

// TestWindowDay runs the scheduler's own loop on the fake clock through one
// window: it sleeps until exactly each lead time, announces, opens the run
// at the start (preflight, then the gates wait), and at the end says the
// window closed before stop; the engine then refuses a plain approval of
// stop and takes an approver's override.
func TestWindowDay(t *testing.T) {
	t.Parallel()
	h := newHarness(t, at(friNoon), configWindow(berlinSunday))
	p := h.start("A")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.sched.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	wantWindow := h.config[0]
	steps := []struct{ due, kind string }{
		{ann24h, "announce 24h"}, {ann1h, "announce 1h"}, {ann10m, "announce 10m"}, {sunStart, "started"},
	}
	for i, st := range steps {
		waitTimer(t, h, at(st.due))
		h.clock.Set(at(st.due).Add(-time.Second)) // a second early: nothing
		if n := len(h.rec.notices()); n != i {
			t.Fatalf("a second before %s: %d notices, want %d", st.due, n, i)
		}
		h.clock.Set(at(st.due))
		got := h.rec.wait(t, i+1)[i]
		if k := h.rec.kinds()[i]; k != st.kind || !got.at.Equal(at(st.due)) {
			t.Fatalf("notice %d: %s at %s, want %s at exactly %s", i, k, got.at.UTC(), st.kind, st.due)
		}
		if !got.occ.Start.Equal(at(sunStart)) || !got.occ.End.Equal(at(sunEnd)) || got.occ.Window.ID != wantWindow.ID {
			t.Fatalf("notice %d is about %+v", i, got.occ)
		}
	}
	run := h.rec.notices()[3].run
	if run == nil || run.Window != wantWindow.ID || !run.WindowEnds.Equal(at(sunEnd)) || run.StartedBy != "window:"+wantWindow.ID {
		t.Fatalf("the window's run: %+v", run)
	}
	// Preflight ran; the run waits for people at its first gate, exactly
	// as /sdbmaint start leaves it.
	r := waitRun(t, p.engine, run.ID, "the snapshot gate", waiting(runbook.PhaseSnapshot))
	for _, ph := range []runbook.PhaseName{runbook.PhaseSnapshot, runbook.PhaseSyncSnapshot} {
		o, err := p.engine.Decide(ctx, runbook.Decision{RunID: r.ID, Phase: ph, Version: r.Version, Action: runbook.ActApprove, By: approver})
		if err != nil || !o.Accepted {
			t.Fatalf("approve %s: %+v, %v", ph, o, err)
		}
		next := runbook.PhaseSyncSnapshot
		if ph == runbook.PhaseSyncSnapshot {
			next = runbook.PhaseStop
		}
		r = waitRun(t, p.engine, r.ID, string(next)+" gate", waiting(next))
	}
	// Nobody approves stop before 04:00Z.
	waitTimer(t, h, at(sunEnd))
	h.clock.Set(at(sunEnd))
	closed := h.rec.wait(t, 5)[4]
	if closed.kind != "closed" || closed.run == nil || closed.run.ID != run.ID || !closed.at.Equal(at(sunEnd)) {
		t.Fatalf("at the end: %v, want the window-closed notice for run %s", closed, run.ID)
	}
	r, _ = p.engine.Get(ctx, run.ID)
	o, err := p.engine.Decide(ctx, runbook.Decision{RunID: r.ID, Phase: runbook.PhaseStop, Version: r.Version, Action: runbook.ActApprove, By: approver})
	if err != nil || o.Accepted {
		t.Fatalf("approving stop after the window closed: %+v, %v; want a refusal", o, err)
	}
	mustContain(t, o.Reason, "window ended")
	o, err = p.engine.Decide(ctx, runbook.Decision{RunID: r.ID, Phase: runbook.PhaseStop, Version: r.Version, Action: runbook.ActOverride, By: approver})
	if err != nil || !o.Accepted {
		t.Fatalf("an approver's override: %+v, %v; want it accepted", o, err)
	}
	waitRun(t, p.engine, r.ID, "the maintenance gate", waiting(runbook.PhaseMaintenance))
	// And the scheduler now sleeps until next Saturday's announcement.
	waitTimer(t, h, at(nextAnn24))
}

func waitTimer(t *testing.T, h *harness, when time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.clock.WaitTimer(ctx, when); err != nil {
		next, _ := h.clock.NextTimer()
		t.Fatalf("the scheduler never slept until %s (next timer %s)", when.UTC(), next.UTC())
	}
}

// TestDaylightSaving ticks a CRON_TZ=Europe/Berlin window at 02:30 through
// both clock changes of 2026: every firing comes at the instant the
// scheduler said it would, the spring-forward start is 03:30 CEST (02:30
// does not exist), and the repeated 02:30 of the fall-back starts once.
func TestDaylightSaving(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, from string
		dues       []string // announce 24h, 1h, 10m, start, end: UTC
		thenQuiet  string   // a moment that must fire nothing
	}{
		{"spring forward", "2026-03-27T12:00:00Z",
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T00:30:00Z", "2026-03-29T01:20:00Z", "2026-03-29T01:30:00Z", "2026-03-29T04:30:00Z"},
			"2026-03-29T05:30:00Z"},
		{"fall back", "2026-10-23T12:00:00Z",
			[]string{"2026-10-24T00:30:00Z", "2026-10-24T23:30:00Z", "2026-10-25T00:20:00Z", "2026-10-25T00:30:00Z", "2026-10-25T03:30:00Z"},
			"2026-10-25T01:30:00Z"}, // 02:30 CET, the second 02:30 of the night
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, at(c.from), configWindow("CRON_TZ=Europe/Berlin 30 2 * * SUN"))
			p := h.start("A")
			next := h.tickAt(p, c.from)
			want := []string{"announce 24h", "announce 1h", "announce 10m", "started", "closed"}
			for i, due := range c.dues {
				if !next.Equal(at(due)) {
					t.Fatalf("after firing %d the next is due %s, want %s", i, next.UTC(), due)
				}
				if i == 4 { // the quiet moment lies before or after the end
					if q := at(c.thenQuiet); q.Before(at(due)) {
						h.tickAt(p, c.thenQuiet)
					}
				}
				next = h.tickAt(p, due)
				h.rec.wait(t, i+1)
			}
			h.tickAt(p, c.thenQuiet)
			if got := h.rec.kinds(); !slices.Equal(got, want) {
				t.Fatalf("notices %v, want %v", got, want)
			}
			for i, n := range h.rec.notices() {
				if !n.at.Equal(at(c.dues[i])) {
					t.Fatalf("%s came at %s, want %s", n.kind, n.at.UTC(), c.dues[i])
				}
			}
			runs, _ := p.engine.History(context.Background(), "prod", 0)
			if len(runs) != 1 {
				t.Fatalf("%d runs, want exactly one start", len(runs))
			}
		})
	}
}

// TestSkip: an approver skips the coming window after its first
// announcement; the skip is recorded and announced, later announcements
// stay silent and the start opens no run. A non-approver's click and a
// second skip change nothing.
func TestSkip(t *testing.T) {
	t.Parallel()
	h := newHarness(t, at(friNoon))
	p := h.start("A")
	ctx := context.Background()
	w, err := p.sched.Schedule(ctx, windows.ScheduleRequest{Cluster: "prod", Spec: berlinSunday, By: approver})
	if err != nil {
		t.Fatal(err)
	}
	h.tickAt(p, friNoon)
	h.tickAt(p, ann24h)
	h.rec.wait(t, 1)
	start := at(sunStart)

	res, err := p.sched.Skip(ctx, w.ID, start, operator)
	if err != nil || res.Skipped {
		t.Fatalf("a non-approver's skip: %+v, %v; want a refusal", res, err)
	}
	mustContain(t, res.Reason, "only approvers")
	if _, err := p.sched.Skip(ctx, w.ID, start.Add(time.Hour), approver); runbook.ErrorKind(err) != runbook.Invalid {
		t.Fatalf("skipping a time the window does not start: %v, want Invalid", err)
	}
	res, err = p.sched.Skip(ctx, w.ID, start, approver)
	if err != nil || !res.Skipped {
		t.Fatalf("the approver's skip: %+v, %v", res, err)
	}
	sk := h.rec.wait(t, 2)[1]
	if sk.kind != "skipped" || sk.s.By != approver || !sk.occ.Start.Equal(start) {
		t.Fatalf("skip notice: %+v", sk)
	}
	res, err = p.sched.Skip(ctx, w.ID, start, approver)
	if err != nil || res.Skipped || res.Already == nil || res.Already.By != approver {
		t.Fatalf("a second skip: %+v, %v; want 'already skipped by' the approver", res, err)
	}
	ups, err := p.sched.Upcoming(ctx, "prod", 2)
	if err != nil || len(ups) != 1 || len(ups[0].Next) != 2 || ups[0].Next[0].Skip == nil || ups[0].Next[1].Skip != nil {
		t.Fatalf("Upcoming after the skip: %+v, %v", ups, err)
	}
	for _, when := range []string{ann1h, ann10m, sunStart, sunEnd} {
		h.tickAt(p, when)
	}
	if got := h.rec.kinds(); !slices.Equal(got, []string{"announce 24h", "skipped"}) {
		t.Fatalf("notices %v: a skipped window must stay silent and open nothing", got)
	}
	if r, _ := p.engine.OpenRun(ctx, "prod"); r != nil {
		t.Fatalf("the skipped window opened run %s", r.ID)
	}
	// Next week's window is not skipped: it announces as usual.
	h.tickAt(p, nextAnn24)
	h.rec.wait(t, 3)
	// Once a window has started it cannot be skipped.
	for _, when := range []string{"2026-01-11T00:00:00Z", "2026-01-11T00:50:00Z", "2026-01-11T01:00:00Z"} {
		h.tickAt(p, when)
	}
	h.rec.wait(t, 6) // 1h, 10m, started
	res, err = p.sched.Skip(ctx, w.ID, at("2026-01-11T01:00:00Z"), approver)
	if err != nil || res.Skipped {
		t.Fatalf("skip after the start: %+v, %v; want a refusal", res, err)
	}
	mustContain(t, res.Reason, "already started")
}

// TestMissedAfterDowntime: sdbmaint is down across a whole window. The
// process that comes back reports everything it missed in one notice and
// carries out none of it late: no announcement, no run.
func TestMissedAfterDowntime(t *testing.T) {
	t.Parallel()
	h := newHarness(t, at(friNoon), configWindow(berlinSunday))
	a := h.start("A")
	h.tickAt(a, friNoon)
	a.stop() // down from Friday noon to Sunday morning

	b := h.start("B")
	next := h.tickAt(b, "2026-01-04T06:00:00Z")
	got := h.rec.wait(t, 1)
	if len(got) != 1 || got[0].kind != "missed" || got[0].m.InDoubt {
		t.Fatalf("notices %v, want one missed report", h.rec.kinds())
	}
	var missed []string
	for _, f := range got[0].m.Firings {
		missed = append(missed, string(f.Kind)+windows.FormatDuration(f.Lead))
	}
	// The end notice is not among them: no run of the window waits before
	// stop, so there is nothing to say about it.
	if want := []string{"announce24h", "announce1h", "announce10m", "start0s"}; !slices.Equal(missed, want) {
		t.Fatalf("reported missed %v, want %v", missed, want)
	}
	if runs, _ := b.engine.History(context.Background(), "prod", 0); len(runs) != 0 {
		t.Fatalf("a missed start opened %d runs", len(runs))
	}
	if !next.Equal(at(nextAnn24)) {
		t.Fatalf("next firing %s, want next week's announcement %s", next.UTC(), nextAnn24)
	}
	// Another restart reports nothing again.
	c := h.start("C")
	h.tickAt(c, "2026-01-04T07:00:00Z")
	if n := len(h.rec.notices()); n != 1 {
		t.Fatalf("a second restart repeated the report: %v", h.rec.kinds())
	}
}

// TestMissedEndWhileRunWaits: the window opened its run, then sdbmaint was
// down when the window ended. Back later, it reports the missed end, since
// the run still waits before stop and stopping now needs an override.
func TestMissedEndWhileRunWaits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, at(ann10m), configWindow(berlinSunday))
	a := h.start("A")
	h.tickAt(a, ann10m)
	h.tickAt(a, sunStart)
	st := h.rec.wait(t, 2)[1]
	waitRun(t, a.engine, st.run.ID, "the snapshot gate", waiting(runbook.PhaseSnapshot))
	a.stop()
	b := h.start("B")
	if err := b.engine.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.tickAt(b, "2026-01-04T05:00:00Z")
	m := h.rec.wait(t, 3)[2]
	if m.kind != "missed" || len(m.m.Firings) != 1 || m.m.Firings[0].Kind != windows.KindEnd {
		t.Fatalf("back after the end: %v %+v", h.rec.kinds(), m.m.Firings)
	}
}

// TestGraceAfterShortDowntime: back 90 seconds after the start, the start
// is still carried out (within the 2-minute grace) while the announcements
// long past are reported missed; back after 3 minutes the start is missed.
func TestGraceAfterShortDowntime(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		back   string
		kinds  []string
		missed int
	}{
		{"2026-01-04T01:01:30Z", []string{"started", "missed"}, 3},
		{"2026-01-04T01:03:00Z", []string{"missed"}, 4},
	} {
		h := newHarness(t, at(friNoon), configWindow(berlinSunday))
		a := h.start("A")
		h.tickAt(a, friNoon)
		a.stop()
		b := h.start("B")
		h.tickAt(b, c.back)
		h.rec.wait(t, len(c.kinds))
		if got := h.rec.kinds(); !slices.Equal(got, c.kinds) {
			t.Fatalf("back at %s: %v, want %v", c.back, got, c.kinds)
		}
		m := h.rec.notices()[len(c.kinds)-1].m
		if len(m.Firings) != c.missed { // the three announcements, plus the start if missed
			t.Fatalf("back at %s: %d firings reported missed", c.back, len(m.Firings))
		}
	}
}

// TestOpenRunSkipsWindow: someone is already maintaining prod when the
// window starts. The window opens no second run and says why.
func TestOpenRunSkipsWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, at(friNoon), configWindow(berlinSunday))
	p := h.start("A")
	ctx := context.Background()
	h.tickAt(p, "2026-01-04T00:55:00Z") // the first tick ever: nothing was missed
	res, err := p.engine.Start(ctx, runbook.StartRequest{Cluster: "prod", By: operator})
	if err != nil || res.Run == nil {
		t.Fatal(res, err)
	}
	h.tickAt(p, sunStart)
	sk := h.rec.wait(t, 1)[0]
	if sk.kind != "skipped" || sk.s.Existing == nil || sk.s.Existing.ID != res.Run.ID || sk.s.By != "" {
		t.Fatalf("at the start: %+v, want a skip naming run %s", sk, res.Run.ID)
	}
	mustContain(t, sk.text, "run "+res.Run.ID+" for prod is already open (started by "+operator)
	h.tickAt(p, sunEnd) // the open run is not the window's: nothing to say
	if runs, _ := p.engine.History(ctx, "prod", 0); len(runs) != 1 || len(h.rec.notices()) != 1 {
		t.Fatalf("%d runs and notices %v; want the one run and no end notice", len(runs), h.rec.kinds())
	}
}

// TestRestartDuringWindow: the bot restarts in the middle of the window. A
// new process on the same SQLite file repeats neither announcement nor
// start, keeps the window made in Slack, and still gives the end notice.
func TestRestartDuringWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, at(friNoon))
	a := h.start("A")
	ctx := context.Background()
	w, err := a.sched.Schedule(ctx, windows.ScheduleRequest{Cluster: "prod", Spec: berlinSunday, By: approver})
	if err != nil {
		t.Fatal(err)
	}
	for i, when := range []string{friNoon, ann24h, ann1h, ann10m, sunStart} {
		h.tickAt(a, when)
		h.rec.wait(t, i)
	}
	h.rec.wait(t, 4)
	a.stop()

	b := h.start("B")
	if err := b.engine.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := b.sched.Window(ctx, w.ID)
	if err != nil || got.Spec != berlinSunday || got.CreatedBy != approver {
		t.Fatalf("the stored window after the restart: %+v, %v", got, err)
	}
	h.tickAt(b, "2026-01-04T02:30:00Z")
	if n := len(h.rec.notices()); n != 4 {
		t.Fatalf("after the restart: %v; nothing may be repeated", h.rec.kinds())
	}
	h.tickAt(b, sunEnd)
	h.rec.wait(t, 5)
	if got, want := h.rec.kinds(), []string{"announce 24h", "announce 1h", "announce 10m", "started", "closed"}; !slices.Equal(got, want) {
		t.Fatalf("notices %v, want %v", got, want)
	}
	if runs, _ := b.engine.History(ctx, "prod", 0); len(runs) != 1 {
		t.Fatalf("%d runs, want one", len(runs))
	}
}

// TestTwoSchedulersOneStore: two processes share the store file and both
// tick at every moment something is due, concurrently. Each announcement,
// the start and the end notice happen exactly once.
func TestTwoSchedulersOneStore(t *testing.T) {
	t.Parallel()
	h := newHarness(t, at(friNoon), configWindow(berlinSunday))
	procs := []*process{h.start("A"), h.start("B")}
	for _, when := range []string{friNoon, ann24h, ann1h, ann10m, sunStart, "2026-01-04T01:00:01Z", sunEnd} {
		h.clock.Set(at(when))
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := p.sched.Tick(context.Background()); err != nil {
					t.Errorf("tick: %v", err)
				}
			}()
		}
		wg.Wait()
	}
	if got, want := h.rec.kinds(), []string{"announce 24h", "announce 1h", "announce 10m", "started", "closed"}; !slices.Equal(got, want) {
		t.Fatalf("notices %v, want each exactly once: %v", got, want)
	}
	runs, _ := procs[0].engine.History(context.Background(), "prod", 0)
	if len(runs) != 1 {
		t.Fatalf("%d runs, want one", len(runs))
	}
}

// TestCrashBetweenClaimAndPost: a process claimed firings and died before
// finishing them. Whoever comes next resolves each claim without repeating
// what may have happened: an announcement is reported as possibly not
// posted; a start whose run exists is recognised; a start that never
// opened its run is carried out, since it is still within the grace.
func TestCrashBetweenClaimAndPost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, at(friNoon), configWindow(berlinSunday))
	h.opts.Lease = 30 * time.Second
	a := h.start("A")
	ctx := context.Background()
	ws, err := a.store.Windows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := h.config[0].ID
	claim := func(kind windows.Kind, lead time.Duration, due string) {
		t.Helper()
		f := windows.Firing{Key: windows.FiringKey(id, at(sunStart), kind, lead), WindowID: id, Cluster: "prod",
			Start: at(sunStart), Kind: kind, Lead: lead, Due: at(due), Plan: windows.PlanPerform, Owner: "dead", ClaimedAt: at(due)}
		if won, _, err := ws.Claim(ctx, f); err != nil || !won {
			t.Fatalf("claim %s: %v %v", f.Key, won, err)
		}
	}
	h.tickAt(a, friNoon)
	h.clock.Set(at(ann24h))
	claim(windows.KindAnnounce, 24*time.Hour, ann24h) // the dead process's claim
	h.tickAt(a, "2026-01-03T01:00:31Z")               // the lease has run out
	got := h.rec.wait(t, 1)[0]
	if got.kind != "missed" || !got.m.InDoubt || len(got.m.Firings) != 1 || got.m.Firings[0].Lead != 24*time.Hour {
		t.Fatalf("an announcement in doubt: %+v", got)
	}
	f, _ := ws.Firing(ctx, windows.FiringKey(id, at(sunStart), windows.KindAnnounce, 24*time.Hour))
	if !f.Done || f.Owner != "A" {
		t.Fatalf("the resolved claim: %+v", f)
	}

	// The start, claimed by a process that died right after claiming.
	h.tickAt(a, ann1h)
	h.tickAt(a, ann10m)
	h.rec.wait(t, 3)
	h.clock.Set(at(sunStart))
	claim(windows.KindStart, 0, sunStart)
	h.tickAt(a, "2026-01-04T01:00:10Z")
	if n := len(h.rec.notices()); n != 3 {
		t.Fatalf("a claim within its lease must be left alone: %v", h.rec.kinds())
	}
	h.tickAt(a, "2026-01-04T01:00:31Z") // lease over, still within the grace
	st := h.rec.wait(t, 4)[3]
	if st.kind != "started" || st.run == nil || st.run.Window != id {
		t.Fatalf("an orphaned start that never opened its run: %+v", st)
	}
	// A third process finds nothing left to do.
	b := h.start("B")
	h.tickAt(b, "2026-01-04T01:10:00Z")
	if runs, _ := b.engine.History(ctx, "prod", 0); len(runs) != 1 || len(h.rec.notices()) != 4 {
		t.Fatalf("%d runs, notices %v", len(runs), h.rec.kinds())
	}
}

// TestCrashAfterRunOpened: the dead process had opened the run before it
// died; the claim is resolved by finding that run, not by opening another.
func TestCrashAfterRunOpened(t *testing.T) {
	t.Parallel()
	h := newHarness(t, at(friNoon), configWindow(berlinSunday))
	a := h.start("A")
	ctx := context.Background()
	ws, _ := a.store.Windows(ctx)
	id := h.config[0].ID
	h.tickAt(a, ann10m)
	h.rec.wait(t, 1) // the 10m announcement
	h.clock.Set(at(sunStart))
	f := windows.Firing{Key: windows.FiringKey(id, at(sunStart), windows.KindStart, 0), WindowID: id, Cluster: "prod",
		Start: at(sunStart), Kind: windows.KindStart, Due: at(sunStart), Plan: windows.PlanPerform, Owner: "dead", ClaimedAt: at(sunStart)}
	if _, _, err := ws.Claim(ctx, f); err != nil {
		t.Fatal(err)
	}
	res, err := a.engine.Start(ctx, runbook.StartRequest{Cluster: "prod", By: "window:" + id, Window: id, WindowEnds: at(sunEnd)})
	if err != nil || res.Run == nil {
		t.Fatal(res, err)
	}
	h.tickAt(a, "2026-01-04T01:05:00Z")
	st := h.rec.wait(t, 2)[1]
	if st.kind != "started" || st.run.ID != res.Run.ID {
		t.Fatalf("resolving the orphaned start: %+v, want run %s recognised", st, res.Run.ID)
	}
	got, _ := ws.Firing(ctx, f.Key)
	mustContain(t, got.Result, "confirmed after a crash")
	if runs, _ := a.engine.History(ctx, "prod", 0); len(runs) != 1 {
		t.Fatalf("%d runs, want the one", len(runs))
	}
}

// TestScheduleRules: who may schedule and unschedule, and what is refused.
func TestScheduleRules(t *testing.T) {
	t.Parallel()
	h := newHarness(t, at(friNoon), configWindow(berlinSunday))
	p := h.start("A")
	ctx := context.Background()
	req := windows.ScheduleRequest{Cluster: "staging", Spec: "CRON_TZ=America/New_York 0 3 * * SAT", Duration: 2 * time.Hour,
		Announce: []time.Duration{time.Hour}, Channel: "C0STAGE", By: approver}
	for _, c := range []struct {
		mutate func(*windows.ScheduleRequest)
		kind   string
		says   string
	}{
		{func(r *windows.ScheduleRequest) { r.By = operator }, runbook.Unauthorized, "only approvers of staging"},
		{func(r *windows.ScheduleRequest) { r.Cluster = "prdo" }, runbook.Invalid, `no cluster named "prdo"`},
		{func(r *windows.ScheduleRequest) { r.Spec = "0 2 * * SUNDAY" }, runbook.Invalid, windows.SpecExample},
		{func(r *windows.ScheduleRequest) { r.Spec = "CRON_TZ=Europe/Berlni 0 2 * * SUN" }, runbook.Invalid, "unknown time zone"},
		{func(r *windows.ScheduleRequest) { r.Duration = 9 * 24 * time.Hour }, runbook.Invalid, "longer than"},
		{func(r *windows.ScheduleRequest) { r.Cluster, r.Spec = "prod", berlinSunday }, runbook.Conflict, "already has a window"},
	} {
		r := req
		c.mutate(&r)
		_, err := p.sched.Schedule(ctx, r)
		if runbook.ErrorKind(err) != c.kind || !strings.Contains(runbook.ErrorMessage(err), c.says) {
			t.Errorf("Schedule(%+v) = %v; want %s saying %q", r, err, c.kind, c.says)
		}
	}
	w, err := p.sched.Schedule(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(w.ID, "w-") || w.Source != windows.FromSlack || w.CreatedBy != approver || !w.CreatedAt.Equal(at(friNoon)) {
		t.Fatalf("scheduled window %+v", w)
	}
	ups, err := p.sched.Upcoming(ctx, "", 1)
	if err != nil || len(ups) != 2 || ups[0].Window.ID != w.ID || !ups[0].Next[0].Start.Equal(at("2026-01-03T08:00:00Z")) {
		t.Fatalf("Upcoming = %+v, %v; want the staging window (Saturday 03:00 New York) first", ups, err)
	}
	if _, err := p.sched.Unschedule(ctx, h.config[0].ID, approver); runbook.ErrorKind(err) != runbook.Invalid ||
		!strings.Contains(err.Error(), "config file") {
		t.Fatalf("unscheduling a config window: %v", err)
	}
	if _, err := p.sched.Unschedule(ctx, w.ID, operator); runbook.ErrorKind(err) != runbook.Unauthorized {
		t.Fatalf("a non-approver unscheduling: %v", err)
	}
	if _, err := p.sched.Unschedule(ctx, "w-nope", approver); runbook.ErrorKind(err) != runbook.Invalid {
		t.Fatalf("unscheduling an unknown window: %v", err)
	}
	if _, err := p.sched.Unschedule(ctx, w.ID, approver); err != nil {
		t.Fatal(err)
	}
	if ws, _ := p.sched.Windows(ctx); len(ws) != 1 {
		t.Fatalf("windows after unschedule: %v", ws)
	}
}

// TestNotifierFailureIsNotRetried: when Slack fails, the firing is recorded
// with the failure and not posted again by a later tick (a retry after a
// partial post would repeat it).
func TestNotifierFailureIsNotRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, at(friNoon), configWindow(berlinSunday))
	p := h.start("A")
	h.rec.fail = runbook.Errorf(runbook.Unavailable, "slack is down")
	h.tickAt(p, friNoon)
	h.tickAt(p, ann24h)
	h.tickAt(p, "2026-01-03T01:00:30Z")
	if n := len(h.rec.notices()); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
	ws, _ := p.store.Windows(context.Background())
	f, _ := ws.Firing(context.Background(), windows.FiringKey(h.config[0].ID, at(sunStart), windows.KindAnnounce, 24*time.Hour))
	if f == nil || !f.Done {
		t.Fatalf("firing %+v", f)
	}
	mustContain(t, f.Result, "slack is down")
}

// TestCrashDuringSkip: an approver's skip was recorded, then the process
// died before the channel heard of it. The next scheduler sends the notice;
// the skip holds and the start opens nothing.
func TestCrashDuringSkip(t *testing.T) {
	t.Parallel()
	h := newHarness(t, at(ann24h), configWindow(berlinSunday))
	a := h.start("A")
	ctx := context.Background()
	ws, _ := a.store.Windows(ctx)
	id := h.config[0].ID
	h.tickAt(a, ann24h)
	f := windows.Firing{Key: windows.FiringKey(id, at(sunStart), windows.KindStart, 0), WindowID: id, Cluster: "prod",
		Start: at(sunStart), Kind: windows.KindStart, Due: at(sunStart), Plan: windows.PlanSkip, Owner: "dead", By: approver,
		ClaimedAt: at(ann24h)}
	if _, _, err := ws.Claim(ctx, f); err != nil {
		t.Fatal(err)
	}
	h.tickAt(a, "2026-01-03T01:05:00Z")
	sk := h.rec.wait(t, 2)[1]
	if sk.kind != "skipped" || sk.s.By != approver {
		t.Fatalf("after the crash: %v, want the skip announced", h.rec.kinds())
	}
	for _, when := range []string{ann1h, ann10m, sunStart} {
		h.tickAt(a, when)
	}
	if r, _ := a.engine.OpenRun(ctx, "prod"); r != nil || len(h.rec.notices()) != 2 {
		t.Fatalf("run %v, notices %v: the skip must hold", r, h.rec.kinds())
	}
}

// TestShutdownAtStart: sdbmaint is shutting down (the engine drains) the
// moment the window starts. The start is left claimed, not failed, and the
// process that comes back within the grace period opens the run.
func TestShutdownAtStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, at(ann10m), configWindow(berlinSunday))
	h.opts.Lease = 30 * time.Second
	a := h.start("A")
	ctx := context.Background()
	h.tickAt(a, ann10m)
	if err := a.engine.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	h.tickAt(a, sunStart)
	if got := h.rec.kinds(); !slices.Equal(got, []string{"announce 10m"}) {
		t.Fatalf("a draining engine: %v; nothing may be said yet", got)
	}
	a.stop()
	b := h.start("B")
	h.tickAt(b, "2026-01-04T01:00:40Z")
	st := h.rec.wait(t, 2)[1]
	if st.kind != "started" || st.run == nil || st.run.Window != h.config[0].ID {
		t.Fatalf("after the restart: %v", h.rec.kinds())
	}
}
