package bot

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/runbook"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// t0 is the fixtures' clock: 2026-03-01 03:10 UTC.
var t0 = time.Date(2026, 3, 1, 3, 10, 0, 0, time.UTC)

func at(min, sec int) time.Time {
	return t0.Add(time.Duration(min)*time.Minute + time.Duration(sec)*time.Second)
}

// golden compares m's JSON with testdata/name.json and checks Slack's limits.
func golden(t *testing.T, name string, m Message) {
	t.Helper()
	blocks, err := json.Marshal(m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	if err := slackfake.CheckMessage(m.Text, blocks); err != nil {
		t.Errorf("%s breaks Slack's limits: %v", name, err)
	}
	got, err := json.MarshalIndent(struct {
		Text   string        `json:"text"`
		Blocks []slack.Block `json:"blocks"`
	}{m.Text, m.Blocks}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (go test ./bot -run %s -update rewrites it after review):\n%s", name, path, t.Name(), got)
	}
}

func report(ok bool) *runbook.Report {
	r := &runbook.Report{
		Cluster: "prod", OK: ok, At: at(0, 5), Took: 1200 * time.Millisecond,
		Databases: []string{"sales", "web"}, LeafFailureDetection: true,
		Checks: []runbook.Check{
			{Name: runbook.CheckLeavesOnline, Status: runbook.Pass, Detail: "8/8 leaves online"},
			{Name: runbook.CheckAggregatorsOnline, Status: runbook.Pass, Detail: "3/3 aggregators online"},
			{Name: runbook.CheckNoOrphanPartitions, Status: runbook.Pass, Detail: "no orphan partitions"},
			{Name: runbook.CheckNodesMatchToolbox, Status: runbook.Pass, Detail: "toolbox sees the same 11 nodes"},
			{Name: runbook.CheckRestoreRedundancyPlan, Status: runbook.Pass, Detail: "nothing to restore"},
			{Name: runbook.CheckRebalancePlan, Status: runbook.Warn, Detail: "rebalance plan: 2 steps on `web`"},
			{Name: runbook.CheckRecentBackup, Status: runbook.Pass, Detail: "last backup 03:10 (5 h ago)"},
		},
		Nodes: []runbook.Node{
			{ID: "9F3A00000000000000000000000000000000AAAA", Role: runbook.RoleMaster, Host: "10.0.0.10", Port: 3306, Running: true},
			{ID: "CA1000000000000000000000000000000000BBBB", Role: runbook.RoleAggregator, Host: "10.0.0.11", Port: 3306, Running: true},
			{ID: "1EAF00000000000000000000000000000000CCCC", Role: runbook.RoleLeaf, Host: "10.0.0.20", Port: 3307, Running: true},
		},
	}
	if !ok {
		r.Checks[0] = runbook.Check{Name: runbook.CheckLeavesOnline, Status: runbook.Fail, Detail: "7/8 leaves online: 10.0.0.23:3307 is offline"}
	}
	return r
}

// fixture builds a run of prod as far as the given phase, the way the
// engine leaves it: earlier phases done and approved, later ones pending.
func fixture(current runbook.PhaseName, status runbook.PhaseStatus) *runbook.Run {
	r := &runbook.Run{
		ID: "7f3c9a1be0d24c55", Cluster: "prod", StartedBy: "U0OPERATOR", StartedAt: t0, Status: runbook.RunActive,
		Version: 12, Current: current, Preflight: report(true), DetectionOriginal: true,
		Settings: runbook.RunSettings{BackupTo: "/backups"},
	}
	reached := false
	for i, name := range runbook.Phases {
		p := &runbook.Phase{Name: name, Status: runbook.PhasePending}
		switch {
		case name == current:
			reached = true
			p.Status = status
			if status != runbook.PhaseWaiting {
				p.StartedAt = at(i*2, 0)
			}
		case !reached:
			p.Status = runbook.PhaseDone
			p.StartedAt, p.EndedAt = at(i*2, 0), at(i*2, 40)
			if name != runbook.PhasePreflight && name != runbook.PhaseFinalize {
				p.Approval = &runbook.Approval{By: "U0APPROVER", At: at(i*2, 0), Action: runbook.ActApprove}
			}
		}
		r.Phases = append(r.Phases, p)
	}
	r.Phase(runbook.PhaseSnapshot).Steps = []*runbook.Step{
		{ID: "snapshot/sales", Phase: runbook.PhaseSnapshot, Kind: runbook.StepSnapshot, Target: "sales", Label: "SNAPSHOT DATABASE `sales`", Status: runbook.StepPending},
		{ID: "snapshot/web", Phase: runbook.PhaseSnapshot, Kind: runbook.StepSnapshot, Target: "web", Label: "SNAPSHOT DATABASE `web`", Status: runbook.StepPending},
	}
	stop := r.Phase(runbook.PhaseStop)
	for _, n := range r.Preflight.Nodes {
		stop.Steps = append(stop.Steps, &runbook.Step{ID: "stop/" + n.ID, Phase: runbook.PhaseStop, Kind: runbook.StepStopNode,
			Role: n.Role, Target: n.ID, Label: fmt.Sprintf("stop %s %s (%s:%d)", n.Role, runbook.ShortID(n.ID), n.Host, n.Port),
			Status: runbook.StepPending})
	}
	for i := 0; i < 7; i++ {
		id := fmt.Sprintf("1EAF%036d", i+1)
		stop.Steps = append(stop.Steps, &runbook.Step{ID: "stop/" + id, Phase: runbook.PhaseStop, Kind: runbook.StepStopNode,
			Role: runbook.RoleLeaf, Target: id, Label: fmt.Sprintf("stop leaf %s (10.0.0.%d:3307)", runbook.ShortID(id), 21+i), Status: runbook.StepPending})
	}
	return r
}

// view is the card of r at now. The golden files use a fixed text where
// Engine.Describe's goes, so that they change only with the card itself;
// describedView uses the engine's words.
func view(r *runbook.Run, now time.Time) CardView {
	next := ""
	if r.Status.Open() && r.Current != "" {
		next = fmt.Sprintf("(Engine.Describe of %s: what deciding now does.)\nAbort: what abort means now.", r.Current)
	}
	return CardView{Run: r, Next: next, Now: now}
}

func describedView(r *runbook.Run, now time.Time) CardView {
	return CardView{Run: r, Next: runbook.Describe(r, r.Current, now), Now: now}
}

func TestCardGolden(t *testing.T) {
	t.Parallel()
	cases := map[string]func() *runbook.Run{
		"card_preflight_running": func() *runbook.Run {
			r := fixture(runbook.PhasePreflight, runbook.PhaseRunning)
			r.Preflight = nil
			return r
		},
		"card_preflight_blocked": func() *runbook.Run {
			r := fixture(runbook.PhasePreflight, runbook.PhaseBlocked)
			r.Preflight = report(false)
			r.Phase(runbook.PhasePreflight).Note = "leaves_online failed"
			return r
		},
		"card_backup_gate": func() *runbook.Run {
			r := fixture(runbook.PhaseBackup, runbook.PhaseWaiting)
			for _, db := range []string{"sales", "web"} {
				r.Phase(runbook.PhaseBackup).Steps = append(r.Phase(runbook.PhaseBackup).Steps, &runbook.Step{ID: "backup/" + db,
					Phase: runbook.PhaseBackup, Kind: runbook.StepBackup, Target: db, Label: "BACKUP DATABASE `" + db + "`"})
			}
			return r
		},
		"card_stop_gate": func() *runbook.Run { return fixture(runbook.PhaseStop, runbook.PhaseWaiting) },
		"card_stop_gate_window_closed": func() *runbook.Run {
			r := fixture(runbook.PhaseStop, runbook.PhaseWaiting)
			r.Window, r.WindowEnds = "prod-sunday", at(5, 0)
			return r
		},
		"card_stop_running": func() *runbook.Run {
			r := fixture(runbook.PhaseStop, runbook.PhaseRunning)
			r.DownSince = at(8, 2)
			for i, s := range r.Phase(runbook.PhaseStop).Steps {
				switch {
				case i < 4:
					s.Status, s.StartedAt, s.EndedAt = runbook.StepDone, at(8, 2), at(8, 6)
				case i < 6:
					s.Status, s.StartedAt = runbook.StepRunning, at(8, 7)
				}
			}
			return r
		},
		"card_stop_ma_failed": func() *runbook.Run {
			r := fixture(runbook.PhaseStop, runbook.PhaseFailed)
			ma := r.Phase(runbook.PhaseStop).Steps[0]
			ma.Status, ma.Attempts, ma.Error = runbook.StepFailed, 1, "sdb-admin stop-node exited 1: node 9F3A… did not stop within 60s"
			return r
		},
		"card_maintenance_gate": func() *runbook.Run {
			r := fixture(runbook.PhaseMaintenance, runbook.PhaseWaiting)
			r.DownSince = at(8, 2)
			return r
		},
		"card_succeeded": func() *runbook.Run {
			r := fixture(runbook.PhaseFinalize, runbook.PhaseDone)
			r.Phase(runbook.PhaseFinalize).EndedAt = at(16, 30)
			r.Status, r.Current, r.EndedAt = runbook.RunSucceeded, "", at(16, 40)
			r.DownSince, r.UpAt = at(8, 2), at(13, 15)
			r.PostCheck = report(true)
			r.Note = "post-checks pass"
			return r
		},
		"card_aborted_after_recovery": func() *runbook.Run {
			r := fixture(runbook.PhaseFinalize, runbook.PhaseDone)
			r.Phase(runbook.PhaseMaintenance).Status = runbook.PhaseCanceled
			r.Phase(runbook.PhaseMaintenance).Approval = nil
			r.Status, r.Current, r.EndedAt, r.Recovering = runbook.RunAborted, "", at(14, 0), true
			r.DownSince, r.UpAt = at(8, 2), at(12, 0)
			r.DetectionChanged = true
			r.Note = "aborted by <@U0APPROVER> during maintenance; nodes started again"
			return r
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			golden(t, name, CardMessage(view(mk(), at(10, 0))))
		})
	}
}

