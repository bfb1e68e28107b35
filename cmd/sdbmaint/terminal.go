package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// terminal is the runbook's user interface on a terminal: it prints what
// the engine publishes and asks at every decision. run and demo share it.
type terminal struct {
	out, errOut io.Writer
	stdin       io.Reader
	interrupts  <-chan os.Signal
	eng         *runbook.Engine
	user        string
	yes         bool

	runID string
	asked int64       // the run version last asked about
	lines chan string // stdin, line by line; started at the first question
}

func newTerminal(env *Env, eng *runbook.Engine, user string, yes bool) *terminal {
	return &terminal{out: env.Stdout, errOut: env.Stderr, stdin: env.Stdin, interrupts: env.Interrupts, eng: eng, user: user, yes: yes}
}

// errInterrupted is what a question returns when Ctrl-C comes instead of
// an answer.
var errInterrupted = fmt.Errorf("interrupted")

// drive prints events until the run ends, asks at each decision, and
// handles Ctrl-C: once stops at the next step boundary (Drain), twice
// exits at once. It returns the exit code.
func (t *terminal) drive(ctx context.Context, sub *runbook.Subscription) int {
	var drained chan error
	var hardStop context.CancelFunc
	stop := func() {
		if drained != nil {
			fmt.Fprintln(t.out, "\nCtrl-C again: exiting now. The store is consistent; steps in flight are re-read on --resume.")
			hardStop()
			return
		}
		fmt.Fprintln(t.out, "\nStopping at the next step boundary; everything is saved (Ctrl-C again to exit now)…")
		var dctx context.Context
		dctx, hardStop = context.WithCancel(context.Background())
		drained = make(chan error, 1)
		go func() { drained <- t.eng.Drain(dctx) }()
	}
	defer func() {
		if hardStop != nil {
			hardStop()
		}
	}()
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				return exitNotOK
			}
			if ev.Run == nil || ev.Run.ID != t.runID {
				continue
			}
			t.show(ev)
			if ev.Kind == runbook.EventRunFinished {
				return t.finished(ev.Run)
			}
			if drained != nil || ev.Kind != runbook.EventGateWaiting || ev.Run.Version <= t.asked {
				continue
			}
			t.asked = ev.Run.Version
			switch code, err := t.decide(ctx, ev.Run); {
			case err == errInterrupted:
				stop()
			case err != nil:
				return code
			}
		case <-t.interrupts:
			stop()
		case err := <-drained:
			t.showQueued(sub)
			r, gerr := t.eng.Get(context.Background(), t.runID)
			where := ""
			if gerr == nil && r.Current != "" {
				where = fmt.Sprintf(" at %s (%s)", r.Current, phaseStatus(r))
				if p := progress(r.CurrentPhase()); p != "" {
					where += ": " + p
				}
			}
			if err != nil {
				fmt.Fprintf(t.out, "Exited with steps in flight; run %s is open%s. Continue with --resume: interrupted steps are re-read first.\n", t.runID, where)
			} else {
				fmt.Fprintf(t.out, "Stopped. Run %s is saved%s. Continue with --resume.\n", t.runID, where)
			}
			return exitInterrupted
		case <-ctx.Done():
			dctx, cancel := context.WithCancel(context.Background())
			cancel()
			t.eng.Drain(dctx)
			return exitInterrupted
		}
	}
}

// showQueued prints the events still on their way once the engine has
// stopped: it publishes nothing more, so a short quiet moment means the
// queue is empty. (The saved state printed after it is the authority.)
func (t *terminal) showQueued(sub *runbook.Subscription) {
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				return
			}
			if ev.Run != nil && ev.Run.ID == t.runID {
				t.show(ev)
			}
		case <-time.After(50 * time.Millisecond):
			return
		}
	}
}

