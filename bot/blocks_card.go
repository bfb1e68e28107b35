package bot

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// CardView is everything the run card shows. The card is one message per
// run, updated in place; it answers at a glance what state the cluster is
// in, what the button will do, and who did what so far.
type CardView struct {
	Run  *runbook.Run
	Next string    // what approving the current gate does (Engine.Describe)
	Now  time.Time // for the downtime clock and the window deadline
}

var phaseEmoji = map[runbook.PhaseStatus]string{
	runbook.PhasePending:  "⚪",
	runbook.PhaseWaiting:  "⏳",
	runbook.PhaseRunning:  "🔄",
	runbook.PhaseFailed:   "❌",
	runbook.PhaseBlocked:  "⛔",
	runbook.PhaseDone:     "✅",
	runbook.PhaseSkipped:  "⏭️",
	runbook.PhaseCanceled: "✖️",
}

// CardMessage renders the run card.
func CardMessage(v CardView) Message {
	r := v.Run
	id := fmt.Sprintf("-%d", r.Version) // new block IDs on every update, as Slack advises
	title := "Maintenance · " + r.Cluster
	if !r.Status.Open() {
		title = statusEmoji(r) + " " + title + " · " + string(r.Status)
	}
	started := fmt.Sprintf("Started by %s · %s · run `%s`", who(r.StartedBy), slackDateTime(r.StartedAt), shortID(r.ID))
	if r.Window != "" {
		started += " · window `" + escapeMrkdwn(r.Window) + "`"
		if !r.WindowEnds.IsZero() {
			started += " until " + slackTime(r.WindowEnds)
		}
	}
	blocks := []slack.Block{header("head"+id, title), contextLine("started"+id, started)}

	if r.Preflight != nil {
		blocks = append(blocks, section("preflight"+id, "*Preflight* — "+reportSummary(r.Preflight)+"\n"+
			joinLimited(checkLines(r.Preflight.Checks), maxSectionText-120, moreLines("checks passed"))))
	}
	blocks = append(blocks, section("phases"+id, "*Phases*\n"+strings.Join(phaseLines(r), "\n")))

	if p := r.Phase(r.Current); p != nil && r.Status.Open() && len(p.Steps) > 0 &&
		(p.Status == runbook.PhaseRunning || p.Status == runbook.PhaseFailed) {
		blocks = append(blocks, section("steps"+id, stepSummary(p)))
	}
	if r.Status.Open() && v.Next != "" && waitsForPeople(r) {
		blocks = append(blocks, section("next"+id, "*Next* — "+escapeMrkdwn(v.Next)))
	}
	if d := downtimeLine(r, v.Now); d != "" {
		blocks = append(blocks, contextLine("downtime"+id, d))
	}
	if r.Status.Open() {
		if btns := cardButtons(v); len(btns) > 0 {
			blocks = append(blocks, slack.NewActionBlock("gate"+id, btns...))
		}
	} else {
		blocks = append(blocks, section("summary"+id, summary(r)))
	}
	return Message{Text: cardText(r), Blocks: blocks}
}

// cardText is the notification text: short and about the current state.
func cardText(r *runbook.Run) string {
	return truncate(fmt.Sprintf("Maintenance of %s: %s", escapeMrkdwn(r.Cluster), runState(r)), maxMessageText)
}

func waitsForPeople(r *runbook.Run) bool {
	p := r.Phase(r.Current)
	return p != nil && (p.Status == runbook.PhaseWaiting || p.Status == runbook.PhaseFailed || p.Status == runbook.PhaseBlocked)
}

func phaseLines(r *runbook.Run) []string {
	lines := make([]string, 0, len(r.Phases))
	for _, p := range r.Phases {
		l := phaseEmoji[p.Status] + " *" + string(p.Name) + "*"
		switch p.Status {
		case runbook.PhaseWaiting:
			if p.Name == runbook.PhaseMaintenance {
				l += " — hosts are yours; press *Maintenance done* when finished"
			} else {
				l += " — waiting for approval"
			}
		case runbook.PhaseRunning:
			l += " — running"
		case runbook.PhaseFailed:
			l += " — failed; Retry, Skip or Abort"
		case runbook.PhaseBlocked:
			l += " — blocked by a failing check"
		case runbook.PhaseDone, runbook.PhaseSkipped:
			if !p.StartedAt.IsZero() && !p.EndedAt.IsZero() {
				l += " " + fmtDuration(p.EndedAt.Sub(p.StartedAt))
			}
		}
		if a := p.Approval; a != nil && a.By != "" {
			verb := "approved"
			if a.Action == runbook.ActSkipPhase || a.Action == runbook.ActSkip {
				verb = "skipped"
			}
			l += fmt.Sprintf(" (%s by %s %s)", verb, who(a.By), slackTime(a.At))
			if a.Reason != "" {
				l += " “" + escapeMrkdwn(truncate(a.Reason, 200)) + "”"
			}
		} else if p.Auto && p.Status != runbook.PhasePending {
			l += " (auto-approved)"
		}
		if p.Note != "" {
			l += " — _" + escapeMrkdwn(truncate(p.Note, 200)) + "_"
		}
		lines = append(lines, l)
	}
	return lines
}

