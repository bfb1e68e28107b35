package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/memstore"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
)

// newStoreBot is a bot on an engine over store, with the card locations in
// a real SQLite file, talking to the fake Slack. Nothing runs: the tests
// call the board and the click handler directly.
func newStoreBot(t *testing.T, fake *slackfake.Server, store runbook.Store) (*Bot, *SQLCardStore) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cards.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cards, err := NewSQLCardStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(fake.URL()), slack.OptionHTTPClient(m.HTTPClient()))
	b, err := New(Options{
		Engine:   runbook.NewEngine(runbook.EngineConfig{Store: store, Clusters: noClusters{}}),
		Clusters: noClusters{}, API: api, Channel: "C0OPS", Cards: cards, Clock: slackfake.NewFastClock(200), Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.board.close(ctx)
	})
	return b, cards
}

// clickOn is a click on a card button as Slack sends it.
func clickOn(user, channel, ts, action, value string) (slack.InteractionCallback, *slack.BlockAction) {
	var cb slack.InteractionCallback
	cb.Type = slack.InteractionTypeBlockActions
	cb.User.ID = user
	cb.Channel.ID = channel
	cb.Container = slack.Container{Type: "message", MessageTs: ts, ChannelID: channel}
	return cb, &slack.BlockAction{ActionID: actionID(action), Value: value}
}

// A hundred signed clicks naming runs the engine has never had leave no
// card behind, in memory or in the card table; a click on a real open run's
// card still tells the board where that card is.
func TestLearnKeepsOnlyRunsTheEngineKnows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := slackfake.New(t)
	store := memstore.New()
	run := fixture(runbook.PhaseBackup, runbook.PhaseWaiting)
	if _, err := store.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	b, cards := newStoreBot(t, fake, store)

	for i := range 100 {
		id := fmt.Sprintf("feed%012d", i)
		cb, a := clickOn("U0OPS", "C0OPS", fmt.Sprintf("1700000000.%06d", i), string(runbook.ActApprove),
			encodeValue(id, runbook.PhaseBackup, 3))
		b.click(ctx, cb, a)
		if ch, ts, err := cards.LoadCard(ctx, id); err != nil || ch != "" || ts != "" {
			t.Fatalf("the card table has %q %q (%v) for unknown run %s", ch, ts, err, id)
		}
	}
	b.board.mu.Lock()
	n := len(b.board.cards)
	b.board.mu.Unlock()
	if n != 0 {
		t.Fatalf("100 clicks on unknown runs left %d cards on the board, want 0", n)
	}
	if got := len(fake.Ephemerals("U0OPS")); got != 100 {
		t.Errorf("%d answers to 100 clicks on unknown runs, want each told", got)
	}

	cb, a := clickOn("U0OPS", "C0OPS", "1700000001.000001", string(runbook.ActApprove), encodeValue(run.ID, runbook.PhaseBackup, run.Version))
	b.click(ctx, cb, a)
	b.board.mu.Lock()
	c := b.board.cards[run.ID]
	b.board.mu.Unlock()
	if c == nil || c.ts != "1700000001.000001" || c.apiChannel != "C0OPS" {
		t.Fatalf("the click on the open run's card was not learned: %+v", c)
	}
	if ch, ts, err := cards.LoadCard(ctx, run.ID); err != nil || ch != "C0OPS" || ts != "1700000001.000001" {
		t.Errorf("card table has %q %q (%v) for the open run", ch, ts, err)
	}
}

// Even for runs the engine knows, clicks add at most maxLearned cards.
func TestLearnIsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memstore.New()
	var ids []string
	for i := range maxLearned + 20 {
		r := fixture(runbook.PhaseBackup, runbook.PhaseWaiting)
		r.ID, r.Cluster = fmt.Sprintf("run%04d", i), fmt.Sprintf("c%04d", i)
		if _, err := store.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	b, _ := newStoreBot(t, slackfake.New(t), store)
	for i, id := range ids {
		b.board.learn(ctx, id, "C0OPS", fmt.Sprintf("1700000000.%06d", i))
	}
	b.board.mu.Lock()
	n := len(b.board.cards)
	b.board.mu.Unlock()
	if n != maxLearned {
		t.Errorf("%d cards learned from %d clicks, want the bound %d", n, len(ids), maxLearned)
	}
}

