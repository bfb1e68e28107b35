package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sdbmaint/sdbmaint/config"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/verify"
	"github.com/sdbmaint/sdbmaint/verify/verifytest"
)

// verifyHost is a toolbox host directory holding SingleStore packages and
// their bundles, signed by an offline Sigstore that the trusted root file
// next to the config trusts.
type verifyHost struct {
	t    *testing.T
	ss   *verifytest.Sigstore
	dir  string
	root string
}

func newVerifyHost(t *testing.T) *verifyHost {
	t.Helper()
	ss, err := verifytest.New()
	if err != nil {
		t.Fatal(err)
	}
	h := &verifyHost{t: t, ss: ss, dir: t.TempDir()}
	h.root = filepath.Join(h.dir, "trusted_root.json")
	if err := ss.WriteTrustedRoot(h.root, verifytest.RootOptions{}); err != nil {
		t.Fatal(err)
	}
	return h
}

// pkg writes a package and, unless bundle is "", a bundle over its digest
// string signed with opts; it returns the package's path.
func (h *verifyHost) pkg(name, bundle string, opts verifytest.SignOptions) string {
	h.t.Helper()
	content := make([]byte, 4096)
	if _, err := rand.Read(content); err != nil {
		h.t.Fatal(err)
	}
	p := filepath.Join(h.dir, name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		h.t.Fatal(err)
	}
	if bundle != "" {
		b, err := h.ss.Sign(verifytest.DigestString(content), opts)
		if err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(bundle, b, 0o600); err != nil {
			h.t.Fatal(err)
		}
	}
	return p
}

// config writes an sdbmaint config whose cluster "prod" has toolbox as its
// toolbox block and extra lines appended to the cluster.
func (h *verifyHost) config(toolbox string, extra ...string) string {
	h.t.Helper()
	y := fmt.Sprintf(`verify:
  trusted_root: %s
clusters:
  - name: prod
    sql: {addr: "127.0.0.1:3306", user: sdbmaint, password: "${SDB_PASSWORD}"}
    toolbox: %s
`, h.root, toolbox)
	for _, l := range extra {
		y += "    " + l + "\n"
	}
	p := filepath.Join(h.dir, "sdbmaint.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func runVerifyCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "SDB_PASSWORD" {
			return "secret"
		}
		return ""
	}}
	code = Main(context.Background(), env, append([]string{"verify"}, args...))
	return code, out.String(), errb.String()
}

func wantAll(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not say %q:\n%s", what, w, got)
		}
	}
}

func TestVerifyCommandVerified(t *testing.T) {
	t.Parallel()
	h := newVerifyHost(t)
	p := h.pkg("singlestoredb-server-8.9.3.tar.gz", filepath.Join(h.dir, "singlestoredb-server-8.9.3.tar.gz.sig"), verifytest.SignOptions{})
	cfg := h.config("{local: true}")
	code, out, errs := runVerifyCmd(t, "--config", cfg, "--cluster", "prod", p)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errs)
	}
	wantAll(t, "output", out, p+": verified", "signer:     "+verify.DefaultIdentity, "issuer:     "+verify.DefaultIssuer,
		"log index:  123456789", "signed at:  ", "sha256:     ", "bundle:     "+p+".sig")
}

func TestVerifyCommandOneNotVerified(t *testing.T) {
	t.Parallel()
	h := newVerifyHost(t)
	good := h.pkg("singlestoredb-server-8.9.3.tar.gz", filepath.Join(h.dir, "singlestoredb-server-8.9.3.tar.gz.sig"), verifytest.SignOptions{})
	bad := h.pkg("singlestoredb-toolbox-1.17.0.tar.gz", filepath.Join(h.dir, "singlestoredb-toolbox-1.17.0.tar.gz.sig"),
		verifytest.SignOptions{Issuer: "https://token.actions.githubusercontent.com"})
	absent := filepath.Join(h.dir, "singlestore-client-1.0.tar.gz")
	cfg := h.config("{local: true}")
	code, out, _ := runVerifyCmd(t, "--config", cfg, "--cluster", "prod", good, bad, absent)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (a package is not verified)\n%s", code, out)
	}
	wantAll(t, "output", out, good+": verified", bad+": NOT VERIFIED (wrong issuer)", "vouched for by https://token.actions.githubusercontent.com",
		absent+": COULD NOT CHECK (hash failed)", "No such file or directory")
}

func TestVerifyCommandCouldNotCheck(t *testing.T) {
	t.Parallel()
	h := newVerifyHost(t)
	cfg := h.config("{local: true}")
	code, out, _ := runVerifyCmd(t, "--config", cfg, "--cluster", "prod", filepath.Join(h.dir, "absent.tar.gz"))
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s", code, out)
	}
	wantAll(t, "output", out, "COULD NOT CHECK (hash failed)")
}

