package bot_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
)

// The operator starts maintenance on prod from the channel; a second
// approver approves each gate from the card; the whole runbook runs against
// the simulated cluster. At each gate the card shows where things stand and
// the thread shows what ran; the sim shows the nodes went down and came back
// in the safe order.
func TestScenarioWholeMaintenance(t *testing.T) {
	t.Parallel()
	for _, mode := range transports {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, mode, harnessOptions{twoPersonRule: true})
			h.start()

			// The operator types /sdbmaint start prod in the channel.
			ack := h.command(operator, "start prod")
			if !strings.Contains(ack.Text(), "running preflight") {
				t.Errorf("start ack = %q, want it to say preflight is running", ack.Text())
			}

			// Preflight passes; the card offers the backup gate.
			card := h.waitGate(runbook.PhaseBackup, "approve")
			text := card.AllText()
			for _, want := range []string{"Maintenance · prod", "Started by <@" + operator + ">", "all blocking checks pass",
				"leaves online", "⏳ *backup* — waiting for approval", "BACKUP DATABASE"} {
				if !strings.Contains(text, want) {
					t.Errorf("card at the backup gate lacks %q:\n%s", want, text)
				}
			}
			if got := buttonIDs(card); got != "approve,skip-phase,abort" {
				t.Errorf("backup gate buttons = %s", got)
			}

			// The approver approves backup, snapshot and sync-snapshot.
			for _, step := range []struct {
				phase runbook.PhaseName
				stmt  string
			}{
				{runbook.PhaseBackup, "BACKUP DATABASE"},
				{runbook.PhaseSnapshot, "SNAPSHOT DATABASE"},
				{runbook.PhaseSyncSnapshot, "_SYNC_SNAPSHOT"},
			} {
				card = h.waitGate(step.phase, "approve")
				h.click(approver, card, "approve")
				h.slack.WaitFor(t, string(step.phase)+" statements in the sim", func() bool {
					return len(h.simLog(step.stmt)) == 2 // sales and web
				})
			}

			// The stop gate: its confirm dialog names what will be stopped.
			card = h.waitGate(runbook.PhaseStop, "approve")
			if !strings.Contains(card.AllText(), "✅ *snapshot*") || !strings.Contains(card.AllText(), "approved by <@"+approver+">") {
				t.Errorf("card at the stop gate does not show who approved the earlier phases:\n%s", card.AllText())
			}
			stopBtn := button(card, "approve")
			for _, want := range []string{"MA", "2 child aggregators", "4 leaves", "DOWN"} {
				if !strings.Contains(stopBtn.ConfirmText, want) {
					t.Errorf("stop confirm %q does not say %q", stopBtn.ConfirmText, want)
				}
			}
			if len(h.simLog("stop-node")) != 0 {
				t.Fatal("a node was stopped before stop was approved")
			}
			h.click(approver, card, "approve")

			// Maintenance: the cluster is down, the card's clock runs.
			card = h.waitGate(runbook.PhaseMaintenance, "maintenance-done")
			if !strings.Contains(card.AllText(), "Cluster is DOWN") {
				t.Errorf("card during maintenance does not show the downtime clock:\n%s", card.AllText())
			}
			for _, n := range h.sim.State().Nodes {
				if n.Process != "stopped" {
					t.Errorf("node %s (%s) is %s during maintenance", n.ID, n.Role, n.Process)
				}
			}
			if got := h.roleOrder("stop"); got != "master,aggregator,leaf" {
				t.Errorf("stop order = %s, want master,aggregator,leaf", got)
			}
			h.click(approver, card, "maintenance-done")

			// Start, then finalize runs by itself.
			card = h.waitGate(runbook.PhaseStart, "approve")
			h.click(approver, card, "approve")
			card = h.waitCard("run succeeded", func(m slackfake.Message) bool {
				return strings.Contains(m.Text, "succeeded") && len(m.Buttons()) == 0 && strings.Contains(m.AllText(), "Downtime:")
			})
			if got := h.roleOrder("start"); got != "leaf,aggregator,master" {
				t.Errorf("start order = %s, want leaf,aggregator,master", got)
			}
			if v := h.sim.Violations(); len(v) != 0 {
				t.Errorf("sim reports runbook violations: %+v", v)
			}
			for _, n := range h.sim.State().Nodes {
				if n.Process != "running" {
					t.Errorf("node %s is %s after the run", n.ID, n.Process)
				}
			}

			// The thread has the story, in order; there is one card only.
			h.slack.WaitFor(t, "run finished in the thread", func() bool {
				return strings.Contains(h.threadText(card), "run succeeded")
			})
			thread := h.threadText(card)
			last := -1
			for _, want := range []string{"preflight* done", "backup* done", "snapshot* done", "sync-snapshot* done",
				"stop · stop MA", "stop* done", "start* done", "finalize* done", "run succeeded"} {
				i := strings.Index(thread, want)
				if i < 0 {
					t.Errorf("thread lacks %q:\n%s", want, thread)
					continue
				}
				if i < last {
					t.Errorf("thread has %q out of order:\n%s", want, thread)
				}
				last = i
			}
			if n := h.cardCount(); n != 1 {
				t.Errorf("%d cards posted, want 1", n)
			}
			if r := h.openRun(); r != nil {
				t.Errorf("run still open: %+v", r)
			}
			// The metrics saw the run.
			mfs, err := h.metrics.Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]float64{}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					v := m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
					for _, l := range m.GetLabel() {
						if l.GetName() == "outcome" || l.GetName() == "phase" {
							seen[mf.GetName()+"/"+l.GetValue()] += v
						}
					}
					seen[mf.GetName()] += v
				}
			}
			for name, least := range map[string]float64{
				"sdbmaint_runs_finished_total/succeeded": 1, "sdbmaint_phase_duration_seconds/stop": 1,
				"sdbmaint_step_duration_seconds/start": 7, "sdbmaint_slack_api_calls_total": 10, "sdbmaint_slack_ack_seconds": 7,
			} {
				if seen[name] < least {
					t.Errorf("metric %s = %v, want at least %v", name, seen[name], least)
				}
			}
			t.Logf("%s: Web API calls for one whole maintenance: %v", mode, h.slack.CallCounts())
		})
	}
}