// A button value is accepted only in exactly the form the bot writes it.
func TestDecodeValueIsCanonical(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"7f3c9a1be0d24c55|stop|3", true},
		{"7f3c9a1be0d24c55|stop|0", true},
		{"run-1_x|backup|9223372036854775807", true},
		{"7f3c|stop|+3", false},
		{"7f3c|stop|007", false},
		{"7f3c|stop|00", false},
		{"7f3c|stop|-0", false},
		{"7f3c|stop|-3", false},
		{"7f3c|stop| 3", false},
		{"7f3c|stop|3 ", false},
		{"7f3c|stop|0x3", false},
		{"7f3c|stop|3e0", false},
		{"7f3c|stop|9223372036854775808", false},
		{"7f3c|stop|", false},
		{"7f3c|STOP|3", false},
		{"7f 3c|stop|3", false},
		{"7f3c\n|stop|3", false},
		{"<!channel>|stop|3", false},
		{strings.Repeat("a", maxRunID) + "|stop|3", true},
		{strings.Repeat("a", maxRunID+1) + "|stop|3", false},
	} {
		v, err := decodeValue(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("decodeValue(%q) = %+v, %v; want ok=%v", tt.in, v, err, tt.ok)
			continue
		}
		if err == nil && encodeValue(v.RunID, v.Phase, v.Version) != tt.in {
			t.Errorf("decodeValue(%q) = %+v re-encodes differently", tt.in, v)
		}
		if err != nil && !strings.Contains(err.Error(), "button value") {
			t.Errorf("decodeValue(%q): error %q does not say what was wrong", tt.in, err)
		}
	}
}

// FuzzDecodeValueCanonical: whatever decodes, re-encodes to the same string.
func FuzzDecodeValueCanonical(f *testing.F) {
	for _, s := range []string{"7f3c|stop|12", "7f3c|stop|+3", "7f3c|stop|007", "7f3c|stop|-0", "a|preflight|0", "||", "a|stop|1|"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := decodeValue(s)
		if err != nil {
			return
		}
		if back := encodeValue(v.RunID, v.Phase, v.Version); back != s {
			t.Fatalf("decodeValue(%q) = %+v, which encodes as %q", s, v, back)
		}
	})
}

// abortRun is a run of the fixture at the state named.
func abortRun(state string) *runbook.Run {
	switch state {
	case "before stop":
		return fixture(runbook.PhaseSyncSnapshot, runbook.PhaseWaiting)
	case "maintenance":
		r := fixture(runbook.PhaseMaintenance, runbook.PhaseWaiting)
		r.DownSince = at(8, 2)
		for _, s := range r.Phase(runbook.PhaseStop).Steps {
			s.Status, s.Attempts = runbook.StepDone, 1
		}
		return r
	case "start failed":
		r := abortRun("maintenance")
		r.Phase(runbook.PhaseMaintenance).Status = runbook.PhaseDone
		r.Current = runbook.PhaseStart
		start := r.Phase(runbook.PhaseStart)
		start.Status = runbook.PhaseFailed
		start.Steps = []*runbook.Step{{ID: "start/1EAF", Phase: runbook.PhaseStart, Kind: runbook.StepStartNode, Role: runbook.RoleLeaf,
			Target: "1EAF", Label: "start leaf 1EAF", Status: runbook.StepFailed, Attempts: 1, Error: "did not start"}}
		return r
	case "preflight blocked":
		r := fixture(runbook.PhasePreflight, runbook.PhaseBlocked)
		r.Preflight = report(false)
		r.Phase(runbook.PhasePreflight).Note = "leaves_online failed"
		return r
	case "stop running":
		return fixture(runbook.PhaseStop, runbook.PhaseRunning)
	}
	panic("no state " + state)
}

