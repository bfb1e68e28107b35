package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
)

func init() {
	register(&command{name: "config check", summary: "check a config file and list every problem in it", run: runConfigCheck})
}

// runConfigCheck loads --config and prints "OK: N clusters (names)" (exit 0)
// or every problem, one per line on stdout (exit 1). Usage errors exit 2.
func runConfigCheck(_ context.Context, env *Env, args []string) int {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	path := fs.String("config", "", "the sdbmaint config `FILE` (YAML)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: sdbmaint config check --config FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "sdbmaint config check: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	cfg, err := loadConfig(env, *path)
	var invalid *configError
	switch {
	case errors.Is(err, errNoConfig):
		fmt.Fprintf(env.Stderr, "sdbmaint config check: %v\n", err)
		fs.Usage()
		return 2
	case errors.As(err, &invalid):
		for _, fe := range invalid.errs {
			fmt.Fprintln(env.Stdout, fe.Error())
		}
		fmt.Fprintf(env.Stderr, "sdbmaint config check: %s: %s\n", *path, problems(len(invalid.errs)))
		return 1
	case err != nil:
		fmt.Fprintf(env.Stderr, "sdbmaint config check: %v\n", err)
		return 1
	}
	fmt.Fprintf(env.Stdout, "OK: %s (%s)\n", clusters(len(cfg.Clusters)), strings.Join(cfg.ClusterNames(), ", "))
	if !cfg.Slack.Configured() {
		fmt.Fprintln(env.Stdout, "note: no slack block: preflight, run and demo work; serve will refuse to start")
	}
	return 0
}

func clusters(n int) string {
	if n == 1 {
		return "1 cluster"
	}
	return fmt.Sprintf("%d clusters", n)
}