// stepSummary shows the current phase's steps, failures first.
func stepSummary(p *runbook.Phase) string {
	var lines []string
	done := 0
	for _, s := range p.Steps {
		switch s.Status {
		case runbook.StepFailed, runbook.StepInterrupted:
			l := "❌ " + escapeMrkdwn(s.Label)
			if s.Status == runbook.StepInterrupted {
				l += " — interrupted (sdbmaint stopped while it ran); Retry checks the node first"
			}
			if s.Error != "" {
				l += " — `" + escapeMrkdwn(strings.ReplaceAll(truncate(s.Error, 300), "`", "'")) + "`"
			}
			lines = append(lines, l)
		}
	}
	for _, s := range p.Steps {
		if s.Status == runbook.StepRunning {
			lines = append(lines, "🔄 "+escapeMrkdwn(s.Label))
		}
		if s.Status == runbook.StepDone || s.Status == runbook.StepSkipped {
			done++
		}
	}
	head := fmt.Sprintf("*%s* — %d of %d steps done", p.Name, done, len(p.Steps))
	if p.Name == runbook.PhaseStop || p.Name == runbook.PhaseStart {
		verb := "stopped"
		if p.Name == runbook.PhaseStart {
			verb = "started"
		}
		var parts []string
		for _, role := range []struct {
			r    runbook.Role
			name string
		}{{runbook.RoleMaster, "MA"}, {runbook.RoleAggregator, "child aggregators"}, {runbook.RoleLeaf, "leaves"}} {
			if d, n := p.Progress(role.r); n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d/%d", role.name, d, n))
			}
		}
		if len(parts) > 0 {
			head = fmt.Sprintf("*%s* — %s %s", p.Name, strings.Join(parts, " · "), verb)
		}
	}
	return head + "\n" + joinLimited(lines, maxSectionText-len(head)-10, moreLines("steps"))
}

func downtimeLine(r *runbook.Run, now time.Time) string {
	if r.DownSince.IsZero() {
		return ""
	}
	if r.UpAt.IsZero() {
		return fmt.Sprintf("🔴 *Cluster is DOWN* since %s — %s so far (as of %s)",
			slackTime(r.DownSince), fmtDuration(now.Sub(r.DownSince)), slackTime(now))
	}
	return fmt.Sprintf("🟢 Cluster back up at %s · downtime %s", slackTime(r.UpAt), fmtDuration(r.UpAt.Sub(r.DownSince)))
}

// summary is what a finished card shows instead of buttons.
func summary(r *runbook.Run) string {
	var b strings.Builder
	switch r.Status {
	case runbook.RunSucceeded:
		b.WriteString("*Done.* The cluster is back and the post-checks pass.")
	case runbook.RunDegraded:
		b.WriteString("*Finished with warnings.* The cluster is back but a post-check failed.")
	case runbook.RunAborted:
		b.WriteString("*Aborted.*")
	case runbook.RunEnded:
		b.WriteString("*Ended* before anything on the cluster changed.")
	}
	if r.Note != "" {
		b.WriteString(" " + escapeMrkdwn(truncate(r.Note, 500)))
	}
	if !r.DownSince.IsZero() && !r.UpAt.IsZero() {
		fmt.Fprintf(&b, "\nDowntime: %s.", fmtDuration(r.UpAt.Sub(r.DownSince)))
	}
	if !r.EndedAt.IsZero() {
		fmt.Fprintf(&b, " Total: %s.", fmtDuration(r.EndedAt.Sub(r.StartedAt)))
	}
	if sum := runbook.Summarize(r, r.EndedAt); sum.DetectionLeftOff {
		want := "OFF"
		if r.DetectionOriginal {
			want = "ON"
		}
		b.WriteString("\n⚠️ *leaf_failure_detection is still OFF*: the run turned it off and could not restore it. " +
			"Set it back by hand: `SET GLOBAL leaf_failure_detection = " + want + "`.")
	}
	if r.PostCheck != nil {
		b.WriteString("\n*Post-checks* — " + reportSummary(r.PostCheck) + "\n")
		var bad []runbook.Check
		for _, c := range r.PostCheck.Checks {
			if c.Status != runbook.Pass {
				bad = append(bad, c)
			}
		}
		b.WriteString(joinLimited(checkLines(bad), 1200, moreLines("checks")))
	}
	return strings.TrimRight(b.String(), "\n")
}

