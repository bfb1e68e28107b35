package bot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/bot"
	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
)

// Forged, unsigned, stale and oversized HTTP requests are refused before
// any work: 401 (413 for the oversized one), no run, no Slack call.
func TestScenarioForgedHTTPRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, bot.ModeHTTP, harnessOptions{})
	h.start()
	base := h.tr.(slackfake.HTTPTransport).BaseURL
	path, ctype, body, err := slackfake.EncodeHTTP("slash_commands", h.slack.SlashPayload(operator, channel, "start prod"))
	if err != nil {
		t.Fatal(err)
	}
	before := len(h.slack.Calls(""))
	now := time.Now()
	tests := []struct {
		name string
		req  *http.Request
		want int
	}{
		{"unsigned", slackfake.SignedRequest(base+path, nil, now, ctype, body), 401},
		{"wrong secret", slackfake.SignedRequest(base+path, []byte("not-the-secret"), now, ctype, body), 401},
		{"stale (6 min old)", slackfake.SignedRequest(base+path, []byte(secret), now.Add(-6*time.Minute), ctype, body), 401},
		{"from the future", slackfake.SignedRequest(base+path, []byte(secret), now.Add(6*time.Minute), ctype, body), 401},
		{"body changed after signing", func() *http.Request {
			r := slackfake.SignedRequest(base+path, []byte(secret), now, ctype, body)
			tampered := slackfake.SignedRequest(base+path, nil, now, ctype, []byte(strings.Replace(string(body), "start", "abort", 1)))
			tampered.Header = r.Header.Clone()
			return tampered
		}(), 401},
		{"signature not hex", func() *http.Request {
			r := slackfake.SignedRequest(base+path, []byte(secret), now, ctype, body)
			r.Header.Set("X-Slack-Signature", "v0=zz")
			return r
		}(), 401},
		{"interaction forged", func() *http.Request {
			p, ct, b, _ := slackfake.EncodeHTTP("interactive", map[string]any{"type": "block_actions",
				"user": map[string]any{"id": approver}, "actions": []map[string]any{{"action_id": "sdbmaint:approve", "value": "x|stop|1"}}})
			return slackfake.SignedRequest(base+p, []byte("forged"), now, ct, b)
		}(), 401},
		{"too large (1 MiB)", slackfake.SignedRequest(base+path, []byte(secret), now, ctype, []byte(strings.Repeat("a", 1<<20))), 413},
	}
	for _, tt := range tests {
		resp, err := http.DefaultClient.Do(tt.req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	if n := len(h.slack.Calls("")); n != before {
		t.Errorf("refused requests made %d Slack calls", n-before)
	}
	if r := h.openRun(); r != nil {
		t.Errorf("a refused request opened a run: %+v", r)
	}
	// The genuine request still works.
	h.command(operator, "start prod")
	h.waitGate(runbook.PhaseBackup, "approve")
}

// Thirty-two leaves stop while Slack rate-limits the channel (one post per
// second, and every third chat.postMessage answered 429 Retry-After 1):
// every line of output still reaches the thread, in order.
func TestScenarioRateLimitedStopLosesNoOutput(t *testing.T) {
	t.Parallel()
	for _, mode := range transports {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, mode, harnessOptions{sim: sim.Options{Leaves: 32, Databases: []string{"sales"}}})
			h.slack.LimitChannelPosts(time.Second)
			h.slack.Throttle("chat.postMessage", 3, 1)
			h.start()
			h.command(operator, "start prod")
			for _, p := range []runbook.PhaseName{runbook.PhaseBackup, runbook.PhaseSnapshot, runbook.PhaseSyncSnapshot, runbook.PhaseStop} {
				h.click(approver, h.waitGate(p, "approve"), "approve")
			}
			card := h.waitGate(runbook.PhaseMaintenance, "maintenance-done")
			r := h.openRun()
			chunks, err := h.engine.Output(context.Background(), r.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, c := range chunks {
				if strings.HasPrefix(c.StepID, "stop/") {
					lines = append(lines, c.Line)
				}
			}
			if len(lines) < 2*35 {
				t.Fatalf("only %d stop output lines; the sim should print progress for each of 35 nodes", len(lines))
			}
			h.slack.WaitFor(t, "every stop output line in the thread", func() bool {
				thread := h.threadText(card)
				for _, l := range lines {
					if !strings.Contains(thread, l) {
						return false
					}
				}
				return strings.Contains(thread, "stop* done")
			})
			limited := 0
			for _, c := range h.slack.Calls("chat.postMessage") {
				if c.Status == http.StatusTooManyRequests {
					limited++
				}
			}
			if limited == 0 {
				t.Error("Slack never rate-limited the bot; the test proves nothing")
			}
			// Each node's lines keep their order in the thread.
			thread := h.threadText(card)
			for _, node := range h.sim.Leaves()[:3] {
				last := -1
				for _, l := range lines {
					if !strings.Contains(l, node) && !strings.Contains(l, runbook.ShortID(node)) {
						continue
					}
					i := strings.Index(thread, l)
					if i < last {
						t.Errorf("line %q of %s is out of order in the thread", l, node)
					}
					last = i
				}
			}
			t.Logf("%s: %d stop lines, %d answered 429, %d thread posts, %d files", mode, len(lines), limited,
				len(h.slack.Thread(card.TS)), len(h.slack.Files()))
			h.click(approver, card, "abort")
			h.waitCard("aborted", func(m slackfake.Message) bool { return strings.Contains(m.Text, "aborted") })
		})
	}
}

