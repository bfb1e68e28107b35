package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/bot"
	"github.com/sdbmaint/sdbmaint/config"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
)

const windowsConfig = `
store:
  path: sdbmaint.db
slack:
  bot_token: xoxb-test
  app_token: xapp-test
  channel: C0123456
  approvers: [U0AAAAAAA]
clusters:
  - name: prod
    sql: {addr: "10.0.0.10:3306", user: sdbmaint, password: secret}
    toolbox:
      ssh: {addr: deploy-1, user: ops, key_file: id_ed25519, known_hosts: known_hosts}
    windows:
      - schedule: "CRON_TZ=Europe/Berlin 0 2 * * SUN"
        duration: 3h
        announce: [24h, 1h, 10m]
  - name: staging
    sql: {addr: "10.0.1.10:3306", user: sdbmaint, password: secret}
    toolbox:
      ssh: {addr: deploy-1, user: ops, key_file: id_ed25519, known_hosts: known_hosts}
    windows:
      - schedule: "CRON_TZ=America/New_York 0 3 1 * *"
        duration: 90m
        announce: [1h]
        channel: "#staging-ops"
`

// windowsDir writes the config (and the key files it names) into a fresh
// directory and returns the config's path.
func windowsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"id_ed25519": "key\n", "known_hosts": "hosts\n", "sdbmaint.yaml": windowsConfig} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "sdbmaint.yaml")
}

// storeSlackWindow puts a window into the store as /sdbmaint schedule does,
// and an approver's skip of its first start.
func storeSlackWindow(t *testing.T, dbPath string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ws, err := st.Windows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := windows.Window{ID: "w-5eed01", Cluster: "staging", Spec: "TZ=UTC 30 22 * * FRI", Duration: time.Hour,
		Announce: []time.Duration{}, Source: windows.FromSlack, CreatedBy: "U0AAAAAAA", CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := ws.AddWindow(ctx, w); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 2, 22, 30, 0, 0, time.UTC)
	skip := windows.Firing{Key: windows.FiringKey(w.ID, start, windows.KindStart, 0), WindowID: w.ID, Cluster: "staging",
		Start: start, Kind: windows.KindStart, Due: start, Plan: windows.PlanSkip, Owner: "test", By: "U0AAAAAAA", ClaimedAt: start.Add(-time.Hour)}
	if _, _, err := ws.Claim(ctx, skip); err != nil {
		t.Fatal(err)
	}
}

func runWindowsCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := Main(context.Background(), env, append([]string{"windows"}, args...))
	return code, out.String(), errb.String()
}

const wantWindows = `Times in Europe/Berlin and UTC.

w-5eed01  staging  "TZ=UTC 30 22 * * FRI"  1h  (scheduled from Slack by U0AAAAAAA; announced in the default channel)
  next  Fri 2026-01-02 23:30 CET  (2026-01-02 22:30 UTC)  until Sat 00:30 CET  SKIPPED by U0AAAAAAA
  then  Fri 2026-01-09 23:30 CET  (2026-01-09 22:30 UTC)  until Sat 00:30 CET
  not announced ahead

cfg-%s  prod  "CRON_TZ=Europe/Berlin 0 2 * * SUN"  3h  (config file; announced in C0123456)
  next  Sun 2026-01-04 02:00 CET  (2026-01-04 01:00 UTC)  until Sun 05:00 CET
  then  Sun 2026-01-11 02:00 CET  (2026-01-11 01:00 UTC)  until Sun 05:00 CET
  announced Sat 2026-01-03 02:00 CET (24h ahead), Sun 2026-01-04 01:00 CET (1h ahead), Sun 2026-01-04 01:50 CET (10m ahead)

cfg-%s  staging  "CRON_TZ=America/New_York 0 3 1 * *"  1h30m  (config file; announced in #staging-ops)
  next  Sun 2026-02-01 09:00 CET  (2026-02-01 08:00 UTC)  until Sun 10:30 CET
  then  Sun 2026-03-01 09:00 CET  (2026-03-01 08:00 UTC)  until Sun 10:30 CET
  announced Sun 2026-02-01 08:00 CET (1h ahead)
`

func TestWindowsCommand(t *testing.T) {
	t.Parallel()
	cfg := windowsDir(t)
	storeSlackWindow(t, filepath.Join(filepath.Dir(cfg), "sdbmaint.db"))
	code, out, errOut := runWindowsCmd(t, "--config", cfg, "--from", "2026-01-02T12:00:00Z", "--tz", "Europe/Berlin", "--count", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	prod := windows.ConfigWindow("prod", "CRON_TZ=Europe/Berlin 0 2 * * SUN", 0, nil, "").ID
	staging := windows.ConfigWindow("staging", "CRON_TZ=America/New_York 0 3 1 * *", 0, nil, "").ID
	want := strings.NewReplacer("cfg-%s  prod", prod+"  prod", "cfg-%s  staging", staging+"  staging").Replace(wantWindows)
	if out != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want)
	}
}

