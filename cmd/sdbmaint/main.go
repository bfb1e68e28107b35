// Command sdbmaint takes SingleStore clusters through offline maintenance,
// from Slack or from a terminal. Each subcommand lives in its own file and
// registers itself in init; main only dispatches.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand of sdbmaint.
type command struct {
	name    string
	summary string
	// run executes the subcommand with its arguments (after the name) and
	// returns the process exit code.
	run func(ctx context.Context, env *Env, args []string) int
}

// Env is what a subcommand may touch of the process: its streams and its
// environment. Tests run subcommands in-process with their own Env.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Interrupts delivers SIGINT/SIGTERM to commands that handle them
	// themselves (run, serve, sim); nil in tests that do not send any.
	Interrupts <-chan os.Signal
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("sdbmaint: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Interrupts: sigs}
	os.Exit(Main(context.Background(), env, os.Args[1:]))
}

// Main dispatches args to a subcommand and returns the exit code.
func Main(ctx context.Context, env *Env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name := args[0]
	rest := args[1:]
	// "config check" is the one two-word command.
	if name == "config" && len(rest) > 0 && rest[0] == "check" {
		name, rest = "config check", rest[1:]
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(env.Stderr, "sdbmaint: unknown command %q\n\n", args[0])
		usage(env.Stderr)
		return 2
	}
	return c.run(ctx, env, rest)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sdbmaint COMMAND [flags]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
}
