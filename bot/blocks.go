package bot

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// This file and blocks_card.go hold all Block Kit building. Each function
// turns plain values into a Message and does no I/O; blocks_test.go checks
// them against golden JSON in testdata/ and against Slack's limits.

// Message is a Slack message: the blocks and the fallback text that
// notifications and screen readers show.
type Message struct {
	Text   string
	Blocks []slack.Block
}

func (m Message) options() []slack.MsgOption {
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false)}
	if len(m.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.Blocks...))
	}
	return opts
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

func section(id, text string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(truncate(text, maxSectionText)), nil, nil, slack.SectionBlockOptionBlockID(id))
}

func header(id, text string) *slack.HeaderBlock {
	return slack.NewHeaderBlock(plain(truncate(text, maxHeaderText)), slack.HeaderBlockOptionBlockID(id))
}

func contextLine(id, text string) *slack.ContextBlock {
	return slack.NewContextBlock(id, mrkdwn(truncate(text, maxContextText)))
}

// textMessage is a message with one section of mrkdwn.
func textMessage(text string) Message {
	return Message{Text: truncate(text, maxMessageText), Blocks: []slack.Block{section("text", text)}}
}

// slackTime formats t with Slack's date token, so each reader sees it in
// their own time zone; the fallback is UTC.
func slackTime(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{time}|%s>", t.Unix(), t.UTC().Format("15:04 UTC"))
}

func slackTimeSecs(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{time_secs}|%s>", t.Unix(), t.UTC().Format("15:04:05 UTC"))
}