// progress says how far the node steps of p got: "1/1 MA stopped, 2/2
// child aggregators stopped, 0/4 leaves stopped".
func progress(p *runbook.Phase) string {
	if p == nil || (p.Name != runbook.PhaseStop && p.Name != runbook.PhaseStart) {
		return ""
	}
	verb := "stopped"
	if p.Name == runbook.PhaseStart {
		verb = "started"
	}
	var parts []string
	for _, role := range []runbook.Role{runbook.RoleMaster, runbook.RoleAggregator, runbook.RoleLeaf} {
		if done, total := p.Progress(role); total > 0 {
			parts = append(parts, fmt.Sprintf("%d/%d %s %s", done, total, roleName(role, total), verb))
		}
	}
	return strings.Join(parts, ", ")
}

func stamp(at time.Time) string { return at.Local().Format("15:04:05.000") }

// show prints one event.
func (t *terminal) show(ev runbook.Event) {
	r := ev.Run
	switch ev.Kind {
	case runbook.EventStepStarted:
		if ev.Step.Kind == runbook.StepPreflight || ev.Step.Kind == runbook.StepPostCheck {
			return
		}
		attempt := ""
		if ev.Step.Attempts > 1 {
			attempt = fmt.Sprintf(" (attempt %d)", ev.Step.Attempts)
		}
		fmt.Fprintf(t.out, "%s %-13s ▶ %s%s\n", stamp(ev.At), ev.Phase, ev.Step.Label, attempt)
	case runbook.EventOutput:
		who := ""
		if ev.Step.Kind == runbook.StepStopNode || ev.Step.Kind == runbook.StepStartNode {
			who = runbook.ShortID(ev.Step.Target) + " "
		}
		mark := "│"
		if ev.Line.Stream == "stderr" {
			mark = "!"
		}
		fmt.Fprintf(t.out, "%s %-13s   %s%s %s\n", stamp(ev.Line.At), ev.Phase, who, mark, ev.Line.Line)
	case runbook.EventStepFinished:
		t.showStep(ev)
	case runbook.EventPhaseFinished:
		p := r.Phase(ev.Phase)
		took := ""
		if !p.StartedAt.IsZero() && !p.EndedAt.IsZero() && p.Status == runbook.PhaseDone {
			took = " in " + roundDur(p.EndedAt.Sub(p.StartedAt)).String()
		}
		note := ""
		if p.Note != "" {
			note = " — " + p.Note
		}
		fmt.Fprintf(t.out, "%s %-13s ■ %s%s%s\n", stamp(ev.At), ev.Phase, p.Status, took, note)
	case runbook.EventRunUpdated:
		if p := r.Phase(ev.Phase); p != nil && p.Status == runbook.PhaseRunning && p.Approval != nil && p.Approval.At.Equal(ev.At) {
			fmt.Fprintf(t.out, "%s %-13s ✔ %s by %s\n", stamp(ev.At), ev.Phase, p.Approval.Action, p.Approval.By)
		} else if p != nil && p.Auto && p.Status == runbook.PhaseRunning && p.StartedAt.Equal(ev.At) {
			fmt.Fprintf(t.out, "%s %-13s ✔ auto-approved (auto_approve)\n", stamp(ev.At), ev.Phase)
		}
	}
}