// What /sdbmaint abort shows, against golden JSON, with the engine's own
// words for what abort does.
func TestAbortMessageGolden(t *testing.T) {
	t.Parallel()
	for name, state := range map[string]string{
		"abort_before_stop":        "before stop",
		"abort_nodes_down":         "maintenance",
		"abort_recovery_failing":   "start failed",
		"abort_preflight_blocked":  "preflight blocked",
		"abort_while_stop_running": "stop running",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := abortRun(state)
			m := AbortMessage(r, runbook.Describe(r, r.Current, at(10, 0)), runbook.Choices(r, at(10, 0)),
				slackfake.TeamURL+"archives/C0OPS/p1700000000000001")
			golden(t, name, m)
		})
	}
}

// The abort button /sdbmaint abort shows is a danger button carrying the
// run, the phase and the version, and says what the engine's abort does at
// that point: ends the run before stop, recovery once nodes may be down,
// and giving up when recovery itself fails.
func TestAbortMessageSaysWhatAbortDoesNow(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		state, action, want string
	}{
		{"before stop", "abort", "Abort ends the run; no node has been stopped."},
		{"maintenance", "abort", "Abort means recovery: start what is stopped"},
		{"start failed", "abort", "Abort stops trying and ends the run, leaving nodes as they are now."},
		{"preflight blocked", "end-run", "nothing to abort"},
		{"stop running", "", "abort is taken when it waits"},
	} {
		r := abortRun(tt.state)
		m := AbortMessage(r, runbook.Describe(r, r.Current, at(10, 0)), runbook.Choices(r, at(10, 0)), "")
		raw, err := json.Marshal(m.Blocks)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), tt.want) {
			t.Errorf("%s: message does not say %q:\n%s", tt.state, tt.want, raw)
		}
		btns := slackfake.Buttons(raw)
		if tt.action == "" {
			if len(btns) != 0 {
				t.Errorf("%s: buttons %+v while nothing can be decided", tt.state, btns)
			}
			continue
		}
		if len(btns) != 1 || btns[0].ActionID != actionID(tt.action) || !strings.Contains(string(raw), `"style":"danger"`) {
			t.Fatalf("%s: buttons %+v, want one danger %s", tt.state, btns, tt.action)
		}
		v, err := decodeValue(btns[0].Value)
		if err != nil || v != (gateValue{RunID: r.ID, Phase: r.Current, Version: r.Version}) {
			t.Errorf("%s: button carries %q (%v), want the run, phase and version", tt.state, btns[0].Value, err)
		}
	}
}

// The card's Abort confirm dialog says what the engine says; without the
// engine's words (no description) it still falls into the engine's three
// cases, and never promises recovery when recovery is what failed.
func TestCardAbortConfirmFollowsTheEngine(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ state, fallback string }{
		{"before stop", "This ends the run."},
		{"maintenance", "abort starts every stopped node in the safe order"},
		{"start failed", "abort stops trying and ends the run, leaving nodes as they are now"},
	} {
		r := abortRun(tt.state)
		next := runbook.Describe(r, r.Current, at(10, 0))
		var engine string
		for _, l := range strings.Split(next, "\n") {
			if strings.HasPrefix(l, "Abort") {
				engine = l
			}
		}
		if engine == "" {
			t.Fatalf("%s: Engine.Describe has no abort line:\n%s", tt.state, next)
		}
		raw, _ := json.Marshal(CardMessage(CardView{Run: r, Next: next, Now: at(10, 0)}).Blocks)
		if !strings.Contains(string(raw), `"confirm":{"title":{"type":"plain_text","text":"Abort maintenance of prod?"`) ||
			!strings.Contains(string(raw), jsonString(engine)) {
			t.Errorf("%s: the card's abort confirm does not say %q:\n%s", tt.state, engine, raw)
		}
		if got := abortEffect(r, ""); !strings.Contains(got, tt.fallback) {
			t.Errorf("%s: without a description abort is described as %q, want %q", tt.state, got, tt.fallback)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}
