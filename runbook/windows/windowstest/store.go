package windowstest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
)

// TestStore is the conformance suite of windows.Store. open returns a new,
// empty store; call it from each implementation's tests:
//
//	func TestWindowStore(t *testing.T) { windowstest.TestStore(t, openStore) }
func TestStore(t *testing.T, open func(t *testing.T) windows.Store) {
	t.Run("windows", func(t *testing.T) { t.Parallel(); testWindows(t, open(t)) })
	t.Run("claim", func(t *testing.T) { t.Parallel(); testClaim(t, open(t)) })
	t.Run("claim-race", func(t *testing.T) { t.Parallel(); testClaimRace(t, open(t)) })
	t.Run("finish", func(t *testing.T) { t.Parallel(); testFinish(t, open(t)) })
	t.Run("takeover", func(t *testing.T) { t.Parallel(); testTakeOver(t, open(t)) })
	t.Run("watermark", func(t *testing.T) { t.Parallel(); testWatermark(t, open(t)) })
}

var t0 = time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)

func testWindows(t *testing.T, s windows.Store) {
	ctx := context.Background()
	if ws, err := s.StoredWindows(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("empty store: StoredWindows = %v, %v", ws, err)
	}
	a := windows.Window{
		ID: "w-aaaaaa", Cluster: "prod", Spec: "CRON_TZ=Europe/Berlin 30 2 * * SUN", Duration: 3 * time.Hour,
		Announce: []time.Duration{24 * time.Hour, 90 * time.Minute}, Channel: "C1",
		Source: windows.FromSlack, CreatedBy: "U1", CreatedAt: t0,
	}
	b := a
	b.ID, b.Cluster, b.Announce, b.Channel, b.CreatedAt = "w-bbbbbb", "staging", []time.Duration{}, "", t0.Add(time.Minute)
	for _, w := range []windows.Window{a, b} {
		if err := s.AddWindow(ctx, w); err != nil {
			t.Fatalf("AddWindow(%s): %v", w.ID, err)
		}
	}
	if err := s.AddWindow(ctx, a); runbook.ErrorKind(err) != runbook.Conflict {
		t.Fatalf("AddWindow of an existing ID: err = %v, want a Conflict", err)
	}
	ws, err := s.StoredWindows(ctx)
	if err != nil || len(ws) != 2 {
		t.Fatalf("StoredWindows = %v, %v; want 2 windows", ws, err)
	}
	checkWindow(t, ws[0], a)
	checkWindow(t, ws[1], b)
	got, err := s.RemoveWindow(ctx, a.ID)
	if err != nil {
		t.Fatalf("RemoveWindow: %v", err)
	}
	checkWindow(t, *got, a)
	if _, err := s.RemoveWindow(ctx, a.ID); runbook.ErrorKind(err) != runbook.Invalid {
		t.Fatalf("RemoveWindow of a removed window: err = %v, want Invalid", err)
	}
	if ws, _ := s.StoredWindows(ctx); len(ws) != 1 || ws[0].ID != b.ID {
		t.Fatalf("after remove: %v", ws)
	}
}

func checkWindow(t *testing.T, got, want windows.Window) {
	t.Helper()
	if got.ID != want.ID || got.Cluster != want.Cluster || got.Spec != want.Spec || got.Duration != want.Duration ||
		got.Channel != want.Channel || got.Source != want.Source || got.CreatedBy != want.CreatedBy ||
		!got.CreatedAt.Equal(want.CreatedAt) || len(got.Announce) != len(want.Announce) {
		t.Fatalf("window read back as %+v, want %+v", got, want)
	}
	for i := range want.Announce {
		if got.Announce[i] != want.Announce[i] {
			t.Fatalf("announce read back as %v, want %v", got.Announce, want.Announce)
		}
	}
}