func roundDur(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func (t *terminal) showStep(ev runbook.Event) {
	s := ev.Step
	r := ev.Run
	switch s.Kind {
	case runbook.StepPreflight, runbook.StepPostCheck:
		rep := r.Preflight
		title := "Preflight"
		if s.Kind == runbook.StepPostCheck {
			rep, title = r.PostCheck, "Post-check"
		}
		if s.Status != runbook.StepDone || rep == nil {
			fmt.Fprintf(t.out, "%s %-13s ✗ %s could not run: %s\n", stamp(ev.At), ev.Phase, title, s.Error)
			return
		}
		fmt.Fprintf(t.out, "%s %-13s %s of %s (%d nodes, databases: %s):\n", stamp(ev.At), ev.Phase, title, rep.Cluster, len(rep.Nodes), strings.Join(rep.Databases, ", "))
		for _, c := range rep.Checks {
			fmt.Fprintf(t.out, "      %s %-24s %s\n", checkMark(c.Status), c.Name, c.Detail)
		}
		if failed := rep.Failed(); len(failed) > 0 && s.Kind == runbook.StepPostCheck {
			fmt.Fprintf(t.out, "      !! %d POST-CHECK(S) FAILED\n", len(failed))
		}
		return
	}
	took := ""
	if !s.StartedAt.IsZero() && !s.EndedAt.IsZero() {
		took = " (" + roundDur(s.EndedAt.Sub(s.StartedAt)).String() + ")"
	}
	switch s.Status {
	case runbook.StepDone:
		fmt.Fprintf(t.out, "%s %-13s ✓ %s%s\n", stamp(ev.At), ev.Phase, s.Label, took)
		if s.Evidence != "" && strings.Contains(s.Evidence, "no command sent") {
			fmt.Fprintf(t.out, "%s %-13s   (%s)\n", stamp(ev.At), ev.Phase, s.Evidence)
		}
		if s.Kind == runbook.StepStopNode || s.Kind == runbook.StepStartNode {
			verb := "stopped"
			if s.Kind == runbook.StepStartNode {
				verb = "started"
			}
			done, total := r.Phase(ev.Phase).Progress(s.Role)
			fmt.Fprintf(t.out, "%s %-13s   %d/%d %s %s\n", stamp(ev.At), ev.Phase, done, total, roleName(s.Role, total), verb)
		}
	case runbook.StepFailed:
		fmt.Fprintf(t.out, "%s %-13s ✗ %s failed%s: %s\n", stamp(ev.At), ev.Phase, s.Label, took, s.Error)
	case runbook.StepInterrupted:
		fmt.Fprintf(t.out, "%s %-13s ✗ %s interrupted: %s\n", stamp(ev.At), ev.Phase, s.Label, s.Error)
	}
}

func checkMark(s runbook.CheckStatus) string {
	switch s {
	case runbook.Pass:
		return "✓"
	case runbook.Warn:
		return "!"
	}
	return "✗"
}

func roleName(r runbook.Role, n int) string {
	switch r {
	case runbook.RoleMaster:
		return "MA"
	case runbook.RoleAggregator:
		if n == 1 {
			return "child aggregator"
		}
		return "child aggregators"
	case runbook.RoleLeaf:
		if n == 1 {
			return "leaf"
		}
		return "leaves"
	}
	return string(r)
}

// finished prints the summary and returns the exit code for the run's end.
func (t *terminal) finished(r *runbook.Run) int {
	fmt.Fprintln(t.out)
	fmt.Fprint(t.out, runbook.Summarize(r, time.Now()).String())
	if r.Status == runbook.RunSucceeded {
		return exitOK
	}
	return exitNotOK
}

// decide asks about (or, with --yes, answers) the decision the run waits
// for and sends it. A non-nil error ends drive with the code.
func (t *terminal) decide(ctx context.Context, r *runbook.Run) (int, error) {
	for {
		p := r.CurrentPhase()
		choices := runbook.Choices(r, time.Now())
		if len(choices) == 0 {
			return 0, nil
		}
		action, reason, err := t.choose(ctx, r, p, choices)
		if err != nil {
			if err == errInterrupted {
				return 0, err
			}
			fmt.Fprintf(t.out, "Run %s is left open at %s (%s). Continue with: sdbmaint run --config ... --cluster %s --resume\n", r.ID, p.Name, p.Status, r.Cluster)
			return exitNotOK, err
		}
		out, err := t.eng.Decide(ctx, runbook.Decision{RunID: r.ID, Phase: p.Name, Version: r.Version, Action: action, By: t.user, Reason: reason})
		if err != nil {
			fmt.Fprintf(t.errOut, "sdbmaint run: %s\n", runbook.ErrorMessage(err))
			return exitNotOK, err
		}
		if out.Accepted {
			return 0, nil
		}
		fmt.Fprintf(t.out, "Not accepted: %s\n", out.Reason)
		if !out.Run.Waiting() {
			return 0, nil
		}
		r = out.Run
		t.asked = r.Version
	}
}

var errLeftOpen = fmt.Errorf("left open")

// choose returns the action for the decision, asking on stdin unless --yes
// answers it: --yes approves gates and retries interrupted steps; a failed
// step or a blocked preflight is always a person's call.
func (t *terminal) choose(ctx context.Context, r *runbook.Run, p *runbook.Phase, choices []runbook.Action) (runbook.Action, string, error) {
	fmt.Fprintln(t.out)
	fmt.Fprintln(t.out, indent(runbook.Describe(r, p.Name, time.Now())))
	if t.yes {
		switch {
		case p.Status == runbook.PhaseWaiting:
			fmt.Fprintf(t.out, "→ %s (--yes)\n", choices[0])
			return choices[0], "", nil
		case p.Status == runbook.PhaseFailed && onlyInterrupted(p):
			fmt.Fprintln(t.out, "→ retry the interrupted steps (--yes)")
			return runbook.ActRetry, "", nil
		}
	}
	var prompt string
	keys := map[string]runbook.Action{}
	switch p.Status {
	case runbook.PhaseWaiting:
		verb := "Approve " + string(p.Name)
		if p.Name == runbook.PhaseMaintenance {
			verb = "Is the maintenance done"
		}
		prompt = verb + "? [y/N"
		keys["y"], keys["yes"] = choices[0], choices[0]
		for _, a := range choices[1:] {
			switch a {
			case runbook.ActSkipPhase:
				prompt += ", s=skip phase"
				keys["s"] = a
			case runbook.ActAbort:
				prompt += ", a=abort"
				keys["a"] = a
			}
		}
		prompt += "] "
	default:
		var parts []string
		for _, a := range choices {
			k := map[runbook.Action]string{runbook.ActRetry: "r", runbook.ActSkip: "s", runbook.ActAbort: "a",
				runbook.ActDetectionOff: "d", runbook.ActRerunPreflight: "r", runbook.ActEndRun: "e"}[a]
			keys[k] = a
			parts = append(parts, k+"="+string(a))
		}
		prompt = "Choose: " + strings.Join(parts, ", ") + ", q=quit (leave the run open): "
	}
	for {
		fmt.Fprint(t.out, prompt)
		line, err := t.readLine(ctx)
		if err != nil {
			fmt.Fprintln(t.out)
			if err == errInterrupted {
				return "", "", err
			}
			return "", "", errLeftOpen
		}
		answer := strings.ToLower(strings.TrimSpace(line))
		if p.Status == runbook.PhaseWaiting && (answer == "" || answer == "n" || answer == "no") {
			return "", "", errLeftOpen
		}
		if answer == "q" {
			return "", "", errLeftOpen
		}
		a, ok := keys[answer]
		if !ok {
			fmt.Fprintf(t.out, "%q is not one of the choices.\n", answer)
			continue
		}
		reason := ""
		if a == runbook.ActSkip || a == runbook.ActSkipPhase || a == runbook.ActAbort {
			fmt.Fprint(t.out, "Reason (recorded in the audit log): ")
			reason, err = t.readLine(ctx)
			if err != nil {
				fmt.Fprintln(t.out)
				return "", "", errLeftOpen
			}
			reason = strings.TrimSpace(reason)
			if reason == "" && a != runbook.ActAbort {
				fmt.Fprintln(t.out, "Skipping needs a reason.")
				continue
			}
		}
		if a == runbook.ActAbort && r.NodesMayBeDown() {
			fmt.Fprintln(t.out, "Abort now means recovery: start what is stopped, in the safe order, then finalize.")
		}
		return a, reason, nil
	}
}

func onlyInterrupted(p *runbook.Phase) bool {
	any := false
	for _, s := range p.Steps {
		switch s.Status {
		case runbook.StepFailed:
			return false
		case runbook.StepInterrupted:
			any = true
		}
	}
	return any
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

// readLine returns the next line of stdin, or errInterrupted on Ctrl-C, or
// io.EOF when stdin ends.
func (t *terminal) readLine(ctx context.Context) (string, error) {
	if t.lines == nil {
		t.lines = make(chan string)
		go func() {
			defer close(t.lines)
			if t.stdin == nil {
				return
			}
			sc := bufio.NewScanner(t.stdin)
			for sc.Scan() {
				t.lines <- sc.Text()
			}
		}()
	}
	select {
	case line, ok := <-t.lines:
		if !ok {
			return "", io.EOF
		}
		return line, nil
	case <-t.interrupts:
		return "", errInterrupted
	case <-ctx.Done():
		return "", errInterrupted
	}
}