func TestCardButtonsFollowChoices(t *testing.T) {
	t.Parallel()
	for _, st := range []struct {
		phase  runbook.PhaseName
		status runbook.PhaseStatus
	}{
		{runbook.PhaseBackup, runbook.PhaseWaiting}, {runbook.PhaseSnapshot, runbook.PhaseWaiting},
		{runbook.PhaseStop, runbook.PhaseWaiting}, {runbook.PhaseStop, runbook.PhaseRunning},
		{runbook.PhaseStop, runbook.PhaseFailed}, {runbook.PhaseMaintenance, runbook.PhaseWaiting},
		{runbook.PhasePreflight, runbook.PhaseBlocked}, {runbook.PhaseStart, runbook.PhaseWaiting},
	} {
		r := fixture(st.phase, st.status)
		if st.status == runbook.PhaseFailed {
			r.Phase(st.phase).Steps[2].Status = runbook.StepFailed
		}
		m := CardMessage(view(r, at(10, 0)))
		raw, _ := json.Marshal(m.Blocks)
		var got []string
		for _, b := range slackfake.Buttons(raw) {
			got = append(got, strings.TrimPrefix(b.ActionID, actionPrefix))
			v, err := decodeValue(b.Value)
			if err != nil || v.RunID != r.ID || v.Phase != st.phase || v.Version != r.Version {
				t.Errorf("%s/%s: button %s carries %q (%v), want run, phase and version", st.phase, st.status, b.ActionID, b.Value, err)
			}
		}
		var want []string
		for _, a := range runbook.Choices(r, at(10, 0)) {
			want = append(want, string(a))
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s/%s: buttons %v, want the engine's choices %v", st.phase, st.status, got, want)
		}
	}
}

