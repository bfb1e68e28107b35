package main

// SIGTERM in the middle of a phase: serve stops taking new work, lets the
// step in flight finish (or, when the drain deadline is short, leaves it
// checkpointed as started-not-finished), and exits 0; a second serve on the
// same store resumes the run, which is finished from the old card.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
)

// serveProc is `sdbmaint serve` running in-process with its own interrupt
// channel.
type serveProc struct {
	sigs   chan os.Signal
	stderr *watched
	done   chan int
}

func startServeProc(t *testing.T, getenv func(string) string, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{sigs: make(chan os.Signal, 1), stderr: newWatched(), done: make(chan int, 1)}
	env := &Env{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: p.stderr, Getenv: getenv, Interrupts: p.sigs}
	go func() { p.done <- Main(context.Background(), env, append([]string{"serve"}, args...)) }()
	t.Cleanup(func() {
		select {
		case p.sigs <- syscall.SIGTERM:
		default:
		}
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			t.Errorf("serve did not exit")
		}
	})
	return p
}

// wait waits for serve to exit and returns its exit code.
func (p *serveProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-p.done:
		p.done <- code // for the cleanup
		return code
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not exit after SIGTERM:\n%s", p.stderr.String())
		return 0
	}
}

func TestServeSIGTERMMidPhase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode  string
		drain string // --drain-timeout
		// finish: the drain lets the MA's stop finish, and requests that
		// arrive meanwhile are refused; otherwise the drain is cut short
		// and the step stays started-not-finished in the store.
		finish bool
	}{
		{"http", "20s", true},
		{"socket", "50ms", false},
	} {
		name := tc.mode + "/checkpoint"
		if tc.finish {
			name = tc.mode + "/finish"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sigtermMidPhase(t, tc.mode, tc.drain, tc.finish)
		})
	}
}

