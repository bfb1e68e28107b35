package verify

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/verify/verifytest"
)

func TestPackagesCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
	studio := filepath.Join(f.dir, "singlestoredb-studio-4.1.0.tar.gz")
	writeFile(t, studio, []byte("studio"))
	f.signDigest(studio+".sig", []byte("studio"), verifytest.SignOptions{Identity: "https://kubernetes.io/namespaces/x/serviceaccounts/y"})
	opts := Options{TrustedRootPath: f.root, Runner: local}
	ctx := context.Background()

	pass := NewPackagesCheck(opts, []Package{{Path: f.pkg}}).Run(ctx)
	if pass.Name != runbook.CheckPackagesVerified || pass.Status != runbook.Pass {
		t.Fatalf("one good package: %+v", pass)
	}
	if !strings.Contains(pass.Detail, f.pkg+": verified (log index 123456789)") || !strings.Contains(pass.Detail, DefaultIdentity) {
		t.Errorf("pass detail %q does not name the file, its log index and signer", pass.Detail)
	}

	fail := NewPackagesCheck(opts, []Package{{Path: f.pkg}, {Path: studio}, {Path: f.dir + "/absent"}}).Run(ctx)
	if fail.Status != runbook.Fail {
		t.Fatalf("a wrongly signed package: %+v", fail)
	}
	for _, want := range []string{studio + ": not verified, wrong identity", f.dir + "/absent: could not check, hash failed", f.pkg + ": verified"} {
		if !strings.Contains(fail.Detail, want) {
			t.Errorf("fail detail %q does not say %q", fail.Detail, want)
		}
	}

	broken := NewPackagesCheck(Options{TrustedRootPath: f.dir + "/none.json", Runner: local}, []Package{{Path: f.pkg}}).Run(ctx)
	if broken.Status != runbook.Fail || !strings.Contains(broken.Detail, "none.json does not exist") {
		t.Errorf("missing trusted root: %+v", broken)
	}

	empty := NewPackagesCheck(opts, nil).Run(ctx)
	if empty.Status != runbook.Pass {
		t.Errorf("no packages: %+v", empty)
	}
}
