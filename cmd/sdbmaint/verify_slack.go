package main

import (
	"context"
	"log/slog"

	"github.com/sdbmaint/sdbmaint/bot"
	"github.com/sdbmaint/sdbmaint/config"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/verify"
)

// /sdbmaint verify CLUSTER PATH... in Slack: bot.AddVerify does the Slack
// side (parsing, approvers only, an immediate note, the answer in the
// channel); this file turns the config into the checks, as `sdbmaint
// verify` does them from a terminal.

func init() {
	serveHooks = append(serveHooks, addSlackVerify)
}

// addSlackVerify adds /sdbmaint verify to the bot that serve runs.
func addSlackVerify(_ context.Context, d *serveDeps) (func(context.Context) error, error) {
	return nil, d.bot.AddVerify(configPackageVerifier(d.cfg, d.log.With("component", "verify")))
}

// configPackageVerifier checks package files with the cluster's verify
// policy (the top-level verify block with the cluster's overrides) on its
// toolbox host. Each call connects to the host afresh and reads the trusted
// root again, so a refreshed root counts at once and nothing is remembered
// between calls. A file's bundle is the one the cluster's packages list
// names for it, else PATH.sig: Slack has no --bundle.
func configPackageVerifier(cfg *config.Config, log *slog.Logger) bot.PackageVerifier {
	return func(ctx context.Context, name string, paths []string) ([]verify.Result, error) {
		cl, ok := cfg.Cluster(name)
		if !ok {
			return nil, runbook.Errorf(runbook.Invalid, "no cluster %q in the sdbmaint config", name)
		}
		runner, closeRunner, err := toolboxRunner(cl, nil)
		if err != nil {
			return nil, inCluster(name, "toolbox host", err)
		}
		defer closeRunner()
		opts := verifyOptions(cl, runner)
		opts.Logger = log.With("cluster", name)
		v, err := verify.New(opts)
		if err != nil {
			return nil, inCluster(name, "verify", err)
		}
		pkgs := make([]verify.Package, len(paths))
		for i, p := range paths {
			pkgs[i] = verify.Package{Path: p, Bundle: configuredBundle(cl, p)}
		}
		return v.VerifyPackages(ctx, pkgs), nil
	}
}

// inCluster prefixes a classified error's message with the cluster and
// what failed, keeping its kind; an internal error stays as it is (it is
// logged in full and shown as an apology).
func inCluster(cluster, what string, err error) error {
	kind := runbook.ErrorKind(err)
	if kind == runbook.Internal {
		return err
	}
	return runbook.Wrap(kind, err, "cluster %s: %s: %s", cluster, what, runbook.ErrorMessage(err))
}