func firing(kind windows.Kind, lead time.Duration, owner string) windows.Firing {
	start := t0
	return windows.Firing{
		Key: windows.FiringKey("w-aaaaaa", start, kind, lead), WindowID: "w-aaaaaa", Cluster: "prod",
		Start: start, Kind: kind, Lead: lead, Due: start.Add(-lead), Plan: windows.PlanPerform,
		Owner: owner, ClaimedAt: start.Add(-lead).Add(time.Second),
	}
}

func testClaim(t *testing.T, s windows.Store) {
	ctx := context.Background()
	f := firing(windows.KindAnnounce, time.Hour, "a")
	if got, err := s.Firing(ctx, f.Key); err != nil || got != nil {
		t.Fatalf("Firing before claim = %v, %v; want nil", got, err)
	}
	won, _, err := s.Claim(ctx, f)
	if err != nil || !won {
		t.Fatalf("first Claim = %v, %v; want won", won, err)
	}
	g := f
	g.Owner, g.Plan, g.By = "b", windows.PlanSkip, "U2"
	won, cur, err := s.Claim(ctx, g)
	if err != nil || won {
		t.Fatalf("second Claim = %v, %v; want lost", won, err)
	}
	if cur.Owner != "a" || cur.Plan != windows.PlanPerform || cur.Key != f.Key || !cur.Start.Equal(f.Start) ||
		!cur.Due.Equal(f.Due) || cur.Lead != time.Hour || cur.Kind != windows.KindAnnounce || cur.Done {
		t.Fatalf("losing Claim returned %+v, want the first claim %+v", cur, f)
	}
	got, err := s.Firing(ctx, f.Key)
	if err != nil || got == nil || got.Owner != "a" || !got.ClaimedAt.Equal(f.ClaimedAt) || got.Cluster != "prod" || got.WindowID != "w-aaaaaa" {
		t.Fatalf("Firing = %+v, %v", got, err)
	}
	// A different kind or lead of the same occurrence is another firing.
	for _, other := range []windows.Firing{firing(windows.KindAnnounce, 10*time.Minute, "b"), firing(windows.KindStart, 0, "b")} {
		if won, _, err := s.Claim(ctx, other); err != nil || !won {
			t.Fatalf("Claim(%s) = %v, %v; want won", other.Key, won, err)
		}
	}
	// An approver's skip of next week's start, with who skipped it.
	sk := firing(windows.KindStart, 0, "c")
	sk.Start = sk.Start.Add(7 * 24 * time.Hour)
	sk.Key = windows.FiringKey(sk.WindowID, sk.Start, windows.KindStart, 0)
	sk.Plan, sk.By = windows.PlanSkip, "U9"
	if won, _, err := s.Claim(ctx, sk); err != nil || !won {
		t.Fatalf("Claim(skip) = %v, %v", won, err)
	}
	if got, _ := s.Firing(ctx, sk.Key); got == nil || got.By != "U9" || got.Plan != windows.PlanSkip {
		t.Fatalf("skip read back as %+v", got)
	}
}

func testClaimRace(t *testing.T, s windows.Store) {
	ctx := context.Background()
	f := firing(windows.KindStart, 0, "")
	const n = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := f
			g.Owner = string(rune('a' + i))
			won, _, err := s.Claim(ctx, g)
			if err != nil {
				t.Errorf("Claim: %v", err)
				return
			}
			if won {
				mu.Lock()
				wins = append(wins, g.Owner)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d concurrent claims: %d won (%v), want exactly 1", n, len(wins), wins)
	}
	if got, _ := s.Firing(ctx, f.Key); got == nil || got.Owner != wins[0] {
		t.Fatalf("stored claim %+v, winner %s", got, wins[0])
	}
}