// Over real SSH, with --bundle after the PATH and the cluster overriding
// the signed: mode.
func TestVerifyCommandOverSSH(t *testing.T) {
	t.Parallel()
	h := newVerifyHost(t)
	host, err := verifytest.StartSSHHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	p := h.pkg("singlestoredb-server-8.9.3.tar.gz", filepath.Join(h.dir, "server.bundle.json"), verifytest.SignOptions{})
	cfg := h.config(fmt.Sprintf("{ssh: {addr: %q, user: %s, key_file: %s, known_hosts: %s}}", host.Addr, host.User, host.KeyFile, host.KnownHosts),
		"verify: {signed: digest}")
	code, out, errs := runVerifyCmd(t, "--config", cfg, "--cluster", "prod", p, "--bundle", filepath.Join(h.dir, "server.bundle.json"))
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errs)
	}
	wantAll(t, "output", out, p+": verified", "bundle:     "+filepath.Join(h.dir, "server.bundle.json"))

	host.Close()
	code, out, _ = runVerifyCmd(t, "--config", cfg, "--cluster", "prod", "--bundle", filepath.Join(h.dir, "server.bundle.json"), p)
	if code != 2 {
		t.Fatalf("toolbox host down: exit %d, want 2\n%s", code, out)
	}
	wantAll(t, "output", out, "COULD NOT CHECK (toolbox host unavailable)")
}

// A package the cluster's config lists is checked against the bundle the
// config names, and against the cluster's own identity.
func TestVerifyCommandUsesClusterConfig(t *testing.T) {
	t.Parallel()
	h := newVerifyHost(t)
	const ci = "https://kubernetes.io/namespaces/release/serviceaccounts/signer"
	bundle := filepath.Join(h.dir, "bundles", "server.json")
	if err := os.Mkdir(filepath.Dir(bundle), 0o700); err != nil {
		t.Fatal(err)
	}
	p := h.pkg("singlestoredb-server-8.9.3.tar.gz", bundle, verifytest.SignOptions{Identity: ci})
	listed := fmt.Sprintf("packages: [{path: %s, bundle: %s}]", p, bundle)

	cfg := h.config("{local: true}", listed, fmt.Sprintf("verify: {identity: %q}", ci))
	if code, out, errs := runVerifyCmd(t, "--config", cfg, "--cluster", "prod", p); code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errs)
	}

	cfg = h.config("{local: true}", listed)
	code, out, _ := runVerifyCmd(t, "--config", cfg, "--cluster", "prod", p)
	if code != 1 {
		t.Fatalf("with the default identity: exit %d, want 1\n%s", code, out)
	}
	wantAll(t, "output", out, "NOT VERIFIED (wrong identity)", "signed by "+ci)

	// The same packages as the preflight check.
	c, err := config.Load(cfg, func(string) string { return "secret" })
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := c.Cluster("prod")
	r, closeRunner, err := toolboxRunner(cl, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeRunner()
	check := packagesCheck(cl, r).Run(context.Background())
	if check.Name != runbook.CheckPackagesVerified || check.Status != runbook.Fail || !strings.Contains(check.Detail, "wrong identity") {
		t.Fatalf("preflight check: %+v", check)
	}
	cl.Packages = nil
	if packagesCheck(cl, r) != nil {
		t.Fatal("a cluster without packages got a packages_verified check")
	}
}

func TestVerifyCommandUsage(t *testing.T) {
	t.Parallel()
	h := newVerifyHost(t)
	cfg := h.config("{local: true}")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--cluster", "prod", "/opt/p"}, "--config is required"},
		{[]string{"--config", cfg, "/opt/p"}, "--cluster is required"},
		{[]string{"--config", cfg, "--cluster", "prod"}, "at least one package PATH"},
		{[]string{"--config", cfg, "--cluster", "prod", "--bundle", "/opt/b", "/opt/p", "/opt/q"}, "--bundle names the bundle of one package"},
		{[]string{"--config", cfg, "--cluster", "staging", "/opt/p"}, `no cluster "staging"`},
		{[]string{"--config", filepath.Join(h.dir, "absent.yaml"), "--cluster", "prod", "/opt/p"}, "absent.yaml"},
		{[]string{"--config", cfg, "--cluster", "prod", "--colour", "/opt/p"}, "flag provided but not defined: -colour"},
	}
	for _, c := range cases {
		code, out, errs := runVerifyCmd(t, c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("verify %v: exit %d, stderr %q; want 2 and %q (stdout %q)", c.args, code, errs, c.want, out)
		}
	}
}

// A trusted root that cannot be used is a config problem: exit 2, naming it.
func TestVerifyCommandBadTrustedRoot(t *testing.T) {
	t.Parallel()
	h := newVerifyHost(t)
	if err := os.WriteFile(h.root, []byte(`{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := h.config("{local: true}")
	code, _, errs := runVerifyCmd(t, "--config", cfg, "--cluster", "prod", "/opt/p")
	if code != 2 || !strings.Contains(errs, "trusted root "+h.root) {
		t.Fatalf("exit %d, stderr %q; want 2 naming the trusted root", code, errs)
	}
}

// Flags may follow the PATHs; everything after -- is a PATH, even if it
// looks like a flag.
func TestParseInterspersed(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	bundle := fs.String("bundle", "", "")
	paths, ok := parseInterspersed(fs, []string{"/opt/a", "--bundle", "/opt/b", "/opt/c", "--", "--bundle", "-x"})
	if !ok || *bundle != "/opt/b" || !slices.Equal(paths, []string{"/opt/a", "/opt/c", "--bundle", "-x"}) {
		t.Fatalf("paths %q, bundle %q, ok %v", paths, *bundle, ok)
	}
	if _, ok := parseInterspersed(fs, []string{"/opt/a", "--nope"}); ok {
		t.Fatal("an unknown flag after a PATH was accepted")
	}
}
