package verify

import (
	"context"
	"fmt"
	"strings"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// PackagesCheck is the preflight check packages_verified: every package a
// cluster's config lists must verify. It is blocking: a package that is not
// verified, or could not be checked, fails preflight.
//
// It builds its Verifier on every run, so a trusted root refreshed on disk is
// picked up by the next preflight without a restart, and a broken one fails
// the check (naming the file) instead of the whole preflight.
type PackagesCheck struct {
	opts Options
	pkgs []Package
}

// PackagesCheck has the shape of cluster.ExtraCheck, which preflight runs.
var _ interface {
	Name() string
	Run(context.Context) runbook.Check
} = (*PackagesCheck)(nil)

// NewPackagesCheck returns the packages_verified check over pkgs.
func NewPackagesCheck(opts Options, pkgs []Package) *PackagesCheck {
	return &PackagesCheck{opts: opts, pkgs: append([]Package(nil), pkgs...)}
}

// Name returns "packages_verified".
func (c *PackagesCheck) Name() string { return runbook.CheckPackagesVerified }

// Run verifies every package and reports Pass only if all are verified;
// Detail names each file with its signer and log index, or why it failed.
func (c *PackagesCheck) Run(ctx context.Context) runbook.Check {
	check := runbook.Check{Name: c.Name()}
	if len(c.pkgs) == 0 {
		check.Status, check.Detail = runbook.Pass, "no packages listed"
		return check
	}
	v, err := New(c.opts)
	if err != nil {
		check.Status = runbook.Fail
		check.Detail = "could not check any package: " + runbook.ErrorMessage(err)
		return check
	}
	return Summarize(c.Name(), v.VerifyPackages(ctx, c.pkgs))
}

// Summarize turns results into one preflight check named name: Pass when
// every result is Verified, else Fail; failures are listed first.
func Summarize(name string, results []Result) runbook.Check {
	if len(results) == 0 {
		return runbook.Check{Name: name, Status: runbook.Pass, Detail: "no packages listed"}
	}
	var good, bad []string
	for _, r := range results {
		if r.Verdict == Verified {
			good = append(good, fmt.Sprintf("%s: verified (log index %d)", r.Path, r.LogIndex))
			continue
		}
		bad = append(bad, fmt.Sprintf("%s: %s, %s: %s", r.Path, r.Verdict, r.Check, r.Message))
	}
	check := runbook.Check{Name: name, Status: runbook.Pass}
	if len(bad) > 0 {
		check.Status = runbook.Fail
	}
	check.Detail = strings.Join(append(bad, good...), "; ")
	if check.Status == runbook.Pass {
		check.Detail = fmt.Sprintf("%d of %d signed by %s: %s", len(good), len(results), results[0].Identity, check.Detail)
	}
	return check
}