// The MA will not stop: the card offers Retry, detection-off and Abort;
// the approver takes the runbook's way out and the stop goes on.
func TestScenarioMasterWillNotStop(t *testing.T) {
	t.Parallel()
	for _, mode := range transports {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, mode, harnessOptions{sim: sim.Options{Leaves: 2, Aggregators: 1}})
			if err := h.sim.Inject("stop-fails:" + h.sim.Master()); err != nil {
				t.Fatal(err)
			}
			h.start()
			h.command(operator, "start prod")
			for _, p := range []runbook.PhaseName{runbook.PhaseBackup, runbook.PhaseSnapshot, runbook.PhaseSyncSnapshot, runbook.PhaseStop} {
				h.click(approver, h.waitGate(p, "approve"), "approve")
			}
			card := h.waitGate(runbook.PhaseStop, "detection-off")
			if got := buttonIDs(card); got != "retry,detection-off,abort" {
				t.Errorf("buttons after the MA failed to stop: %s", got)
			}
			if !strings.Contains(card.AllText(), "❌ *stop* — failed") {
				t.Errorf("card does not show the failure:\n%s", card.AllText())
			}
			if err := h.sim.Inject("clear"); err != nil {
				t.Fatal(err)
			}
			h.click(approver, card, "detection-off")
			card = h.waitGate(runbook.PhaseMaintenance, "maintenance-done")
			if h.sim.State().LeafFailureDetection {
				t.Error("leaf_failure_detection is still on after detection-off")
			}
			h.click(approver, card, "maintenance-done")
			h.click(approver, h.waitGate(runbook.PhaseStart, "approve"), "approve")
			h.waitCard("run done", func(m slackfake.Message) bool { return !strings.Contains(m.Text, "running") && len(m.Buttons()) == 0 })
			if !h.sim.State().LeafFailureDetection {
				t.Error("leaf_failure_detection was not restored at the end")
			}
		})
	}
}