func slackDateTime(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// who renders a user for Slack: a mention for Slack user IDs, the name as
// typed for others ("terminal:alice", "window:nightly").
func who(user string) string {
	if user == "" {
		return "someone"
	}
	if isUserID(user) {
		return "<@" + user + ">"
	}
	return "`" + escapeMrkdwn(strings.ReplaceAll(user, "`", "'")) + "`"
}

// isUserID reports whether s looks like a Slack user ID (U… or W…).
func isUserID(s string) bool {
	if len(s) < 2 || len(s) > 20 || (s[0] != 'U' && s[0] != 'W') {
		return false
	}
	for _, c := range s[1:] {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// fmtDuration prints d the way people say it: "4.1 s", "12 min", "1 h 05 min".
func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0 s"
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
	}
}

func shortID(id string) string { return truncate(id, 12) }

var checkEmoji = map[runbook.CheckStatus]string{runbook.Pass: "✅", runbook.Warn: "⚠️", runbook.Fail: "❌"}

// checkLines renders checks most important first: failures, warnings, then
// passes, so that truncation drops passes before anything that matters.
func checkLines(checks []runbook.Check) []string {
	var lines []string
	for _, st := range []runbook.CheckStatus{runbook.Fail, runbook.Warn, runbook.Pass} {
		for _, c := range checks {
			if c.Status != st {
				continue
			}
			l := checkEmoji[c.Status] + " *" + escapeMrkdwn(strings.ReplaceAll(c.Name, "_", " ")) + "*"
			if c.Detail != "" {
				l += " — " + escapeMrkdwn(truncate(c.Detail, 400))
			}
			lines = append(lines, l)
		}
	}
	return lines
}

func reportSummary(r *runbook.Report) string {
	var fails, warns int
	for _, c := range r.Checks {
		switch c.Status {
		case runbook.Fail:
			fails++
		case runbook.Warn:
			warns++
		}
	}
	s := "all blocking checks pass"
	if fails > 0 {
		s = fmt.Sprintf("%d blocking check%s failed", fails, plural(fails))
	}
	if warns > 0 {
		s += fmt.Sprintf(" · %d warning%s", warns, plural(warns))
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// PreflightMessage is the reply to /sdbmaint preflight: the checks, and a
// button that starts maintenance when nothing blocks it.
func PreflightMessage(r *runbook.Report, by string) Message {
	cluster := escapeMrkdwn(r.Cluster)
	blocks := []slack.Block{
		header("preflight-head", "Preflight · "+r.Cluster),
		contextLine("preflight-ctx", fmt.Sprintf("Asked by %s · %s · took %s · read-only, nothing was changed",
			who(by), slackDateTime(r.At), fmtDuration(r.Took))),
		section("preflight-checks", "*"+reportSummary(r)+"*\n"+
			joinLimited(checkLines(r.Checks), maxSectionText-100, moreLines("checks passed"))),
	}
	text := fmt.Sprintf("Preflight of %s: %s", cluster, reportSummary(r))
	if r.OK {
		btn := slack.NewButtonBlockElement(actionID(actStartMaintenance), truncate(r.Cluster, maxButtonValue),
			plain("Start maintenance"))
		btn = btn.WithStyle(slack.StylePrimary)
		blocks = append(blocks, slack.NewActionBlock("preflight-actions", btn),
			contextLine("preflight-hint", "Start runs preflight again and opens a run; every phase still waits for an approval."))
	} else {
		blocks = append(blocks, section("preflight-blocked",
			fmt.Sprintf("Fix the failing checks, then type `/sdbmaint preflight %s` in the channel again.", cluster)))
	}
	return Message{Text: text, Blocks: blocks}
}

// HelpMessage is the reply to /sdbmaint help.
func HelpMessage(verbs []Verb) Message { return textMessage(HelpText(verbs)) }

// ClustersMessage lists the configured clusters and their open runs.
func ClustersMessage(names []string, open map[string]*runbook.Run) Message {
	if len(names) == 0 {
		return textMessage("No clusters are configured. Add them under `clusters:` in the sdbmaint config.")
	}
	lines := make([]string, 0, len(names))
	for _, n := range names {
		l := "• `" + escapeMrkdwn(n) + "`"
		if r := open[n]; r != nil {
			l += " — " + runState(r) + ", started by " + who(r.StartedBy)
		} else {
			l += " — no open run"
		}
		lines = append(lines, l)
	}
	return textMessage("*Clusters*\n" + joinLimited(lines, maxSectionText-20, moreLines("clusters")))
}

// runState says in a few words where a run stands.
func runState(r *runbook.Run) string {
	if !r.Status.Open() {
		return string(r.Status)
	}
	p := r.Phase(r.Current)
	if p == nil {
		return "active"
	}
	switch p.Status {
	case runbook.PhaseWaiting:
		if p.Name == runbook.PhaseMaintenance {
			return "maintenance in progress, waiting for “maintenance done”"
		}
		return string(p.Name) + " waiting for approval"
	case runbook.PhaseRunning:
		return string(p.Name) + " running"
	case runbook.PhaseFailed:
		return string(p.Name) + " failed, waiting for a decision"
	case runbook.PhaseBlocked:
		return "preflight blocked"
	}
	return string(p.Name) + " " + string(p.Status)
}

// StatusMessage answers /sdbmaint status: each run with its card link.
func StatusMessage(runs []*runbook.Run, links map[string]string, now time.Time) Message {
	if len(runs) == 0 {
		return textMessage("No maintenance run is open. Start one with `/sdbmaint start CLUSTER` in the channel.")
	}
	lines := make([]string, 0, len(runs))
	for _, r := range runs {
		l := fmt.Sprintf("• *%s* — %s · started by %s %s · run `%s`", escapeMrkdwn(r.Cluster), runState(r),
			who(r.StartedBy), slackDateTime(r.StartedAt), shortID(r.ID))
		if !r.DownSince.IsZero() {
			if r.UpAt.IsZero() {
				l += " · 🔴 down " + fmtDuration(r.Downtime(now))
			} else {
				l += " · downtime " + fmtDuration(r.Downtime(now))
			}
		}
		if link := links[r.ID]; link != "" {
			l += " · <" + link + "|card>"
		}
		lines = append(lines, l)
	}
	return textMessage(joinLimited(lines, maxSectionText, moreLines("runs")))
}

// HistoryMessage answers /sdbmaint history: recent runs with approvals.
func HistoryMessage(cluster string, runs []*runbook.Run) Message {
	if len(runs) == 0 {
		if cluster != "" {
			return textMessage(fmt.Sprintf("No runs on `%s` yet.", escapeMrkdwn(cluster)))
		}
		return textMessage("No runs yet.")
	}
	var lines []string
	for _, r := range runs {
		l := fmt.Sprintf("%s *%s* %s — %s, started by %s", statusEmoji(r), escapeMrkdwn(r.Cluster),
			slackDateTime(r.StartedAt), runState(r), who(r.StartedBy))
		if !r.DownSince.IsZero() && !r.UpAt.IsZero() {
			l += ", downtime " + fmtDuration(r.UpAt.Sub(r.DownSince))
		}
		var appr []string
		for _, p := range r.Phases {
			if p.Approval != nil && p.Approval.By != "" {
				appr = append(appr, string(p.Name)+" "+who(p.Approval.By))
			}
		}
		if len(appr) > 0 {
			l += "\n      approvals: " + strings.Join(appr, ", ")
		}
		lines = append(lines, l)
	}
	title := "*Recent runs*"
	if cluster != "" {
		title = "*Recent runs on " + escapeMrkdwn(cluster) + "*"
	}
	return textMessage(title + "\n" + joinLimited(lines, maxSectionText-60, moreLines("runs")))
}

func statusEmoji(r *runbook.Run) string {
	switch r.Status {
	case runbook.RunSucceeded:
		return "✅"
	case runbook.RunDegraded:
		return "⚠️"
	case runbook.RunAborted:
		return "🛑"
	case runbook.RunEnded:
		return "✖️"
	}
	return "⏳"
}

// AbortMessage answers /sdbmaint abort CLUSTER, privately: what aborting
// the open run does right now and a button to do it. Typing the command
// aborts nothing; the button carries the run, phase and version it was
// drawn for, so the click goes through the engine's compare-and-set like a
// card button and is refused if the run moved on in between. next is
// Engine.Describe's text for the current gate; choices are the engine's
// (runbook.Choices), which say whether abort is possible now at all.
func AbortMessage(r *runbook.Run, next string, choices []runbook.Action, link string) Message {
	cluster := escapeMrkdwn(r.Cluster)
	state := fmt.Sprintf("Run `%s` on `%s`, started by %s %s: %s.", shortID(r.ID), cluster, who(r.StartedBy),
		slackDateTime(r.StartedAt), runState(r))
	if link != "" {
		state += " <" + link + "|Open the card>."
	}
	val := encodeValue(r.ID, r.Current, r.Version)
	var btn *slack.ButtonBlockElement
	var effect string
	switch {
	case slices.Contains(choices, runbook.ActAbort):
		effect = abortEffect(r, next)
		btn = slack.NewButtonBlockElement(actionID(string(runbook.ActAbort)), val, plain(truncate("Abort maintenance of "+r.Cluster, maxButtonText)))
	case slices.Contains(choices, runbook.ActEndRun):
		effect = "Preflight is blocked, so there is nothing to abort: End run closes the run. Nothing on the cluster has changed."
		btn = slack.NewButtonBlockElement(actionID(string(runbook.ActEndRun)), val, plain("End run"))
	default:
		p := string(r.Current)
		blocks := []slack.Block{section("abort-head", "*The run on "+cluster+" cannot be aborted right now*\n"+state)}
		blocks = append(blocks, section("abort-later", fmt.Sprintf("*%s* is running; abort is taken when it waits for a decision "+
			"or a step fails. Type `/sdbmaint abort %s` again then, or use Abort on the card.", escapeMrkdwn(p), cluster)))
		return Message{Text: fmt.Sprintf("The run on %s cannot be aborted while %s runs.", cluster, escapeMrkdwn(p)), Blocks: blocks}
	}
	blocks := []slack.Block{
		section("abort-head", "*Abort maintenance of "+cluster+"?*\n"+state),
		section("abort-effect", "*What it does now* — "+escapeMrkdwn(effect)),
		slack.NewActionBlock("abort-confirm", btn.WithStyle(slack.StyleDanger)),
		contextLine("abort-note", fmt.Sprintf("Only you see this, and nothing is done until you click. The button is for the run as it "+
			"stands now (version %d): if the run moves on first, the click is refused and you are told why.", r.Version)),
	}
	return Message{Text: truncate(fmt.Sprintf("Abort maintenance of %s? %s", cluster, escapeMrkdwn(effect)), maxMessageText), Blocks: blocks}
}

// ReasonModal asks why a step or a phase is skipped. The button's value goes
// along in private_metadata so the submission carries run, phase and version.
func ReasonModal(title, prompt, metadata string) slack.ModalViewRequest {
	input := slack.NewPlainTextInputBlockElement(plain("e.g. backup already taken by the nightly job"), reasonActionID)
	input.Multiline = true
	input.MaxLength = 500
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      reasonCallbackID,
		Title:           plain(truncate(title, maxModalTitle)),
		Submit:          plain("Skip"),
		Close:           plain("Cancel"),
		PrivateMetadata: metadata,
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			section("reason-prompt", prompt),
			slack.NewInputBlock(reasonBlockID, plain("Reason (recorded in the audit log)"), nil, input),
		}},
	}
}

