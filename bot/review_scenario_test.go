package bot_test

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/bot"
	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/runbooktest"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
)

// The preflight report's Start button carries the cluster name as the
// report had it; the run opens on the configured cluster that name matches,
// as if it had been typed ("PROD" is prod).
func TestScenarioStartButtonOpensTheConfiguredCluster(t *testing.T) {
	t.Parallel()
	h := newHarness(t, bot.ModeHTTP, harnessOptions{})
	h.start()
	m := bot.PreflightMessage(&runbook.Report{Cluster: "PROD", OK: true, At: time.Now()}, operator)
	blocks, err := json.Marshal(m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	h.click(operator, slackfake.Message{Channel: channel, TS: "1.1", Blocks: blocks}, "start-maintenance")
	h.waitGate(runbook.PhaseBackup, "approve")
	if r := h.openRun(); r == nil || r.Cluster != "prod" {
		t.Fatalf("open run = %+v, want one on prod", r)
	}
}

// /sdbmaint abort while the cluster is down does nothing by itself: the
// approver sees, privately, that abort means recovery, with a danger button
// for the run as it stands. Only the click aborts, and recovery starts the
// nodes in the safe order. The private message is never taken for the card.
func TestScenarioSlashAbortAsksFirst(t *testing.T) {
	t.Parallel()
	for _, mode := range transports {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, mode, harnessOptions{})
			h.start()
			h.command(operator, "start prod")
			for _, p := range []runbook.PhaseName{runbook.PhaseBackup, runbook.PhaseSnapshot, runbook.PhaseSyncSnapshot, runbook.PhaseStop} {
				h.click(approver, h.waitGate(p, "approve"), "approve")
			}
			h.waitGate(runbook.PhaseMaintenance, "maintenance-done")
			before := h.openRun()

			h.command(approver, "abort prod")
			resp := h.waitResponse("Abort means recovery: start what is stopped")
			if resp.ResponseType != "ephemeral" {
				t.Errorf("the abort question is %s, want ephemeral", resp.ResponseType)
			}
			prompt := slackfake.Message{Channel: channel, TS: "1700000000.000042", Blocks: resp.Blocks}
			btns := prompt.Buttons()
			if len(btns) != 1 || btns[0].ActionID != "sdbmaint:abort" || !strings.Contains(string(resp.Blocks), `"style":"danger"`) {
				t.Fatalf("abort question buttons = %+v, want one danger Abort", btns)
			}
			if now := h.openRun(); now == nil || now.Version != before.Version || now.Current != runbook.PhaseMaintenance {
				t.Fatalf("typing abort changed the run: %+v", now)
			}
			if got := len(h.simLog("start-node")); got != 0 {
				t.Fatalf("%d nodes started before the abort was confirmed", got)
			}

			click := h.slack.ClickPayload(t, approver, prompt, "sdbmaint:abort")
			click["container"].(map[string]any)["is_ephemeral"] = true
			if r := h.tr.Deliver(t, "interactive", click); r.Status != 200 {
				t.Fatalf("click: status %d", r.Status)
			}
			h.waitCard("aborted after recovery", func(m slackfake.Message) bool {
				return strings.Contains(m.Text, "aborted") && len(m.Buttons()) == 0
			})
			if got := h.roleOrder("start"); got != "leaf,aggregator,master" {
				t.Errorf("recovery started %s, want leaf,aggregator,master", got)
			}
			if n := h.cardCount(); n != 1 {
				t.Errorf("%d cards, want 1: the private message was taken for the card", n)
			}
			if ch, ts, err := h.cards.LoadCard(context.Background(), before.ID); err != nil || ts == prompt.TS {
				t.Errorf("card location %q %q (%v): the private message was saved as the card", ch, ts, err)
			}
		})
	}
}

// slowCards is the card table on a database that is slow to answer while
// the bot shuts down: the first read waits until the test lets it go.
type slowCards struct {
	bot.CardStore
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (s *slowCards) LoadCard(ctx context.Context, runID string) (string, string, error) {
	first := false
	s.once.Do(func() { first = true; close(s.entered) })
	if first {
		select {
		case <-s.release:
		case <-ctx.Done():
		}
	}
	return s.CardStore.LoadCard(ctx, runID)
}

// A run opened outside Slack (a window, or the terminal on the same store)
// reaches its backup gate while the bot is stuck on a slow card table; then
// the bot is told to stop. Every event the engine published before it
// drained still reaches the card and its thread, however long the table
// takes: the shutdown waits for the subscription to be emptied, not for a
// quiet moment.
func TestScenarioShutdownDeliversEveryEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := runbooktest.StartSim(t, runbooktest.Options{Name: "prod", BackupTo: "/backups"})
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sdbmaint.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cards, err := bot.NewSQLCardStore(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	slow := &slowCards{CardStore: cards, entered: make(chan struct{}), release: make(chan struct{})}
	clock := slackfake.NewFastClock(100)
	fake := slackfake.New(t, slackfake.WithClock(clock.Now))
	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(fake.URL()))
	approvers, err := bot.NewApprovers([]string{operator}, api, time.Minute, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	engine := runbook.NewEngine(runbook.EngineConfig{Store: store, Clusters: s.Source(), Approvers: approvers})
	b, err := bot.New(bot.Options{Engine: engine, Clusters: s.Source(), API: api, Approvers: approvers, Cards: slow,
		Channel: channel, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	listening := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- b.Serve(serveCtx, bot.ServeConfig{Mode: bot.ModeHTTP, Listener: ln, SigningSecret: []byte(secret),
			DrainTimeout: 20 * time.Second, Started: func(net.Addr) { close(listening) }})
	}()
	select {
	case <-listening:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}

	watch := engine.Subscribe()
	defer watch.Close()
	if _, err := engine.Start(ctx, runbook.StartRequest{Cluster: "prod", By: "window:nightly"}); err != nil {
		t.Fatal(err)
	}
	runbooktest.Await(t, watch, 20*time.Second, "the backup gate", func(ev runbook.Event) bool {
		return ev.Kind == runbook.EventGateWaiting && ev.Run.Current == runbook.PhaseBackup
	})
	<-slow.entered // the bot is reading the card table for the run's first event
	stop()
	// The table answers well after the shutdown began: longer than any
	// "quiet moment" a shutdown could wait for instead.
	time.AfterFunc(300*time.Millisecond, func() { close(slow.release) })
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return within 20 s of the shutdown")
	}

	var card slackfake.Message
	for _, m := range fake.Messages(channel) {
		if strings.HasPrefix(m.Text, "Maintenance of prod") {
			card = m
		}
	}
	if card.Text != "Maintenance of prod: backup waiting for approval" {
		t.Errorf("the card after shutdown says %q, want the backup gate", card.Text)
	}
	var thread strings.Builder
	for _, m := range fake.Thread(card.TS) {
		thread.WriteString(m.Text + "\n")
	}
	for _, want := range []string{"preflight* done", "⏳ *backup*"} {
		if !strings.Contains(thread.String(), want) {
			t.Errorf("the thread lacks %q:\n%s", want, thread.String())
		}
	}
}