// A stranger, and the operator on their own run under the two-person rule,
// are refused privately; the audit log has the refusals; nothing moves.
// A member of the approvers' user group may approve.
func TestScenarioWhoMayApprove(t *testing.T) {
	t.Parallel()
	for _, mode := range transports {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, mode, harnessOptions{twoPersonRule: true})
			h.start()
			h.command(operator, "start prod")
			card := h.waitGate(runbook.PhaseBackup, "approve")
			before := h.openRun().Version

			h.click(stranger, card, "approve")
			h.waitEphemeral(stranger, "approver")
			h.click(operator, card, "approve")
			h.waitEphemeral(operator, "started")

			if r := h.openRun(); r.Version != before || r.Phase(runbook.PhaseBackup).Status != runbook.PhaseWaiting {
				t.Fatalf("a refused click changed the run: version %d -> %d, backup %s", before, r.Version, r.Phase(runbook.PhaseBackup).Status)
			}
			if len(h.simLog("BACKUP DATABASE")) != 0 {
				t.Fatal("a refused click ran the backup")
			}
			audit, err := h.engine.AuditLog(context.Background(), h.openRun().ID)
			if err != nil {
				t.Fatal(err)
			}
			var refused []string
			for _, a := range audit {
				if strings.Contains(a.What, "refused") {
					refused = append(refused, a.Who)
				}
			}
			if strings.Join(refused, ",") != stranger+","+operator {
				t.Errorf("audit refusals by %v, want %s then %s; audit: %+v", refused, stranger, operator, audit)
			}

			// A member of the on-call group approves.
			h.click("U0ONCALL1", card, "approve")
			h.slack.WaitFor(t, "backup after the group member's approval", func() bool { return len(h.simLog("BACKUP DATABASE")) == 2 })
			if n := len(h.slack.Calls("usergroups.users.list")); n < 1 {
				t.Errorf("group membership was not read from Slack")
			}
		})
	}
}