func TestWindowsCommandJSONAndFilter(t *testing.T) {
	t.Parallel()
	cfg := windowsDir(t)
	code, out, errOut := runWindowsCmd(t, "--config", cfg, "--from", "2026-01-04T02:00:00Z", "--cluster", "prod", "--count", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []struct {
		ID       string   `json:"id"`
		Cluster  string   `json:"cluster"`
		Source   string   `json:"source"`
		Announce []string `json:"announce"`
		Current  *struct {
			Start, End time.Time
		} `json:"current"`
		Next []struct {
			Start    time.Time   `json:"start"`
			Announce []time.Time `json:"announce"`
		} `json:"next"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if len(got) != 1 || got[0].Cluster != "prod" || got[0].Source != "config" || strings.Join(got[0].Announce, ",") != "24h,1h,10m" {
		t.Fatalf("JSON %s", out)
	}
	// At 02:00Z the window that started at 01:00Z is open until 04:00Z.
	if c := got[0].Current; c == nil || !c.Start.Equal(time.Date(2026, 1, 4, 1, 0, 0, 0, time.UTC)) || !c.End.Equal(time.Date(2026, 1, 4, 4, 0, 0, 0, time.UTC)) {
		t.Fatalf("current window %+v", got[0].Current)
	}
	if n := got[0].Next; len(n) != 1 || !n[0].Start.Equal(time.Date(2026, 1, 11, 1, 0, 0, 0, time.UTC)) || len(n[0].Announce) != 3 {
		t.Fatalf("next %+v", n)
	}
	// No store file yet: the command says so and does not create one.
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "sdbmaint.db")); !os.IsNotExist(err) {
		t.Fatalf("the listing created the store: %v", err)
	}
	code, out, _ = runWindowsCmd(t, "--config", cfg, "--cluster", "prod")
	if code != 0 || !strings.Contains(out, "no store at") {
		t.Fatalf("exit %d, output %s", code, out)
	}
}

func TestWindowsCommandErrors(t *testing.T) {
	t.Parallel()
	cfg := windowsDir(t)
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{nil, 2, "--config is required"},
		{[]string{"--config", cfg, "--from", "tomorrow"}, 2, "not an RFC 3339 time"},
		{[]string{"--config", cfg, "--tz", "Mars/Olympus"}, 2, "not known"},
		{[]string{"--config", cfg, "--count", "0"}, 2, "give 1 to 100"},
		{[]string{"--config", cfg, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--config", cfg, "--cluster", "prdo"}, 1, `no cluster "prdo"`},
		{[]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, 1, "missing.yaml"},
	} {
		code, _, errOut := runWindowsCmd(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.says) {
			t.Errorf("windows %v: exit %d, stderr %q; want exit %d saying %q", c.args, code, errOut, c.code, c.says)
		}
	}
}

type namesOnly []string

func (n namesOnly) Cluster(_ context.Context, name string) (*runbook.Cluster, error) {
	return nil, runbook.Errorf(runbook.Invalid, "no cluster %q in this test", name)
}
func (n namesOnly) Names() []string { return n }

// TestStartWindows wires windows into a bot as serve does: the verbs are
// added, the config windows are scheduled, and the loop ends with ctx.
func TestStartWindows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := windowsDir(t)
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store = config.Store{Path: filepath.Join(t.TempDir(), "sdbmaint.db")}
	st, err := openConfiguredStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := runbook.NewEngine(runbook.EngineConfig{Store: st, Clusters: namesOnly(cfg.ClusterNames())})
	b, err := bot.New(bot.Options{Engine: eng, API: slack.New("xoxb-test", slack.OptionAPIURL("http://127.0.0.1:1/")),
		Clusters: namesOnly(cfg.ClusterNames()), Channel: "C0123456"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := startWindows(ctx, cfg, st, b, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range b.Verbs() {
		names = append(names, v.Name)
	}
	for _, want := range []string{"schedule", "windows", "unschedule"} {
		if !slices.Contains(names, want) {
			t.Errorf("verbs %v lack %s", names, want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := run(cctx); err != nil {
		t.Fatalf("the scheduler loop after cancel: %v", err)
	}
}
