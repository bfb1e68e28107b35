package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

func init() {
	register(&command{name: "run", summary: "take a cluster through the maintenance runbook from this terminal", run: runRun})
}

// Exit codes of run and demo.
const (
	exitOK          = 0   // the run succeeded
	exitNotOK       = 1   // the run ended otherwise, or was left open for later
	exitUsage       = 2   // bad flags or config
	exitInterrupted = 130 // Ctrl-C: the run is saved and can be resumed
)

func runRun(ctx context.Context, env *Env, args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	configPath := fs.String("config", "", "the sdbmaint config `FILE`")
	clusterName := fs.String("cluster", "", "the cluster to take through maintenance")
	yes := fs.Bool("yes", false, "approve every gate, and retry interrupted steps, without asking")
	resume := fs.Bool("resume", false, "continue the cluster's open run")
	verbose := fs.Bool("v", false, "log what the engine does to stderr")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: sdbmaint run --config FILE --cluster NAME [--yes] [--resume] [-v]")
		fmt.Fprintln(env.Stderr)
		fmt.Fprintln(env.Stderr, "Runs preflight and prints its report, then asks at every gate what it will do and")
		fmt.Fprintln(env.Stderr, "whether to go on. Ctrl-C once stops at the next step boundary with everything saved;")
		fmt.Fprintln(env.Stderr, "twice exits at once. --resume continues the cluster's open run.")
		fmt.Fprintln(env.Stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "sdbmaint run: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *clusterName == "" {
		fmt.Fprintln(env.Stderr, "sdbmaint run: --cluster is required")
		return exitUsage
	}
	cfg, err := loadConfig(env, *configPath)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint run: %v\n", err)
		return exitUsage
	}
	if _, err := findCluster(cfg, *clusterName); err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint run: %v\n", err)
		return exitUsage
	}
	log := terminalLogger(env.Stderr, *verbose)
	store, err := openConfiguredStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint run: %v\n", err)
		return exitUsage
	}
	defer store.Close()
	src := newClusterSource(cfg, log)
	defer src.Close()
	src.seedFromHistory(ctx, store)
	eng := runbook.NewEngine(runbook.EngineConfig{Store: store, Clusters: src, Approvers: runbook.AllowAll{}, Logger: log})
	t := newTerminal(env, eng, terminalUser(env), *yes)
	return t.run(ctx, *clusterName, *resume)
}

// terminalUser is who the terminal acts as: "terminal:$USER".
func terminalUser(env *Env) string {
	u := env.Getenv("USER")
	if u == "" {
		u = env.Getenv("LOGNAME")
	}
	if u == "" {
		// Containers and service shells often set neither; the audit log
		// should still name the account that ran the command.
		if cu, err := user.Current(); err == nil && cu.Username != "" {
			u = cu.Username
		} else {
			u = "unknown"
		}
	}
	return "terminal:" + u
}

// terminalLogger logs warnings (everything with -v) to w: the terminal
// prints what happens itself.
func terminalLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// run starts (or resumes) the cluster's run and drives it to its end, or
// until the person stops.
func (t *terminal) run(ctx context.Context, clusterName string, resume bool) int {
	sub := t.eng.Subscribe()
	defer sub.Close()
	open, err := t.eng.OpenRun(ctx, clusterName)
	if err != nil {
		fmt.Fprintf(t.errOut, "sdbmaint run: %v\n", err)
		return exitNotOK
	}
	var run *runbook.Run
	switch {
	case open != nil && !resume:
		fmt.Fprintf(t.errOut, "sdbmaint run: cluster %s has an open run %s, started by %s at %s (now at %s, %s).\n",
			clusterName, open.ID, open.StartedBy, open.StartedAt.Local().Format(time.DateTime), open.Current, phaseStatus(open))
		fmt.Fprintf(t.errOut, "Continue it with: sdbmaint run --config ... --cluster %s --resume\n", clusterName)
		return exitNotOK
	case open != nil:
		fmt.Fprintf(t.out, "Resuming run %s on %s, started by %s at %s.\n", open.ID, clusterName, open.StartedBy, open.StartedAt.Local().Format(time.DateTime))
		run, err = t.eng.ResumeRun(ctx, open.ID)
	default:
		if resume {
			fmt.Fprintf(t.out, "No open run on %s to resume; starting a new one.\n", clusterName)
		}
		var res runbook.StartResult
		res, err = t.eng.Start(ctx, runbook.StartRequest{Cluster: clusterName, By: t.user})
		if err == nil && res.Existing != nil {
			fmt.Fprintf(t.errOut, "sdbmaint run: cluster %s has an open run %s, started by %s at %s; use --resume.\n",
				clusterName, res.Existing.ID, res.Existing.StartedBy, res.Existing.StartedAt.Local().Format(time.DateTime))
			return exitNotOK
		}
		if err == nil {
			run = res.Run
			fmt.Fprintf(t.out, "Run %s on %s, started by %s. Preflight…\n", run.ID, clusterName, t.user)
		}
	}
	if err != nil {
		fmt.Fprintf(t.errOut, "sdbmaint run: %s\n", runbook.ErrorMessage(err))
		if runbook.ErrorKind(err) == runbook.Internal {
			fmt.Fprintf(t.errOut, "  (%v)\n", err)
		}
		return exitNotOK
	}
	t.runID = run.ID
	return t.drive(ctx, sub)
}

func phaseStatus(r *runbook.Run) runbook.PhaseStatus {
	if p := r.CurrentPhase(); p != nil {
		return p.Status
	}
	return ""
}
