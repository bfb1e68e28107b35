package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

func init() {
	register(&command{name: "preflight", summary: "run the preflight checks on a cluster (exit 0 pass, 1 a check failed, 2 could not run)", run: runPreflight})
}

// preflightTimeout bounds a preflight from the terminal.
const preflightTimeout = 2 * time.Minute

// runPreflight reads the cluster and prints the checks as a table or as
// DESIGN.md's JSON. Exit 0: every blocking check passes; 1: one failed; 2:
// preflight could not decide (usage, config, connection, login, host key).
func runPreflight(ctx context.Context, env *Env, args []string) int {
	fs := flag.NewFlagSet("preflight", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	cfgPath := fs.String("config", "", "the sdbmaint config `FILE`")
	name := fs.String("cluster", "", "the cluster `NAME` in the config (may be left out when the config has one)")
	asJSON := fs.Bool("json", false, `print {"cluster", "ok", "checks": [{"name", "status", "detail"}]}`)
	timeout := fs.Duration("timeout", preflightTimeout, "give up after this long")
	verbose := fs.Bool("verbose", false, "log every statement and command to stderr")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: sdbmaint preflight --config FILE --cluster NAME [--json]")
		fmt.Fprintln(env.Stderr)
		fmt.Fprintln(env.Stderr, "Reads the cluster (SQL on the master aggregator, sdb-admin list-nodes on the")
		fmt.Fprintln(env.Stderr, "toolbox host) and runs the runbook's preflight checks. Nothing is changed.")
		fmt.Fprintln(env.Stderr, "Exit status: 0 every blocking check passes, 1 a blocking check failed,")
		fmt.Fprintln(env.Stderr, "2 preflight could not run (config, connection, login, host key).")
		fmt.Fprintln(env.Stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(env.Stderr, "sdbmaint preflight: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadConfig(env, *cfgPath)
	if err != nil {
		return fail("%v", err)
	}
	if *name == "" {
		if len(cfg.Clusters) != 1 {
			return fail("--cluster is required (clusters: %s)", strings.Join(cfg.ClusterNames(), ", "))
		}
		*name = cfg.Clusters[0].Name
	}
	cl, err := findCluster(cfg, *name)
	if err != nil {
		return fail("%v", err)
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w, err := wireCluster(cl, nil, log) // one-shot: no history to seed from
	if err != nil {
		return fail("cluster %s: %s", cl.Name, showError(err))
	}
	defer w.Close()

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if env.Interrupts != nil {
		go func() {
			select {
			case <-env.Interrupts:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	rep, err := w.rb.Preflight.Preflight(ctx)
	if err != nil {
		return fail("cluster %s: could not run: %s", cl.Name, showError(err))
	}
	if *asJSON {
		writePreflightJSON(env.Stdout, rep)
	} else {
		writePreflightTable(env.Stdout, rep, cl.SQL.Addr)
	}
	if !rep.OK {
		return 1
	}
	return 0
}

// showError is what a terminal shows of err: the message for people, and the
// whole chain for internal errors, which have no message of their own.
func showError(err error) string {
	if runbook.ErrorKind(err) == runbook.Internal {
		return err.Error()
	}
	return runbook.ErrorMessage(err)
}

// preflightJSON is the --json output of DESIGN.md, and nothing more.
type preflightJSON struct {
	Cluster string          `json:"cluster"`
	OK      bool            `json:"ok"`
	Checks  []runbook.Check `json:"checks"`
}

func writePreflightJSON(w io.Writer, rep *runbook.Report) {
	out := preflightJSON{Cluster: rep.Cluster, OK: rep.OK, Checks: rep.Checks}
	if out.Checks == nil {
		out.Checks = []runbook.Check{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

func writePreflightTable(w io.Writer, rep *runbook.Report, addr string) {
	detection := "OFF"
	if rep.LeafFailureDetection {
		detection = "ON"
	}
	fmt.Fprintf(w, "preflight %s (master aggregator %s) at %s, took %s\n", rep.Cluster, addr,
		rep.At.Format("2006-01-02 15:04:05 MST"), rep.Took.Round(time.Millisecond))
	fmt.Fprintf(w, "databases: %s; leaf_failure_detection: %s; nodes: %d\n\n", databaseList(rep.Databases), detection, len(rep.Nodes))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tDETAIL")
	warns := 0
	var failed []string
	for _, c := range rep.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, strings.ToUpper(string(c.Status)), oneLine(c.Detail))
		switch c.Status {
		case runbook.Warn:
			warns++
		case runbook.Fail:
			failed = append(failed, c.Name)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	switch {
	case len(failed) > 0:
		fmt.Fprintf(w, "BLOCKED: %d blocking check(s) failed: %s\n", len(failed), strings.Join(failed, ", "))
	case warns > 0:
		fmt.Fprintf(w, "OK: every blocking check passes (%d advisory warning(s))\n", warns)
	default:
		fmt.Fprintln(w, "OK: every check passes")
	}
}

func databaseList(dbs []string) string {
	if len(dbs) == 0 {
		return "none"
	}
	return strings.Join(dbs, ", ")
}

// oneLine keeps a detail on its table row.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ", "\t", " ").Replace(s)
}