// Twenty people press Approve on the same card at once: the phase runs
// once, one click wins, every other gets "already approved by".
func TestScenarioTwentyRacingClicks(t *testing.T) {
	t.Parallel()
	for _, mode := range transports {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, mode, harnessOptions{})
			var users []string
			for i := 0; i < 20; i++ {
				users = append(users, "U0RACE"+string(rune('A'+i)))
			}
			h.slack.SetGroup(oncall, users...)
			h.start()
			h.command(operator, "start prod")
			h.click(approver, h.waitGate(runbook.PhaseBackup, "approve"), "approve")
			card := h.waitGate(runbook.PhaseSnapshot, "approve")

			var wg sync.WaitGroup
			for _, u := range users {
				wg.Add(1)
				go func() {
					defer wg.Done()
					h.click(u, card, "approve")
				}()
			}
			wg.Wait()
			h.waitGate(runbook.PhaseSyncSnapshot, "approve")
			if got := len(h.simLog("SNAPSHOT DATABASE")); got != 2 {
				t.Errorf("SNAPSHOT DATABASE ran %d times, want 2 (once per database)", got)
			}
			r := h.openRun()
			winner := r.Phase(runbook.PhaseSnapshot).Approval.By
			losers := 0
			for _, u := range users {
				if u == winner {
					continue
				}
				h.waitEphemeral(u, "Already approved by <@"+winner+">")
				losers++
			}
			if losers != 19 {
				t.Errorf("%d losing clicks answered, want 19", losers)
			}
			h.click(operator, h.waitGate(runbook.PhaseSyncSnapshot, "approve"), "abort")
			h.waitCard("aborted", func(m slackfake.Message) bool { return strings.Contains(m.Text, "aborted") })
		})
	}
}

// The bot is stopped (SIGTERM) in the middle of the run and started again;
// the old card is refreshed in place, and the run is finished from it.
func TestScenarioRestartMidRun(t *testing.T) {
	t.Parallel()
	for _, mode := range transports {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, mode, harnessOptions{sim: sim.Options{Leaves: 2, Aggregators: 1}})
			h.start()
			h.command(operator, "start prod")
			for _, p := range []runbook.PhaseName{runbook.PhaseBackup, runbook.PhaseSnapshot, runbook.PhaseSyncSnapshot, runbook.PhaseStop} {
				h.click(approver, h.waitGate(p, "approve"), "approve")
			}
			old := h.waitGate(runbook.PhaseMaintenance, "maintenance-done")

			h.stop()
			updates := mustMessage(t, h, old.TS).Updates
			h.start()
			// The new bot redraws the old card.
			h.slack.WaitFor(t, "the old card refreshed after the restart", func() bool {
				return mustMessage(t, h, old.TS).Updates > updates
			})

			// The old card's button still works: its value has everything.
			h.click(approver, old, "maintenance-done")
			h.click(approver, h.waitGate(runbook.PhaseStart, "approve"), "approve")
			h.waitCard("run succeeded", func(m slackfake.Message) bool { return strings.Contains(m.Text, "succeeded") })
			if n := h.cardCount(); n != 1 {
				t.Errorf("%d cards after the restart, want the one old card", n)
			}
			if c, _ := h.card(); c.TS != old.TS {
				t.Errorf("card ts %s, want the old %s", c.TS, old.TS)
			}
			if v := h.sim.Violations(); len(v) != 0 {
				t.Errorf("violations: %+v", v)
			}
		})
	}
}

func mustMessage(t *testing.T, h *harness, ts string) slackfake.Message {
	t.Helper()
	m, ok := h.slack.Message(ts)
	if !ok {
		t.Fatalf("message %s is gone", ts)
	}
	return m
}

func buttonIDs(m slackfake.Message) string {
	var ids []string
	for _, b := range m.Buttons() {
		ids = append(ids, strings.TrimPrefix(b.ActionID, "sdbmaint:"))
	}
	return strings.Join(ids, ",")
}

func button(m slackfake.Message, action string) slackfake.Button {
	for _, b := range m.Buttons() {
		if b.ActionID == "sdbmaint:"+action {
			return b
		}
	}
	return slackfake.Button{}
}