// threadText renders one batch of thread entries as mrkdwn. Output lines of
// one step are grouped in a code block under the step.
func threadText(entries []threadEntry) string {
	var b strings.Builder
	inCode := false
	lastStep := ""
	for _, e := range entries {
		if e.output {
			if !inCode || e.step != lastStep {
				if inCode {
					b.WriteString("```\n")
				}
				if e.step != lastStep && e.step != "" {
					fmt.Fprintf(&b, "_%s_\n", escapeMrkdwn(e.step))
				}
				b.WriteString("```\n")
				inCode = true
			}
			lastStep = e.step
			b.WriteString(escapeMrkdwn(e.text))
			b.WriteByte('\n')
			continue
		}
		if inCode {
			b.WriteString("```\n")
			inCode = false
		}
		lastStep = ""
		fmt.Fprintf(&b, "%s %s\n", slackTimeSecs(e.at), e.text)
	}
	if inCode {
		b.WriteString("```\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// threadEntry is one line for a run's thread: a step event or an output line.
type threadEntry struct {
	at     time.Time
	output bool   // an output line (shown in a code block) rather than an event
	step   string // the step label, for output lines
	text   string // mrkdwn for events; raw text for output lines
}

// RefusalText is what the person whose decision was refused sees. Slack
// user IDs in the engine's reason become mentions.
func RefusalText(o runbook.Outcome) string {
	if o.Already != nil {
		verb := "decided"
		switch o.Already.Action {
		case runbook.ActApprove, runbook.ActMaintenanceDone, runbook.ActOverride:
			verb = "approved"
		case runbook.ActAbort:
			verb = "aborted"
		case runbook.ActSkip, runbook.ActSkipPhase:
			verb = "skipped"
		case runbook.ActRetry:
			verb = "retried"
		case runbook.ActEndRun:
			verb = "ended"
		}
		return fmt.Sprintf("Already %s by %s at %s; nothing more was done.", verb, who(o.Already.By), slackTime(o.Already.At))
	}
	if o.Reason == "" {
		return "That was not accepted."
	}
	return mentionIDs(escapeMrkdwn(o.Reason))
}

// mentionIDs turns the Slack user IDs in text into mentions. An ID is a
// word of 9 to 12 capitals and digits, starting with U or W, with a digit.
func mentionIDs(text string) string {
	words := strings.FieldsFunc(text, func(r rune) bool { return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') })
	done := map[string]bool{}
	for _, w := range words {
		if done[w] || len(w) < 9 || len(w) > 12 || !isUserID(w) || !strings.ContainsAny(w, "0123456789") {
			continue
		}
		done[w] = true
		text = replaceWord(text, w, "<@"+w+">")
	}
	return text
}

// replaceWord replaces whole-word occurrences of w in s.
func replaceWord(s, w, with string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, w)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		before := i == 0 || !isIDChar(s[i-1])
		after := i+len(w) == len(s) || !isIDChar(s[i+len(w)])
		b.WriteString(s[:i])
		if before && after {
			b.WriteString(with)
		} else {
			b.WriteString(w)
		}
		s = s[i+len(w):]
	}
}

func isIDChar(c byte) bool { return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
