package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

func init() {
	register(&command{name: "history", summary: "past runs: phases, timings, approvers", run: runHistory})
}

func runHistory(ctx context.Context, env *Env, args []string) int {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	configPath := fs.String("config", "", "the sdbmaint config `FILE`")
	clusterName := fs.String("cluster", "", "only this cluster's runs")
	asJSON := fs.Bool("json", false, "print JSON, with every run's audit log (each approval and refusal: who, when)")
	limit := fs.Int("limit", 20, "at most this many runs, newest first (0 = all)")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: sdbmaint history --config FILE [--cluster NAME] [--json] [--limit N]")
		fmt.Fprintln(env.Stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "sdbmaint history: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *limit < 0 {
		fmt.Fprintf(env.Stderr, "sdbmaint history: --limit: want 0 or more, got %d\n", *limit)
		return exitUsage
	}
	cfg, err := loadConfig(env, *configPath)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint history: %v\n", err)
		return exitUsage
	}
	if *clusterName != "" {
		if _, err := findCluster(cfg, *clusterName); err != nil {
			fmt.Fprintf(env.Stderr, "sdbmaint history: %v\n", err)
			return exitUsage
		}
	}
	store, err := openConfiguredStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint history: %v\n", err)
		return exitUsage
	}
	defer store.Close()
	runs, err := store.History(ctx, *clusterName, *limit)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint history: %v\n", err)
		return exitNotOK
	}
	if *asJSON {
		out := make([]historyRun, 0, len(runs))
		for _, r := range runs {
			audit, err := store.Audit(ctx, r.ID)
			if err != nil {
				fmt.Fprintf(env.Stderr, "sdbmaint history: %v\n", err)
				return exitNotOK
			}
			out = append(out, toHistory(r, audit))
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(env.Stderr, "sdbmaint history: %v\n", err)
			return exitNotOK
		}
		return exitOK
	}
	if len(runs) == 0 {
		fmt.Fprintln(env.Stdout, "No runs yet.")
		return exitOK
	}
	for i, r := range runs {
		if i > 0 {
			fmt.Fprintln(env.Stdout)
		}
		printHistory(env.Stdout, r)
	}
	return exitOK
}

func printHistory(w io.Writer, r *runbook.Run) {
	fmt.Fprintf(w, "run %s  %s  %s  started %s by %s", r.ID, r.Cluster, strings.ToUpper(string(r.Status)),
		r.StartedAt.Local().Format(time.DateTime), r.StartedBy)
	if r.Window != "" {
		fmt.Fprintf(w, " (window %s)", r.Window)
	}
	fmt.Fprintln(w)
	s := runbook.Summarize(r, time.Now())
	if s.Downtime > 0 {
		fmt.Fprintf(w, "  downtime %s\n", roundDur(s.Downtime))
	}
	if r.Current != "" {
		fmt.Fprintf(w, "  open: at %s (%s)\n", r.Current, phaseStatus(r))
	}
	for _, p := range s.Phases {
		line := fmt.Sprintf("  %-14s %-9s", p.Name, p.Status)
		if p.Took > 0 {
			line += fmt.Sprintf(" %8s", roundDur(p.Took))
		} else {
			line += "         "
		}
		if p.By != "" {
			line += fmt.Sprintf("  %s by %s at %s", p.Action, p.By, p.At.Local().Format("15:04:05"))
		}
		if p.Note != "" {
			line += "  (" + p.Note + ")"
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	if r.Note != "" {
		fmt.Fprintf(w, "  %s\n", r.Note)
	}
}

// historyRun is one run in history --json.
type historyRun struct {
	ID              string          `json:"id"`
	Cluster         string          `json:"cluster"`
	Status          string          `json:"status"`
	StartedBy       string          `json:"started_by"`
	StartedAt       time.Time       `json:"started_at"`
	EndedAt         *time.Time      `json:"ended_at,omitempty"`
	Window          string          `json:"window,omitempty"`
	Current         string          `json:"current_phase,omitempty"`
	DowntimeSeconds float64         `json:"downtime_seconds"`
	Recovering      bool            `json:"recovering,omitempty"`
	Note            string          `json:"note,omitempty"`
	Preflight       *runbook.Report `json:"preflight,omitempty"`
	PostCheck       *runbook.Report `json:"post_check,omitempty"`
	Phases          []historyPhase  `json:"phases"`
	Audit           []historyAudit  `json:"audit"`
}

type historyPhase struct {
	Name        string           `json:"name"`
	Status      string           `json:"status"`
	StartedAt   *time.Time       `json:"started_at,omitempty"`
	EndedAt     *time.Time       `json:"ended_at,omitempty"`
	TookSeconds float64          `json:"took_seconds"`
	Auto        bool             `json:"auto_approved,omitempty"`
	Approval    *historyApproval `json:"approval,omitempty"`
	Note        string           `json:"note,omitempty"`
	Steps       []historyStep    `json:"steps,omitempty"`
}

type historyApproval struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Action string    `json:"action"`
	Reason string    `json:"reason,omitempty"`
}

type historyStep struct {
	ID         string  `json:"id"`
	Label      string  `json:"label"`
	Status     string  `json:"status"`
	Attempts   int     `json:"attempts"`
	Seconds    float64 `json:"seconds"`
	Error      string  `json:"error,omitempty"`
	Evidence   string  `json:"evidence,omitempty"`
	SkipReason string  `json:"skip_reason,omitempty"`
}

type historyAudit struct {
	At     time.Time `json:"at"`
	Phase  string    `json:"phase,omitempty"`
	Who    string    `json:"who"`
	What   string    `json:"what"`
	Result string    `json:"result,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toHistory(r *runbook.Run, audit []runbook.Audit) historyRun {
	s := runbook.Summarize(r, time.Now())
	h := historyRun{ID: r.ID, Cluster: r.Cluster, Status: string(r.Status), StartedBy: r.StartedBy, StartedAt: r.StartedAt,
		EndedAt: optTime(r.EndedAt), Window: r.Window, Current: string(r.Current), DowntimeSeconds: s.Downtime.Seconds(),
		Recovering: r.Recovering, Note: r.Note, Preflight: r.Preflight, PostCheck: r.PostCheck, Audit: []historyAudit{}}
	for i, p := range r.Phases {
		hp := historyPhase{Name: string(p.Name), Status: string(p.Status), StartedAt: optTime(p.StartedAt), EndedAt: optTime(p.EndedAt),
			TookSeconds: s.Phases[i].Took.Seconds(), Auto: p.Auto, Note: p.Note}
		if p.Approval != nil {
			hp.Approval = &historyApproval{By: p.Approval.By, At: p.Approval.At, Action: string(p.Approval.Action), Reason: p.Approval.Reason}
		}
		for _, st := range p.Steps {
			hs := historyStep{ID: st.ID, Label: st.Label, Status: string(st.Status), Attempts: st.Attempts, Error: st.Error,
				Evidence: st.Evidence, SkipReason: st.SkipReason}
			if !st.StartedAt.IsZero() && !st.EndedAt.IsZero() {
				hs.Seconds = st.EndedAt.Sub(st.StartedAt).Seconds()
			}
			hp.Steps = append(hp.Steps, hs)
		}
		h.Phases = append(h.Phases, hp)
	}
	for _, a := range audit {
		h.Audit = append(h.Audit, historyAudit{At: a.At, Phase: string(a.Phase), Who: a.Who, What: a.What, Result: a.Result})
	}
	return h
}
