package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

func init() {
	register(&command{name: "sim", summary: "run a simulated SingleStore cluster until interrupted", run: runSim})
}

// simReady is the one JSON line sim prints when it is ready.
type simReady struct {
	MySQL   string `json:"mysql"`
	SSH     string `json:"ssh"`
	Control string `json:"control"`
	Config  string `json:"config"`
}

func runSim(ctx context.Context, env *Env, args []string) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	aggregators := fs.Int("aggregators", 2, "child aggregators (the master aggregator always exists)")
	leaves := fs.Int("leaves", 4, "leaves, an even number (availability groups 1 and 2 are paired)")
	databases := fs.String("databases", "sales,web", "user databases, comma-separated")
	partitions := fs.Int("partitions", 8, "partitions per database")
	stopTime := fs.Duration("stop-time", 300*time.Millisecond, "how long sdb-admin stop-node takes per node")
	startTime := fs.Duration("start-time", 300*time.Millisecond, "how long sdb-admin start-node takes per node")
	recoveryTime := fs.Duration("recovery-time", time.Second, "how long a started leaf stays recovering")
	lf := addLogFlags(fs, "info")
	writeConfig := fs.String("write-config", "", "write a ready sdbmaint config (and SSH key files beside it) to `FILE`")
	var faults []string
	fs.Func("fault", "inject a fault `SPEC` at start (repeatable):\n"+sim.FaultForms, func(s string) error {
		faults = append(faults, s)
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: sdbmaint sim [--aggregators N] [--leaves N] [--databases a,b] [--fault SPEC]...")
		fmt.Fprintln(env.Stderr, "                    [--stop-time D] [--start-time D] [--recovery-time D] [--write-config FILE]")
		fmt.Fprintln(env.Stderr)
		fmt.Fprintln(env.Stderr, "Runs a simulated cluster until SIGINT or SIGTERM and prints one JSON line with its addresses when ready.")
		fmt.Fprintln(env.Stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "sdbmaint sim: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log, err := lf.logger(env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint sim: %v\n", err)
		return 2
	}
	opts := sim.Options{
		Aggregators:  *aggregators,
		Leaves:       *leaves,
		Partitions:   *partitions,
		StopTime:     *stopTime,
		StartTime:    *startTime,
		RecoveryTime: *recoveryTime,
		Faults:       faults,
		Logger:       log,
	}
	switch {
	case *aggregators < 0:
		fmt.Fprintf(env.Stderr, "sdbmaint sim: --aggregators: want 0 or more, got %d\n", *aggregators)
		return 2
	case *aggregators == 0:
		opts.Aggregators = -1 // Options: negative means none
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"stop-time", *stopTime}, {"start-time", *startTime}, {"recovery-time", *recoveryTime}} {
		if d.v <= 0 {
			fmt.Fprintf(env.Stderr, "sdbmaint sim: --%s: want a positive duration, got %v\n", d.name, d.v)
			return 2
		}
	}
	for _, name := range strings.Split(*databases, ",") {
		if name = strings.TrimSpace(name); name != "" {
			opts.Databases = append(opts.Databases, name)
		}
	}
	if len(opts.Databases) == 0 {
		fmt.Fprintln(env.Stderr, "sdbmaint sim: --databases: want at least one database name")
		return 2
	}

	c, err := sim.Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint %v\n", err)
		return 2
	}
	defer c.Close()

	ready := simReady{MySQL: c.MySQLAddr(), SSH: c.SSHAddr(), Control: c.ControlURL()}
	if *writeConfig != "" {
		path, err := filepath.Abs(*writeConfig)
		if err == nil {
			err = c.WriteConfig(path)
		}
		if err != nil {
			fmt.Fprintf(env.Stderr, "sdbmaint sim: --write-config: %v\n", err)
			return 1
		}
		ready.Config = path
	}
	line, _ := json.Marshal(ready)
	fmt.Fprintf(env.Stdout, "%s\n", line)

	select {
	case <-ctx.Done():
	case sig := <-env.Interrupts: // a nil channel blocks forever
		opts.Logger.Info("stopping simulated cluster", "signal", sig.String())
	}
	return 0
}