// A leaf will not start: Skip asks for a reason in a modal; the reason is
// recorded on the step and the run goes on.
func TestScenarioSkipWithReason(t *testing.T) {
	t.Parallel()
	for _, mode := range transports {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, mode, harnessOptions{})
			h.start()
			h.command(operator, "start prod")
			card := h.waitGate(runbook.PhaseBackup, "skip-phase")
			h.click(approver, card, "skip-phase")
			h.slack.WaitFor(t, "the reason dialog", func() bool { return len(h.slack.Views()) == 1 })
			v := h.slack.Views()[0]

			// An empty reason is refused inside the dialog.
			r := h.slack.Submit(t, h.tr, approver, v, "reason", "reason", "   ")
			if !strings.Contains(string(r.Body), "response_action") || !strings.Contains(string(r.Body), "Say why") {
				t.Errorf("empty reason ack = %s, want errors in the dialog", r.Body)
			}
			r = h.slack.Submit(t, h.tr, approver, v, "reason", "reason", "nightly backup ran at 02:00")
			if len(r.Body) != 0 {
				t.Errorf("reason ack = %s, want an empty ack that closes the dialog", r.Body)
			}
			card = h.waitGate(runbook.PhaseSnapshot, "approve")
			if !strings.Contains(card.AllText(), "skipped by <@"+approver+">") || !strings.Contains(card.AllText(), "nightly backup ran at 02:00") {
				t.Errorf("card does not show the skip with its reason:\n%s", card.AllText())
			}
			if len(h.simLog("BACKUP DATABASE")) != 0 {
				t.Error("backup ran although it was skipped")
			}
			h.click(approver, card, "abort")
			h.waitCard("aborted", func(m slackfake.Message) bool { return strings.Contains(m.Text, "aborted") })
		})
	}
}

// A child aggregator is offline: preflight blocks, the card offers only
// Re-run preflight and End run; once it is back, re-running passes.
func TestScenarioBlockedPreflight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, bot.ModeSocket, harnessOptions{})
	if err := h.sim.Inject("aggregator-offline:" + h.sim.Aggregators()[0]); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.command(operator, "start prod")
	card := h.waitGate(runbook.PhasePreflight, "rerun-preflight")
	if got := buttonIDs(card); got != "rerun-preflight,end-run" {
		t.Errorf("blocked preflight buttons = %s", got)
	}
	if !strings.Contains(card.AllText(), "❌ *aggregators online*") {
		t.Errorf("card does not show the failing check first:\n%s", card.AllText())
	}
	if err := h.sim.Inject("clear"); err != nil {
		t.Fatal(err)
	}
	h.click(approver, card, "rerun-preflight")
	card = h.waitGate(runbook.PhaseBackup, "approve")
	h.click(approver, card, "abort")
	h.waitCard("aborted", func(m slackfake.Message) bool { return strings.Contains(m.Text, "aborted") })
}

// Every verb of /sdbmaint, typed in the channel, over both transports.
func TestScenarioCommands(t *testing.T) {
	t.Parallel()
	for _, mode := range transports {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, mode, harnessOptions{twoPersonRule: true})
			h.start()

			if r := h.command(operator, "help"); !strings.Contains(string(r.Body), "/sdbmaint preflight CLUSTER") || !strings.Contains(string(r.Body), "ephemeral") {
				t.Errorf("help ack = %s", r.Body)
			}
			if r := h.command(operator, "strat prod"); !strings.Contains(r.Text(), "Did you mean `/sdbmaint start`?") {
				t.Errorf("typo ack = %q", r.Text())
			}
			if r := h.command(operator, "start prdo"); !strings.Contains(r.Text(), "Did you mean `prod`?") {
				t.Errorf("unknown cluster ack = %q", r.Text())
			}
			h.command(operator, "clusters")
			h.waitResponse("`prod` — no open run")
			h.command(operator, "status")
			h.waitResponse("No maintenance run is open")
			h.command(operator, "abort prod")
			h.waitResponse("No run is open on `prod`")

			// preflight posts the report in the channel with a Start button.
			h.command(operator, "preflight prod")
			resp := h.waitResponse("Preflight · prod")
			if resp.ResponseType != "in_channel" {
				t.Errorf("preflight report is %s, want in_channel", resp.ResponseType)
			}
			report := slackfake.Message{Channel: channel, TS: "1.1", Blocks: resp.Blocks}
			if b := report.Buttons(); len(b) != 1 || b[0].Text != "Start maintenance" {
				t.Fatalf("preflight report buttons = %+v", b)
			}
			if len(h.simLog("stop-node")) != 0 || h.openRun() != nil {
				t.Fatal("preflight changed something")
			}
			h.click(operator, report, "start-maintenance")
			h.waitGate(runbook.PhaseBackup, "approve")

			// A second start names who holds the cluster and links the card.
			h.command(approver, "start prod")
			card, _ := h.card()
			link := slackfake.TeamURL + "archives/" + channel + "/p" + strings.Replace(card.TS, ".", "", 1)
			h.waitResponse("already open: started by <@" + operator + ">")
			h.waitResponse(link)

			h.command(operator, "status prod")
			h.waitResponse("backup waiting for approval")
			// abort asks first, privately; the button aborts.
			h.command(approver, "abort prod")
			resp = h.waitResponse("Abort ends the run; no node has been stopped.")
			h.click(approver, slackfake.Message{Channel: channel, TS: "1.2", Blocks: resp.Blocks}, "abort")
			h.waitCard("aborted", func(m slackfake.Message) bool { return strings.Contains(m.Text, "aborted") && len(m.Buttons()) == 0 })
			h.command(operator, "history prod")
			h.waitResponse("Recent runs on prod")
		})
	}
}

