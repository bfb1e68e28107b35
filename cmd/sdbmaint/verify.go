package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sdbmaint/sdbmaint/config"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/verify"
)

func init() {
	register(&command{name: "verify", summary: "check SingleStore package signatures on a cluster's toolbox host", run: runVerify})
}

func runVerify(ctx context.Context, env *Env, args []string) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	cfgPath := fs.String("config", "", "the sdbmaint config `FILE`")
	clusterName := fs.String("cluster", "", "the cluster whose toolbox host holds the packages")
	bundlePath := fs.String("bundle", "", "the signature bundle `PATH` on the toolbox host, for a single package (default: PATH.sig, or the bundle the config lists)")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: sdbmaint verify --config FILE --cluster NAME [--bundle PATH] PATH...")
		fmt.Fprintln(env.Stderr)
		fmt.Fprintln(env.Stderr, "Checks the Sigstore signatures of package files on the cluster's toolbox host:")
		fmt.Fprintln(env.Stderr, "each file is hashed there, its bundle read there, and verified here, offline,")
		fmt.Fprintln(env.Stderr, "against the configured trusted root, signer identity and issuer.")
		fmt.Fprintln(env.Stderr, "Exit status: 0 every file verified, 1 a file is not verified, 2 a file could not be checked.")
		fmt.Fprintln(env.Stderr)
		fs.PrintDefaults()
	}
	paths, ok := parseInterspersed(fs, args)
	if !ok {
		return 2
	}
	switch {
	case *cfgPath == "":
		return verifyUsage(env, "--config is required")
	case *clusterName == "":
		return verifyUsage(env, "--cluster is required")
	case len(paths) == 0:
		return verifyUsage(env, "name at least one package PATH on the toolbox host")
	case *bundlePath != "" && len(paths) > 1:
		return verifyUsage(env, "--bundle names the bundle of one package; with several PATHs each bundle is PATH.sig or the one the config lists")
	}

	cfg, err := loadConfig(env, *cfgPath)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint verify: %v\n", err)
		return 2
	}
	cl, err := findCluster(cfg, *clusterName)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint verify: %v\n", err)
		return 2
	}
	runner, closeRunner, err := toolboxRunner(cl, nil)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint verify: cluster %s: %s\n", cl.Name, runbook.ErrorMessage(err))
		return 2
	}
	defer closeRunner()
	v, err := verify.New(verifyOptions(cl, runner))
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint verify: cluster %s: verify: %s\n", cl.Name, runbook.ErrorMessage(err))
		return 2
	}

	ctx, cancel := context.WithCancel(ctx)
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

	pkgs := make([]verify.Package, len(paths))
	for i, p := range paths {
		pkgs[i] = verify.Package{Path: p, Bundle: configuredBundle(cl, p)}
	}
	if *bundlePath != "" {
		pkgs[0].Bundle = *bundlePath
	}
	results := v.VerifyPackages(ctx, pkgs)
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(env.Stdout)
		}
		writeVerifyResult(env.Stdout, r)
	}
	return verify.ExitCode(results)
}

func verifyUsage(env *Env, msg string) int {
	fmt.Fprintf(env.Stderr, "sdbmaint verify: %s\n", msg)
	fmt.Fprintln(env.Stderr, "usage: sdbmaint verify --config FILE --cluster NAME [--bundle PATH] PATH...")
	return 2
}

// parseInterspersed parses flags that may come before, between or after
// the PATHs (the flag package stops at the first non-flag); everything
// after "--" is a PATH.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, bool) {
	var tail []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	var paths []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		paths = append(paths, args[0])
		args = args[1:]
	}
	return append(paths, tail...), true
}

// configuredBundle is the bundle the cluster's packages list gives path,
// or "" (verify's default, path + ".sig").
func configuredBundle(cl *config.Cluster, path string) string {
	for _, p := range cl.Packages {
		if p.Path == path {
			return p.Bundle
		}
	}
	return ""
}

// verifyOptions is the cluster's verify block (the top-level one with the
// cluster's overrides) as verify.Options.
func verifyOptions(cl *config.Cluster, r verify.Runner) verify.Options {
	return verify.Options{
		TrustedRootPath: cl.Verify.TrustedRoot,
		Identity:        cl.Verify.Identity,
		Issuer:          cl.Verify.Issuer,
		Signed:          verify.Mode(cl.Verify.Signed),
		Runner:          r,
	}
}

// packagesCheck is the packages_verified preflight check for the cluster,
// or nil when its config lists no packages (the check is then not run).
func packagesCheck(cl *config.Cluster, r verify.Runner) *verify.PackagesCheck {
	if len(cl.Packages) == 0 {
		return nil
	}
	pkgs := make([]verify.Package, len(cl.Packages))
	for i, p := range cl.Packages {
		pkgs[i] = verify.Package{Path: p.Path, Bundle: p.Bundle}
	}
	return verify.NewPackagesCheck(verifyOptions(cl, r), pkgs)
}

// writeVerifyResult prints one file's answer: the verdict, then the
// evidence (signer, issuer, log index, time) or the check that failed.
func writeVerifyResult(w io.Writer, r verify.Result) {
	switch r.Verdict {
	case verify.Verified:
		fmt.Fprintf(w, "%s: verified\n", printable(r.Path))
		fmt.Fprintf(w, "  signer:     %s\n", r.Identity)
		fmt.Fprintf(w, "  issuer:     %s\n", r.Issuer)
		fmt.Fprintf(w, "  log index:  %d\n", r.LogIndex)
		fmt.Fprintf(w, "  signed at:  %s\n", r.SignedAt.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "%s: %s (%s)\n", printable(r.Path), strings.ToUpper(string(r.Verdict)), r.Check)
		fmt.Fprintf(w, "  %s\n", r.Message)
	}
	if r.Digest != "" {
		fmt.Fprintf(w, "  sha256:     %s\n", r.Digest)
	}
	fmt.Fprintf(w, "  bundle:     %s\n", printable(r.Bundle))
}

// printable quotes a path that holds control characters, so an invalid
// argument cannot write escape sequences to the operator's terminal.
func printable(s string) string {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return strconv.Quote(s)
		}
	}
	return s
}
