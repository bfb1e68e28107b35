package verify

import (
	"context"
	"strings"
	"testing"

	"github.com/sdbmaint/sdbmaint/verify/verifytest"
)

// Over real SSH: the package is hashed and the bundle read on the host
// through cluster.SSHRunner; a good package verifies, a missing one could
// not be checked, a missing bundle is not verified.
func TestOverSSH(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
	_, runner := sshHost(t)
	v, err := New(Options{TrustedRootPath: f.root, Runner: runner})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rs := v.VerifyPackages(ctx, []Package{
		{Path: f.pkg},
		{Path: f.dir + "/absent.tar.gz", Bundle: f.pkg + ".sig"},
		{Path: f.pkg, Bundle: f.dir + "/absent.sig"},
	})
	if r := rs[0]; r.Verdict != Verified || r.LogIndex != verifytest.LogIndex || r.Digest != hexSHA256(f.content) {
		t.Errorf("good package over ssh: %q %q (%s)", r.Verdict, r.Check, r.Message)
	}
	if r := rs[1]; r.Verdict != CouldNotCheck || r.Check != CheckHashFailed || !strings.Contains(r.Message, "No such file") {
		t.Errorf("absent package over ssh: %q %q (%s)", r.Verdict, r.Check, r.Message)
	}
	if r := rs[2]; r.Verdict != NotVerified || r.Check != CheckMissingBundle {
		t.Errorf("absent bundle over ssh: %q %q (%s)", r.Verdict, r.Check, r.Message)
	}
}
