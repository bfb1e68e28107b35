package bot_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/sdbmaint/sdbmaint/bot"
	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/cluster"
	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
)

// People and places in the scenarios.
const (
	channel  = "C0OPS"
	operator = "U0OPERATOR" // on the approver list; starts runs
	approver = "U0APPROVER" // on the approver list
	stranger = "U0STRANGER" // on no list
	oncall   = "S0ONCALL"   // a user group of approvers
	secret   = "test-signing-secret"
)

// transports lists the two ways Slack reaches the bot; every scenario runs
// over both.
var transports = []string{bot.ModeSocket, bot.ModeHTTP}

// simSource serves one simulated cluster named prod, with the adapters
// pointed at it the way cmd/sdbmaint wires a real cluster.
type simSource struct{ c *runbook.Cluster }

func (s simSource) Cluster(_ context.Context, name string) (*runbook.Cluster, error) {
	if name != s.c.Name {
		return nil, runbook.Errorf(runbook.Invalid, "unknown cluster %q; known: %s", name, s.c.Name)
	}
	return s.c, nil
}

func (s simSource) Names() []string { return []string{s.c.Name} }

// harness is one simulated cluster, one SQLite store, one fake Slack, and a
// bot (with its engine) that can be stopped and started again.
type harness struct {
	t       testing.TB
	mode    string
	sim     *sim.Cluster
	slack   *slackfake.Server
	store   *sqlite.Store
	cards   *bot.SQLCardStore
	source  simSource
	clock   *slackfake.FastClock
	tr      slackfake.Transport
	logs    *logBuf
	engine  *runbook.Engine
	bot     *bot.Bot
	cancel  context.CancelFunc
	done    chan error
	starts  int
	twoRule bool
	metrics *bot.Metrics
}

type harnessOptions struct {
	sim           sim.Options
	twoPersonRule bool
}

func newHarness(t testing.TB, mode string, o harnessOptions) *harness {
	t.Helper()
	ctx := context.Background()
	sc, err := sim.Start(ctx, o.sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	dir := t.TempDir()
	files, err := sc.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	sqlc, err := cluster.NewClient(cluster.SQLOptions{Addr: sc.MySQLAddr(), User: sim.DefaultUser, Password: sim.DefaultPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlc.Close() })
	runner, err := cluster.NewSSHRunner(cluster.SSHOptions{Addr: sc.SSHAddr(), User: files.User, KeyFile: files.KeyFile, KnownHostsFile: files.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Close() })
	admin := &cluster.SDBAdmin{Runner: runner}
	c := &runbook.Cluster{
		Name:      "prod",
		Preflight: cluster.NewPreflighter(cluster.PreflightOptions{Cluster: "prod", SQL: sqlc, Admin: admin, BackupRecent: 24 * time.Hour}),
		DB:        sqlc, Detection: sqlc, Ping: sqlc, Nodes: admin,
		BackupTo: "/backups", RecoveryTimeout: 30 * time.Second, PollInterval: 10 * time.Millisecond,
		ConfirmTimeout: 10 * time.Second,
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "sdbmaint.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cards, err := bot.NewSQLCardStore(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	clock := slackfake.NewFastClock(100)
	fake := slackfake.New(t, slackfake.WithClock(clock.Now))
	fake.SetGroup(oncall, "U0ONCALL1", "U0ONCALL2")
	h := &harness{t: t, mode: mode, sim: sc, slack: fake, store: store, cards: cards, source: simSource{c},
		clock: clock, logs: &logBuf{}, twoRule: o.twoPersonRule}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bot log:\n%s", h.logs.String())
		}
	})
	t.Cleanup(h.stop)
	return h
}

// start starts a bot and its engine on the harness's store, as `sdbmaint
// serve` does after a (re)start: the engine resumes open runs first.
func (h *harness) start() {
	h.t.Helper()
	h.startWith(nil)
}