func TestStopConfirmNamesTheNodes(t *testing.T) {
	t.Parallel()
	r := fixture(runbook.PhaseStop, runbook.PhaseWaiting)
	raw, _ := json.Marshal(CardMessage(describedView(r, at(10, 0))).Blocks)
	for _, b := range slackfake.Buttons(raw) {
		if b.ActionID != actionID(string(runbook.ActApprove)) {
			continue
		}
		for _, w := range []string{"9F3A", "1 child aggregator", "8 leaves", "DOWN"} {
			if !strings.Contains(b.ConfirmText, w) {
				t.Errorf("stop confirm %q does not name %q", b.ConfirmText, w)
			}
		}
		return
	}
	t.Fatal("no Approve button on the stop gate")
}

func TestMessagesGolden(t *testing.T) {
	t.Parallel()
	open := fixture(runbook.PhaseStop, runbook.PhaseWaiting)
	done := fixture(runbook.PhaseFinalize, runbook.PhaseDone)
	done.ID, done.Status, done.Current, done.DownSince, done.UpAt = "1b2c3d4e5f60718a", runbook.RunSucceeded, "", at(8, 0), at(13, 0)
	golden(t, "preflight_ok", PreflightMessage(report(true), "U0OPERATOR"))
	golden(t, "preflight_failed", PreflightMessage(report(false), "U0OPERATOR"))
	golden(t, "help", HelpMessage(BuiltinVerbs()))
	golden(t, "clusters", ClustersMessage([]string{"prod", "staging"}, map[string]*runbook.Run{"prod": open}))
	golden(t, "status", StatusMessage([]*runbook.Run{open}, map[string]string{open.ID: "https://x.slack.com/archives/C1/p1"}, at(10, 0)))
	golden(t, "history", HistoryMessage("prod", []*runbook.Run{open, done}))
	golden(t, "thread_batch", Message{Text: threadText([]threadEntry{
		{at: at(8, 2), text: "✅ stop · stop MA 9F3A… (10.0.0.10:3306) (4.1 s)"},
		{at: at(8, 3), output: true, step: "stop leaf 1EAF…", text: "Stopping node 1EAF… <done> & confirmed"},
		{at: at(8, 3), output: true, step: "stop leaf 1EAF…", text: "✓ Successfully stopped node"},
		{at: at(8, 9), text: "✅ *stop* done in 7.0 s"},
	})})
}