// Slack redelivers an envelope whose ack it did not see: the bot acks the
// copy and does the work once.
func TestScenarioRedeliveredEnvelope(t *testing.T) {
	t.Parallel()
	h := newHarness(t, bot.ModeSocket, harnessOptions{})
	h.start()
	payload := h.slack.SlashPayload(operator, channel, "start prod")
	id, ack, err := h.slack.SendEnvelope("slash_commands", payload)
	if err != nil {
		t.Fatal(err)
	}
	<-ack
	again, err := h.slack.Redeliver(id, "slash_commands", payload, 1)
	if err != nil {
		t.Fatal(err)
	}
	<-again
	h.waitGate(runbook.PhaseBackup, "approve")
	if n := len(h.slack.Acks(id)); n != 2 {
		t.Errorf("%d acks for the envelope, want 2 (one per delivery)", n)
	}
	audit, err := h.engine.AuditLog(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	starts := 0
	for _, a := range audit {
		if strings.Contains(a.What, "start") {
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("the redelivered command was handled %d times: %+v", starts, audit)
	}
	// Slack asks for a reconnect; the bot opens a new socket and goes on.
	if err := h.slack.Disconnect(); err != nil {
		t.Fatal(err)
	}
	h.slack.WaitConnected(t, 2)
	if r := h.command(operator, "help"); !strings.Contains(string(r.Body), "sdbmaint") {
		t.Errorf("help after reconnect = %s", r.Body)
	}
}

// /healthz, /readyz and /metrics answer on slack.listen.
func TestScenarioOperationsEndpoints(t *testing.T) {
	t.Parallel()
	h := newHarness(t, bot.ModeHTTP, harnessOptions{})
	h.start()
	base := h.tr.(slackfake.HTTPTransport).BaseURL
	h.command(operator, "help")
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ready",
		"/metrics": `sdbmaint_slack_ack_seconds_count{kind="slash_commands",transport="http"} 1`,
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		var body strings.Builder
		_, _ = fmt.Fprint(&body, readAll(resp))
		if resp.StatusCode != 200 || !strings.Contains(body.String(), want) {
			t.Errorf("GET %s = %d %q, want %q", path, resp.StatusCode, truncate(body.String()), want)
		}
	}
	for _, m := range []string{"sdbmaint_slack_api_calls_total", "sdbmaint_runs_finished_total", "sdbmaint_step_failures_total",
		"sdbmaint_phase_duration_seconds", "sdbmaint_slack_rate_limited_total"} {
		_ = m // present once observed; the names are checked in bot's unit tests
	}
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

var _ = json.Marshal
