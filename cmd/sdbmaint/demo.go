package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
)

func init() {
	register(&command{name: "demo", summary: "run the whole runbook against a simulated cluster, gates approved automatically", run: runDemo})
}

func runDemo(ctx context.Context, env *Env, args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	speed := fs.Float64("speed", 1, "how fast the simulated nodes stop, start and recover (2 = twice as fast)")
	verbose := fs.Bool("v", false, "log what the engine and the sim do to stderr")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: sdbmaint demo [--speed X] [-v]")
		fmt.Fprintln(env.Stderr)
		fmt.Fprintln(env.Stderr, "Starts a simulated cluster in this process (1 master aggregator, 2 child aggregators,")
		fmt.Fprintln(env.Stderr, "4 leaves, 2 databases) and takes it through the whole runbook with every gate approved,")
		fmt.Fprintln(env.Stderr, "through the same SQL, SSH and store code as a real run. Exit 0 only if the cluster ends")
		fmt.Fprintln(env.Stderr, "fully online and the sim recorded no ordering violation.")
		fmt.Fprintln(env.Stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 || *speed <= 0 {
		fmt.Fprintln(env.Stderr, "sdbmaint demo: takes no arguments; --speed must be positive")
		return exitUsage
	}
	log := terminalLogger(env.Stderr, *verbose)
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) / *speed) }

	dir, err := os.MkdirTemp("", "sdbmaint-demo-")
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint demo: %v\n", err)
		return exitNotOK
	}
	defer os.RemoveAll(dir)
	simLog := terminalLogger(env.Stderr, false)
	if *verbose {
		simLog = log
	}
	c, err := sim.Start(ctx, sim.Options{
		Aggregators: 2, Leaves: 4, Databases: []string{"sales", "web"},
		StopTime: scale(time.Second), StartTime: scale(time.Second), RecoveryTime: scale(3500 * time.Millisecond),
		Logger: simLog,
	})
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint demo: start the simulated cluster: %v\n", err)
		return exitNotOK
	}
	defer c.Close()
	cfgPath := filepath.Join(dir, "sdbmaint.yaml")
	if err := c.WriteConfig(cfgPath); err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint demo: %v\n", err)
		return exitNotOK
	}
	cfg, err := loadConfig(env, cfgPath)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint demo: the simulated cluster's config: %v\n", err)
		return exitNotOK
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "demo.db"))
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint demo: %v\n", err)
		return exitNotOK
	}
	defer store.Close()
	src := newClusterSource(cfg, log)
	defer src.Close()
	// The sim answers list-nodes in a millisecond: poll it often, so that
	// the demo moves on as soon as the leaves have recovered.
	rc, err := src.Cluster(ctx, "sim")
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint demo: %v\n", err)
		return exitNotOK
	}
	rc.PollInterval = 100 * time.Millisecond
	eng := runbook.NewEngine(runbook.EngineConfig{Store: store, Clusters: src, Approvers: runbook.AllowAll{}, Logger: log})

	st := c.State()
	fmt.Fprintf(env.Stdout, "Simulated cluster %q: %d nodes (MA at %s, toolbox over SSH at %s), databases: sales, web.\n",
		"sim", len(st.Nodes), c.MySQLAddr(), c.SSHAddr())
	fmt.Fprintln(env.Stdout, "Every gate is approved automatically, as `sdbmaint run --yes` would; a real run asks at each one.")
	fmt.Fprintln(env.Stdout)

	t := newTerminal(env, eng, "demo", true)
	started := time.Now()
	code := t.run(ctx, "sim", false)

	// The verdict comes from the simulated cluster itself, not from the run.
	final := c.State()
	running := 0
	for _, n := range final.Nodes {
		if n.Process == "running" && n.State == "online" {
			running++
		}
	}
	fmt.Fprintf(env.Stdout, "\nSimulated cluster after %s: %d/%d nodes online, %d ordering violations, leaf_failure_detection %s.\n",
		time.Since(started).Round(100*time.Millisecond), running, len(final.Nodes), len(final.Violations), map[bool]string{true: "ON", false: "OFF"}[final.LeafFailureDetection])
	for _, v := range final.Violations {
		fmt.Fprintf(env.Stdout, "  !! %s: %s\n", v.Rule, v.Detail)
	}
	if code != exitOK || running != len(final.Nodes) || len(final.Violations) > 0 {
		if code == exitOK {
			code = exitNotOK
		}
		return code
	}
	fmt.Fprintln(env.Stdout, "Done: the cluster is fully online and the runbook order was kept.")
	return exitOK
}