func TestReasonModalGolden(t *testing.T) {
	t.Parallel()
	meta := reasonMeta{Action: runbook.ActSkip, Value: gateValue{RunID: "7f3c9a1be0d24c55", Phase: runbook.PhaseStop, Version: 12}, Channel: "C0OPS"}
	v := ReasonModal("Skip a step", "Why is the failed step skipped?", meta.encode())
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "reason_modal.json")
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("reason modal differs from %s:\n%s", path, got)
	}
}

// TestHugeRunStaysWithinLimits draws the worst card we can think of: every
// check failing with a long detail, 200 leaves, long errors and notes.
func TestHugeRunStaysWithinLimits(t *testing.T) {
	t.Parallel()
	r := fixture(runbook.PhaseStop, runbook.PhaseFailed)
	r.Cluster = strings.Repeat("very-long-cluster-name-", 10)
	long := strings.Repeat("detail <with> & markup `x` ", 300)
	r.Preflight.Checks = nil
	for i := 0; i < 120; i++ {
		st := []runbook.CheckStatus{runbook.Pass, runbook.Warn, runbook.Fail}[i%3]
		r.Preflight.Checks = append(r.Preflight.Checks, runbook.Check{Name: fmt.Sprintf("check_%d", i), Status: st, Detail: long})
	}
	stop := r.Phase(runbook.PhaseStop)
	for i := 0; i < 200; i++ {
		stop.Steps = append(stop.Steps, &runbook.Step{ID: fmt.Sprintf("stop/L%d", i), Phase: runbook.PhaseStop, Kind: runbook.StepStopNode,
			Role: runbook.RoleLeaf, Label: fmt.Sprintf("stop leaf L%03d %s", i, long[:80]), Status: runbook.StepFailed, Error: long})
	}
	for _, p := range r.Phases {
		p.Note = long
		if p.Approval != nil {
			p.Approval.Reason = long
		}
	}
	m := CardMessage(CardView{Run: r, Next: long + long, Now: at(10, 0)})
	raw, _ := json.Marshal(m.Blocks)
	if err := slackfake.CheckMessage(m.Text, raw); err != nil {
		t.Fatalf("huge card breaks Slack's limits: %v", err)
	}
	text := slackfake.Texts(raw)
	if !strings.Contains(text, "❌ *check 2*") {
		t.Error("the first failing check was truncated away; failures must be kept before passes")
	}
	if !strings.Contains(text, "more checks passed") || !strings.Contains(text, "more steps") {
		t.Error("truncation does not say how much was left out")
	}
	if strings.Contains(text, "<with>") {
		t.Error("text from the cluster was not escaped")
	}
	// The buttons survive whatever the text does.
	if len(slackfake.Buttons(raw)) == 0 {
		t.Error("huge card lost its buttons")
	}
	// Long reports and histories too.
	var runs []*runbook.Run
	for i := 0; i < 300; i++ {
		runs = append(runs, r)
	}
	for name, m := range map[string]Message{
		"preflight": PreflightMessage(r.Preflight, "U1"),
		"history":   HistoryMessage(r.Cluster, runs),
		"status":    StatusMessage(runs, nil, at(10, 0)),
	} {
		raw, _ := json.Marshal(m.Blocks)
		if err := slackfake.CheckMessage(m.Text, raw); err != nil {
			t.Errorf("%s breaks Slack's limits: %v", name, err)
		}
	}
}