// startWith is start with attach run on the new bot before it serves, for
// what serve wires beside the bot (maintenance windows).
func (h *harness) startWith(attach func(ctx context.Context, b *bot.Bot, logger *slog.Logger)) {
	t := h.t
	t.Helper()
	h.starts++
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.metrics = bot.NewMetrics()
	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(h.slack.URL()), slack.OptionAppLevelToken(slackfake.AppToken),
		slack.OptionHTTPClient(h.metrics.HTTPClient()))
	approvers, err := bot.NewApprovers([]string{operator, approver, oncall}, api, time.Minute, h.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	h.engine = runbook.NewEngine(runbook.EngineConfig{Store: h.store, Clusters: h.source, Approvers: approvers,
		TwoPersonRule: h.twoRule, Logger: logger.With("component", "engine")})
	if err := h.engine.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := bot.New(bot.Options{Engine: h.engine, Clusters: h.source, API: api, Approvers: approvers, Cards: h.cards,
		Channel: channel, Clock: h.clock, Logger: logger.With("component", "bot"), Metrics: h.metrics})
	if err != nil {
		t.Fatal(err)
	}
	h.bot = b
	if attach != nil {
		attach(ctx, b, logger)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := bot.ServeConfig{Mode: h.mode, Listener: ln, SigningSecret: []byte(secret), DrainTimeout: 20 * time.Second}
	if h.mode == bot.ModeSocket {
		cfg.Socket = socketmode.New(api, socketmode.OptionPingInterval(10*time.Second))
	}
	h.done = make(chan error, 1)
	h.cancel = cancel
	go func() { h.done <- b.Serve(ctx, cfg) }()
	if h.mode == bot.ModeSocket {
		h.tr = slackfake.SocketTransport{S: h.slack}
		h.slack.WaitConnected(t, h.starts)
	} else {
		h.tr = slackfake.HTTPTransport{BaseURL: "http://" + ln.Addr().String(), Secret: []byte(secret)}
		h.waitReady()
	}
}

// waitReady polls readiness with a deadline (HTTP mode has no connection
// to wait on).
func (h *harness) waitReady() {
	deadline := time.Now().Add(10 * time.Second)
	for !h.bot.Ready() {
		if time.Now().After(deadline) {
			h.t.Fatal("bot not ready after 10 s")
		}
		select {
		case <-h.slack.Changed():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stop stops the bot the way SIGTERM does and waits for it to drain.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Error("bot did not drain within 30 s")
	}
	h.cancel = nil
}

// command types /sdbmaint TEXT in the ops channel as user.
func (h *harness) command(user, text string) slackfake.Reply {
	h.t.Helper()
	r := h.slack.Command(h.t, h.tr, user, channel, text)
	if r.Status != 200 {
		h.t.Fatalf("/sdbmaint %s: status %d", text, r.Status)
	}
	return r
}

// card returns the run card: the bot's first top-level message about a
// maintenance in the channel.
func (h *harness) card() (slackfake.Message, bool) {
	for _, m := range h.slack.Messages(channel) {
		if strings.HasPrefix(m.Text, "Maintenance of prod") {
			return m, true
		}
	}
	return slackfake.Message{}, false
}

// cardCount counts the run cards posted.
func (h *harness) cardCount() int {
	n := 0
	for _, m := range h.slack.Messages(channel) {
		if strings.HasPrefix(m.Text, "Maintenance of prod") {
			n++
		}
	}
	return n
}

// waitCard waits until the card satisfies cond and returns it.
func (h *harness) waitCard(what string, cond func(m slackfake.Message) bool) slackfake.Message {
	h.t.Helper()
	var got slackfake.Message
	h.slack.WaitFor(h.t, "card: "+what, func() bool {
		m, ok := h.card()
		if ok && cond(m) {
			got = m
			return true
		}
		return false
	})
	return got
}

// waitGate waits until the card offers the button actionID (for the named
// phase's gate) and returns the card.
func (h *harness) waitGate(phase runbook.PhaseName, action string) slackfake.Message {
	h.t.Helper()
	return h.waitCard(fmt.Sprintf("%s gate with %s", phase, action), func(m slackfake.Message) bool {
		for _, b := range m.Buttons() {
			if b.ActionID == "sdbmaint:"+action && strings.Contains(b.Value, "|"+string(phase)+"|") {
				return true
			}
		}
		return false
	})
}

// click presses a button on msg as user.
func (h *harness) click(user string, msg slackfake.Message, action string) slackfake.Reply {
	h.t.Helper()
	r := h.slack.Click(h.t, h.tr, user, msg, "sdbmaint:"+action)
	if r.Status != 200 {
		h.t.Fatalf("click %s: status %d", action, r.Status)
	}
	return r
}

// threadText is everything in the card's thread, in order: each message's
// text, and for a file share the whole file in its place.
func (h *harness) threadText(card slackfake.Message) string {
	files := map[string]string{}
	for _, f := range h.slack.Files() {
		files[f.ID] = f.Content
	}
	var sb strings.Builder
	for _, m := range h.slack.Thread(card.TS) {
		if m.FileID != "" {
			sb.WriteString(files[m.FileID])
		} else {
			sb.WriteString(m.Text)
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

// waitEphemeral waits for a private message to user containing want.
func (h *harness) waitEphemeral(user, want string) {
	h.t.Helper()
	h.slack.WaitFor(h.t, fmt.Sprintf("ephemeral %q to %s", want, user), func() bool {
		for _, e := range h.slack.Ephemerals(user) {
			if strings.Contains(e.Text, want) {
				return true
			}
		}
		return false
	})
}

// waitResponse waits for a response_url post containing want.
func (h *harness) waitResponse(want string) slackfake.Response {
	h.t.Helper()
	var got slackfake.Response
	h.slack.WaitFor(h.t, fmt.Sprintf("response containing %q", want), func() bool {
		for _, r := range h.slack.Responses() {
			if strings.Contains(r.Text+string(r.Blocks), want) {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

// openRun returns prod's open run from the store.
func (h *harness) openRun() *runbook.Run {
	h.t.Helper()
	r, err := h.store.OpenRun(context.Background(), "prod")
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// simLog returns the sim's log lines that match any of words, in order.
func (h *harness) simLog(words ...string) []string {
	var out []string
	for _, e := range h.sim.Log() {
		for _, w := range words {
			if strings.Contains(e.Text, w) {
				out = append(out, e.Text)
				break
			}
		}
	}
	return out
}

// roleOrder maps each node stop/start in the sim log to its role, in order,
// collapsing runs of the same role: "master,aggregator,leaf".
func (h *harness) roleOrder(verb string) string {
	roles := map[string]string{}
	for _, n := range h.sim.State().Nodes {
		roles[n.ID] = n.Role
	}
	var seq []string
	for _, e := range h.sim.Log() {
		if e.Via != "ssh" || !strings.Contains(e.Text, verb+"-node") {
			continue
		}
		r := roles[e.Node]
		if len(seq) == 0 || seq[len(seq)-1] != r {
			seq = append(seq, r)
		}
	}
	return strings.Join(seq, ",")
}

// logBuf collects the log lines of the bot and the engine, shown when a
// test fails.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