// cardButtons returns the buttons for the current gate only: exactly the
// actions the engine would accept now (runbook.Choices), in its order.
func cardButtons(v CardView) []slack.BlockElement {
	r := v.Run
	p := r.CurrentPhase()
	if p == nil {
		return nil
	}
	val := encodeValue(r.ID, p.Name, r.Version)
	var btns []slack.BlockElement
	for _, a := range runbook.Choices(r, v.Now) {
		btns = append(btns, actionButton(v, p, a, val))
	}
	return btns
}

func actionButton(v CardView, p *runbook.Phase, a runbook.Action, val string) *slack.ButtonBlockElement {
	r := v.Run
	button := func(label string, style slack.Style) *slack.ButtonBlockElement {
		b := slack.NewButtonBlockElement(actionID(string(a)), val, plain(truncate(label, maxButtonText)))
		if style != "" {
			b = b.WithStyle(style)
		}
		return b
	}
	// The confirm dialog names what will be stopped: the plan's first line.
	plan, _, _ := strings.Cut(v.Next, "\n")
	stopText := orDefault(plan, "Stops every node of the cluster. The cluster is DOWN until start finishes.")
	switch a {
	case runbook.ActApprove:
		b := button("Approve "+string(p.Name), slack.StylePrimary)
		if p.Name == runbook.PhaseStop {
			b = b.WithConfirm(confirm("Stop "+r.Cluster+"?", stopText, "Stop the cluster", true))
		}
		return b
	case runbook.ActOverride:
		return button("Approve stop anyway", slack.StyleDanger).WithConfirm(confirm("The window has ended",
			"The maintenance window closed before stop was approved. "+stopText, "Stop the cluster", true))
	case runbook.ActAbort:
		return button("Abort", slack.StyleDanger).WithConfirm(abortConfirm(r, v.Next))
	case runbook.ActRetry:
		return button("Retry", slack.StylePrimary)
	case runbook.ActSkip:
		return button("Skip…", "").WithConfirm(confirm("Skip the failed step?",
			"The step is recorded as skipped and the phase goes on without it. You will be asked for a reason.", "Skip", false))
	case runbook.ActSkipPhase:
		return button("Skip "+string(p.Name)+"…", "").WithConfirm(confirm("Skip "+string(p.Name)+"?",
			"You will be asked for a reason; it goes to the audit log.", "Skip", false))
	case runbook.ActDetectionOff:
		return button("Turn off leaf_failure_detection and continue", "").WithConfirm(confirm(
			"Turn off leaf_failure_detection?",
			"The runbook's way out when the MA will not stop: SET GLOBAL leaf_failure_detection = OFF while the MA "+
				"still answers, then stop the rest. The value preflight read is restored at the end.", "Turn off and continue", true))
	case runbook.ActRerunPreflight:
		return button("Re-run preflight", slack.StylePrimary)
	case runbook.ActEndRun:
		return button("End run", "")
	case runbook.ActMaintenanceDone:
		return button("Maintenance done", slack.StylePrimary).WithConfirm(confirm("Maintenance done?",
			"The next gate starts the nodes again. Make sure every host is ready.", "Done", false))
	}
	return button(strings.ReplaceAll(string(a), "-", " "), "")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func abortConfirm(r *runbook.Run, next string) *slack.ConfirmationBlockObject {
	return confirm("Abort maintenance of "+r.Cluster+"?", abortEffect(r, next), "Abort", true)
}

// abortEffect says what Abort does now. next is Engine.Describe's text for
// the current gate, which ends with the engine's own sentence about abort;
// that sentence is used when it is there, so the card, the confirm dialog
// and /sdbmaint abort say what the engine will do. The fallback (no
// description) follows the same three cases as the engine's abort.
func abortEffect(r *runbook.Run, next string) string {
	for _, line := range strings.Split(next, "\n") {
		if strings.HasPrefix(line, "Abort") {
			return line
		}
	}
	p := r.CurrentPhase()
	switch {
	case !r.NodesMayBeDown():
		if q := r.Phase(runbook.PhaseSnapshot); q != nil && q.Status == runbook.PhaseDone {
			return "This ends the run. Snapshots taken so far stay; no node was stopped."
		}
		return "This ends the run. Nothing on the cluster has changed yet."
	case r.Recovering || p == nil || p.Name == runbook.PhaseFinalize || (p.Name == runbook.PhaseStart && p.Status != runbook.PhaseWaiting):
		return "Recovery is what is under way: abort stops trying and ends the run, leaving nodes as they are now."
	}
	return "Nodes may be down: abort starts every stopped node in the safe order (leaves, aggregators, then the MA), then finalizes."
}

func confirm(title, text, ok string, danger bool) *slack.ConfirmationBlockObject {
	c := slack.NewConfirmationBlockObject(plain(truncate(title, 100)), plain(truncate(text, maxConfirmText)),
		plain(truncate(ok, 30)), plain("Cancel"))
	if danger {
		c = c.WithStyle(slack.StyleDanger)
	}
	return c
}
