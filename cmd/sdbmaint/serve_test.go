package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

const (
	serveChannel  = "C0OPS"
	serveOperator = "U0OPERATOR"
	serveApprover = "U0APPROVER"
	serveSecret   = "serve-test-signing-secret"
)

// serveEnv is the environment serve reads its secrets from.
func serveEnv(kv ...string) func(string) string {
	return envMap(append([]string{"SLACK_BOT_TOKEN", slackfake.BotToken, "SLACK_APP_TOKEN", slackfake.AppToken,
		"SLACK_SIGNING_SECRET", serveSecret}, kv...)...)
}

// serveConfig writes a config for the simulated cluster with a slack block
// pointed at the fake Slack.
func serveConfig(t *testing.T, fake *slackfake.Server, mode, listen string) string {
	t.Helper()
	_, path := startRunSim(t, sim.Options{Leaves: 2, Aggregators: 1})
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, `
slack:
  mode: %s
  bot_token: ${SLACK_BOT_TOKEN}
  app_token: ${SLACK_APP_TOKEN}
  signing_secret: ${SLACK_SIGNING_SECRET}
  listen: %q
  api_url: %q
  channel: %s
  approvers: [%s, %s]
  two_person_rule: true
`, mode, listen, fake.URL(), serveChannel, serveOperator, serveApprover)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startServe runs `sdbmaint serve` in-process; stop sends SIGTERM and
// returns the exit code and stderr.
func startServe(t *testing.T, getenv func(string) string, args ...string) (stderr *watched, stop func() (int, string)) {
	t.Helper()
	sigs := make(chan os.Signal, 1)
	stderr = newWatched()
	env := &Env{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: stderr, Getenv: getenv, Interrupts: sigs}
	done := make(chan int, 1)
	go func() { done <- Main(context.Background(), env, append([]string{"serve"}, args...)) }()
	stopped := false
	stop = func() (int, string) {
		if stopped {
			return 0, ""
		}
		stopped = true
		sigs <- syscall.SIGTERM
		select {
		case code := <-done:
			return code, stderr.String()
		case <-time.After(60 * time.Second):
			t.Fatalf("serve did not exit after SIGTERM:\n%s", stderr.String())
			return 0, ""
		}
	}
	t.Cleanup(func() { stop() })
	return stderr, stop
}

// The operator installs the bot against the simulated cluster, asks for a
// preflight and starts a run; SIGTERM drains and exits 0; a new serve
// finds the old card and updates it in place.
func TestServeSocketModeEndToEnd(t *testing.T) {
	t.Parallel()
	fake := slackfake.New(t)
	path := serveConfig(t, fake, "socket", freeAddr(t))
	_, stop := startServe(t, serveEnv(), "--config", path, "--drain-timeout", "20s")
	fake.WaitConnected(t, 1)
	tr := slackfake.SocketTransport{S: fake}

	r := fake.Command(t, tr, serveOperator, serveChannel, "preflight sim")
	if !strings.Contains(r.Text(), "Running preflight on `sim`") {
		t.Errorf("preflight ack = %q", r.Text())
	}
	fake.WaitFor(t, "the preflight report", func() bool {
		for _, resp := range fake.Responses() {
			if strings.Contains(slackfake.Texts(resp.Blocks), "Preflight · sim") && strings.Contains(resp.Text, "all blocking checks pass") {
				return true
			}
		}
		return false
	})

	fake.Command(t, tr, serveOperator, serveChannel, "start sim")
	var card slackfake.Message
	fake.WaitFor(t, "the run card at the backup gate", func() bool {
		for _, m := range fake.Messages(serveChannel) {
			if strings.HasPrefix(m.Text, "Maintenance of sim") && len(m.Buttons()) > 0 {
				card = m
				return true
			}
		}
		return false
	})

	code, stderr := stop()
	if code != 0 {
		t.Fatalf("serve exit %d after SIGTERM:\n%s", code, stderr)
	}
	for _, s := range []string{slackfake.BotToken, slackfake.AppToken, serveSecret} {
		if strings.Contains(stderr, s) {
			t.Errorf("the log shows a secret (%s…)", s[:8])
		}
	}
	if !strings.Contains(stderr, "shutting down: draining") || !strings.Contains(stderr, "stopped") {
		t.Errorf("no drain in the log:\n%s", stderr)
	}

	// Started again: the card of the open run is refreshed in place and
	// its buttons work.
	restartServeAndAbortFromOldCard(t, fake, tr, card, serveEnv(), path)
}