func sigtermMidPhase(t *testing.T, mode, drain string, finish bool) {
	const stopTime = time.Second
	fake := slackfake.New(t)
	addr := freeAddr(t)
	c, path := startRunSim(t, sim.Options{Leaves: 2, Aggregators: 1, Databases: []string{"sales"}, StopTime: stopTime})
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "\n%s\n", slackBlock(mode, addr, fake.URL()))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	getenv := envMap("SLACK_BOT_TOKEN", slackfake.BotToken, "SLACK_APP_TOKEN", slackfake.AppToken, "SLACK_SIGNING_SECRET", secretSigning)
	args := []string{"--config", path, "--drain-timeout", drain, "--log-level", "debug"}
	connect := func(p *serveProc, n int) slackfake.Transport {
		if mode == "socket" {
			fake.WaitConnected(t, n)
			return slackfake.SocketTransport{S: fake}
		}
		p.stderr.waitFor(t, "ready for Slack requests")
		return slackfake.HTTPTransport{BaseURL: "http://" + addr, Secret: []byte(secretSigning)}
	}
	roles := map[string]string{}
	for _, n := range c.State().Nodes {
		roles[n.ID] = n.Role
	}
	ma := c.Master()

	// The first serve: a run up to the stop gate, approved.
	first := startServeProc(t, getenv, args...)
	tr := connect(first, 1)
	fake.Command(t, tr, serveOperator, serveChannel, "start sim")
	stale := waitCardButton(t, fake, "sim", runbook.PhaseBackup, "approve")
	for _, p := range []runbook.PhaseName{runbook.PhaseBackup, runbook.PhaseSnapshot, runbook.PhaseSyncSnapshot, runbook.PhaseStop} {
		fake.Click(t, tr, serveApprover, waitCardButton(t, fake, "sim", p, "approve"), "sdbmaint:approve")
	}
	card := stale

	// The MA's stop is out and takes a second: SIGTERM now.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Wait(ctx, func(st sim.State) bool {
		for _, e := range st.Log {
			if e.Via == "ssh" && strings.Contains(e.Text, " stop-node ") && e.Node == ma {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	signalled := len(c.Log())
	first.sigs <- syscall.SIGTERM

	if finish {
		// New work is refused while the step finishes: commands are
		// answered "restarting", a click is acknowledged and ignored.
		first.stderr.waitFor(t, "shutting down: draining")
		for _, text := range []string{"preflight sim", "status sim", "start sim"} {
			r := fake.Command(t, tr, serveOperator, serveChannel, text)
			if r.Status != 200 || !strings.Contains(r.Text(), "restarting") {
				t.Errorf("/sdbmaint %s after SIGTERM: %d %s, want it refused as restarting", text, r.Status, r.Body)
			}
		}
		if r := fake.Click(t, tr, serveApprover, stale, "sdbmaint:approve"); r.Status != 200 || len(r.Body) != 0 {
			t.Errorf("a click after SIGTERM: %d %s", r.Status, r.Body)
		}
	}
	if code := first.wait(t); code != 0 {
		t.Fatalf("serve exit %d after SIGTERM:\n%s", code, first.stderr.String())
	}
	logs := first.stderr.String()
	if !strings.Contains(logs, "shutting down: draining") || !strings.Contains(logs, "stopped") {
		t.Errorf("no drain in the log:\n%s", logs)
	}

	// Nothing new started after the signal: no SQL (no preflight), no
	// other node's stop; the MA's step finished or is checkpointed.
	for _, e := range c.Log()[signalled:] {
		if e.Via == "sql" || (strings.Contains(e.Text, " stop-node ") && e.Node != ma) || strings.Contains(e.Text, " start-node ") {
			t.Errorf("work after SIGTERM: %s %s %s", e.Via, e.Node, e.Text)
		}
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(filepath.Dir(path), "sdbmaint.db"))
	if err != nil {
		t.Fatal(err)
	}
	run, err := store.OpenRun(context.Background(), "sim")
	if err != nil || run == nil {
		store.Close()
		t.Fatalf("the run is not open after the drain: %v %v", run, err)
	}
	audit, err := store.Audit(context.Background(), run.ID)
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := runbook.StepDone
	if !finish {
		want = runbook.StepRunning // started, never finished: re-read on resume
	}
	for _, s := range run.Phase(runbook.PhaseStop).Steps {
		switch {
		case s.Kind == runbook.StepPreStopCheck:
			// The read-only re-check ran before the MA's stop was sent.
			if s.Status != runbook.StepDone {
				t.Errorf("the stop phase's re-check is %s after the drain, want done", s.Status)
			}
		case s.Target == ma && s.Status != want:
			t.Errorf("the MA's stop is %s after the drain, want %s", s.Status, want)
		case s.Target != ma && (s.Status != runbook.StepPending || s.Attempts != 0):
			t.Errorf("step %s is %s (attempts %d) after the drain, want pending", s.ID, s.Status, s.Attempts)
		}
	}
	approvals := 0
	for _, a := range audit {
		if a.Who == serveApprover {
			approvals++
		}
		if a.Who == serveOperator && a.What != "start" {
			t.Errorf("a request after SIGTERM reached the engine: %+v", a)
		}
	}
	if approvals != 4 {
		t.Errorf("%d decisions by the approver in the audit log, want the 4 approvals (the click after SIGTERM must do nothing): %+v", approvals, audit)
	}

	// The toolbox finishes the command it received, as a real one does.
	if _, err := c.Wait(ctx, func(st sim.State) bool {
		for _, n := range st.Nodes {
			if n.ID == ma {
				return n.Process == "stopped"
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}

	// The second serve resumes: the stop phase goes on (child aggregator,
	// then leaves) and the old card takes the rest of the run.
	second := startServeProc(t, getenv, args...)
	tr = connect(second, 2)
	fake.Click(t, tr, serveApprover, waitCardButton(t, fake, "sim", runbook.PhaseMaintenance, "maintenance-done"), "sdbmaint:maintenance-done")
	fake.Click(t, tr, serveApprover, waitCardButton(t, fake, "sim", runbook.PhaseStart, "approve"), "sdbmaint:approve")
	var end slackfake.Message
	fake.WaitFor(t, "the run succeeded on its card", func() bool {
		for _, m := range fake.Messages(serveChannel) {
			if strings.HasPrefix(m.Text, "Maintenance of sim:") && strings.Contains(m.Text, "succeeded") && len(m.Buttons()) == 0 {
				end = m
				return true
			}
		}
		return false
	})
	second.sigs <- syscall.SIGTERM
	if code := second.wait(t); code != 0 {
		t.Fatalf("second serve exit %d:\n%s", code, second.stderr.String())
	}
	if end.TS != card.TS {
		t.Errorf("the run finished on card %s, want the old card %s", end.TS, card.TS)
	}
	cards := 0
	for _, m := range fake.Messages(serveChannel) {
		if strings.HasPrefix(m.Text, "Maintenance of sim:") {
			cards++
		}
	}
	if cards != 1 {
		t.Errorf("%d cards for the run, want the one old card", cards)
	}
	// Each node stopped and started once, in the safe order, no violation.
	var cmds []string
	for _, e := range c.Log() {
		if e.Via == "ssh" && (strings.Contains(e.Text, " stop-node ") || strings.Contains(e.Text, " start-node ")) {
			verb := "stop"
			if strings.Contains(e.Text, " start-node ") {
				verb = "start"
			}
			cmds = append(cmds, verb+" "+roles[e.Node])
		}
	}
	if got, want := strings.Join(cmds, ", "), "stop master, stop aggregator, stop leaf, stop leaf, start leaf, start leaf, start aggregator, start master"; got != want {
		t.Errorf("node commands: %s\nwant: %s", got, want)
	}
	if v := c.Violations(); len(v) > 0 {
		t.Errorf("violations: %+v", v)
	}
	// A checkpointed step was re-read, not sent again.
	store, err = sqlite.Open(context.Background(), filepath.Join(filepath.Dir(path), "sdbmaint.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	run, err = store.GetRun(context.Background(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	evidence := run.Step("stop/" + ma).Evidence
	if run.Status != runbook.RunSucceeded || (!finish && !strings.Contains(evidence, "after a restart, no command sent")) {
		t.Errorf("run %s, the MA's stop evidence %q", run.Status, evidence)
	}
}