func testFinish(t *testing.T, s windows.Store) {
	ctx := context.Background()
	f := firing(windows.KindStart, 0, "a")
	if err := s.Finish(ctx, f.Key, "a", "x", t0); runbook.ErrorKind(err) != runbook.Conflict {
		t.Fatalf("Finish before claim: %v, want a Conflict", err)
	}
	if _, _, err := s.Claim(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, f.Key, "b", "x", t0); runbook.ErrorKind(err) != runbook.Conflict {
		t.Fatalf("Finish by another owner: %v, want a Conflict", err)
	}
	at := t0.Add(1500 * time.Millisecond)
	if err := s.Finish(ctx, f.Key, "a", "run 7f3c opened", at); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if err := s.Finish(ctx, f.Key, "a", "again", at); runbook.ErrorKind(err) != runbook.Conflict {
		t.Fatalf("second Finish: %v, want a Conflict", err)
	}
	got, err := s.Firing(ctx, f.Key)
	if err != nil || got == nil || !got.Done || got.Result != "run 7f3c opened" || !got.FinishedAt.Equal(at) {
		t.Fatalf("finished firing = %+v, %v", got, err)
	}
}

func testTakeOver(t *testing.T, s windows.Store) {
	ctx := context.Background()
	old := firing(windows.KindAnnounce, time.Hour, "dead")
	recent := firing(windows.KindAnnounce, 10*time.Minute, "alive")
	done := firing(windows.KindStart, 0, "dead")
	for _, f := range []windows.Firing{old, recent, done} {
		if _, _, err := s.Claim(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish(ctx, done.Key, "dead", "ok", t0); err != nil {
		t.Fatal(err)
	}
	cut := recent.ClaimedAt // exclusive: claims made before it
	uf, err := s.Unfinished(ctx, cut)
	if err != nil || len(uf) != 1 || uf[0].Key != old.Key {
		t.Fatalf("Unfinished = %+v, %v; want only %s", uf, err, old.Key)
	}
	now := t0.Add(time.Hour)
	if ok, err := s.TakeOver(ctx, old.Key, "someone-else", old.ClaimedAt, "me", now); err != nil || ok {
		t.Fatalf("TakeOver naming the wrong owner = %v, %v; want false", ok, err)
	}
	if ok, err := s.TakeOver(ctx, old.Key, "dead", old.ClaimedAt, "me", now); err != nil || !ok {
		t.Fatalf("TakeOver = %v, %v; want true", ok, err)
	}
	if ok, err := s.TakeOver(ctx, old.Key, "dead", old.ClaimedAt, "you", now); err != nil || ok {
		t.Fatalf("second TakeOver = %v, %v; want false", ok, err)
	}
	if ok, err := s.TakeOver(ctx, done.Key, "dead", done.ClaimedAt, "me", now); err != nil || ok {
		t.Fatalf("TakeOver of a finished firing = %v, %v; want false", ok, err)
	}
	got, _ := s.Firing(ctx, old.Key)
	if got.Owner != "me" || !got.ClaimedAt.Equal(now) {
		t.Fatalf("after TakeOver: %+v", got)
	}
	if err := s.Finish(ctx, old.Key, "dead", "late", now); runbook.ErrorKind(err) != runbook.Conflict {
		t.Fatalf("Finish by the old owner after a takeover: %v, want a Conflict", err)
	}
	if err := s.Finish(ctx, old.Key, "me", "reported", now); err != nil {
		t.Fatal(err)
	}
}

func testWatermark(t *testing.T, s windows.Store) {
	ctx := context.Background()
	if wm, err := s.Watermark(ctx); err != nil || !wm.IsZero() {
		t.Fatalf("new store watermark = %v, %v; want zero", wm, err)
	}
	for _, at := range []time.Time{t0, t0.Add(-time.Hour), t0.Add(90 * time.Second), t0} {
		if err := s.AdvanceWatermark(ctx, at); err != nil {
			t.Fatal(err)
		}
	}
	if wm, err := s.Watermark(ctx); err != nil || !wm.Equal(t0.Add(90*time.Second)) {
		t.Fatalf("watermark = %v, %v; want the highest, %v", wm, err, t0.Add(90*time.Second))
	}
}