// restartServeAndAbortFromOldCard starts serve again (Socket Mode, the
// stand-in's second connection) and checks that the card of the open run
// is refreshed in place and that its Abort button still works.
func restartServeAndAbortFromOldCard(t *testing.T, fake *slackfake.Server, tr slackfake.Transport, card slackfake.Message,
	getenv func(string) string, path string) {
	t.Helper()
	before, _ := fake.Message(card.TS)
	_, stop := startServe(t, getenv, "--config", path)
	fake.WaitConnected(t, 2)
	fake.WaitFor(t, "the old card refreshed", func() bool {
		m, _ := fake.Message(card.TS)
		return m.Updates > before.Updates
	})
	fake.Click(t, tr, serveApprover, card, "sdbmaint:abort")
	fake.WaitFor(t, "the run aborted on the old card", func() bool {
		m, _ := fake.Message(card.TS)
		return strings.Contains(m.Text, "aborted")
	})
	if code, stderr := stop(); code != 0 {
		t.Fatalf("second serve exit %d:\n%s", code, stderr)
	}
}

// HTTP mode: signed requests work, unsigned ones get 401, and /healthz,
// /readyz and /metrics answer on slack.listen.
func TestServeHTTPMode(t *testing.T) {
	t.Parallel()
	fake := slackfake.New(t)
	addr := freeAddr(t)
	path := serveConfig(t, fake, "http", addr)
	stderr, stop := startServe(t, serveEnv(), "--config", path)
	base := "http://" + addr
	stderr.waitFor(t, "ready for Slack requests")
	if resp, err := http.Get(base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /readyz: %v %v", resp, err)
	}
	tr := slackfake.HTTPTransport{BaseURL: base, Secret: []byte(serveSecret)}
	if r := fake.Command(t, tr, serveOperator, serveChannel, "help"); r.Status != 200 || !strings.Contains(string(r.Body), "/sdbmaint start CLUSTER") {
		t.Errorf("signed help: %d %s", r.Status, r.Body)
	}
	unsigned := slackfake.HTTPTransport{BaseURL: base}
	if r := fake.Command(t, unsigned, serveOperator, serveChannel, "start sim"); r.Status != 401 {
		t.Errorf("unsigned start: status %d, want 401", r.Status)
	}
	for _, p := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d", p, resp.StatusCode)
		}
	}
	if code, stderr := stop(); code != 0 {
		t.Fatalf("serve exit %d:\n%s", code, stderr)
	}
}

func TestServeUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		yaml string
		want string
	}{
		{args: nil, want: "--config is required"},
		{args: []string{"extra"}, want: `unexpected argument "extra"`},
		{yaml: "clusters:\n  - name: a\n    sql: {addr: \"h:1\", user: u, password: p}\n    toolbox: {local: true}\n", want: "slack: not configured"},
	} {
		args := tt.args
		if tt.yaml != "" {
			args = []string{"--config", writeConfig(t, tt.yaml)}
		}
		var stderr bytes.Buffer
		env := &Env{Stdout: &bytes.Buffer{}, Stderr: &stderr, Getenv: serveEnv()}
		if code := Main(context.Background(), env, append([]string{"serve"}, args...)); code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want 2 and %q", args, code, stderr.String(), tt.want)
		}
	}
}
