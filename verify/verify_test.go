package verify

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/verify/verifytest"
)

// fixture is a toolbox host directory with a package, a Sigstore that can
// sign it, and a trusted root file that trusts that Sigstore.
type fixture struct {
	t       *testing.T
	ss      *verifytest.Sigstore
	dir     string
	root    string // trusted_root.json
	pkg     string // the package on the "toolbox host"
	content []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ss, err := verifytest.New()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := &fixture{t: t, ss: ss, dir: dir, root: filepath.Join(dir, "trusted_root.json"),
		pkg: filepath.Join(dir, "singlestoredb-server-8.9.3.tar.gz"), content: make([]byte, 64*1024)}
	if _, err := rand.Read(f.content); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.pkg, f.content)
	if err := ss.WriteTrustedRoot(f.root, verifytest.RootOptions{}); err != nil {
		t.Fatal(err)
	}
	return f
}

// signDigest writes a bundle over the package's digest string to path.
func (f *fixture) signDigest(path string, content []byte, opts verifytest.SignOptions) {
	f.t.Helper()
	f.write(path, verifytest.DigestString(content), opts)
}

// signFile writes a bundle over the package's bytes to path.
func (f *fixture) signFile(path string, content []byte, opts verifytest.SignOptions) {
	f.t.Helper()
	f.write(path, content, opts)
}

func (f *fixture) write(path string, blob []byte, opts verifytest.SignOptions) {
	f.t.Helper()
	b, err := f.ss.Sign(blob, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	writeFile(f.t, path, b)
}

func (f *fixture) verifier(mode Mode) *Verifier {
	f.t.Helper()
	v, err := New(Options{TrustedRootPath: f.root, Signed: mode, Runner: local})
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestVerifiedPackage(t *testing.T) {
	t.Parallel()
	for _, mode := range []Mode{SignedDigest, SignedFile} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if mode == SignedDigest {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
			} else {
				f.signFile(f.pkg+".sig", f.content, verifytest.SignOptions{})
			}
			before := time.Now()
			r := f.verifier(mode).VerifyFile(context.Background(), f.pkg, "")
			if r.Verdict != Verified {
				t.Fatalf("verdict %q (%s: %s), want verified", r.Verdict, r.Check, r.Message)
			}
			if r.Check != "" || r.Identity != DefaultIdentity || r.Issuer != DefaultIssuer ||
				r.LogIndex != verifytest.LogIndex || r.Digest != hexSHA256(f.content) || r.Bundle != f.pkg+".sig" {
				t.Fatalf("result %+v", r)
			}
			if d := before.Sub(r.SignedAt); d < -time.Minute || d > time.Minute {
				t.Fatalf("signed at %v, want about now (%v)", r.SignedAt, before)
			}
			for _, want := range []string{DefaultIdentity, DefaultIssuer, "index 123456789"} {
				if !strings.Contains(r.Message, want) {
					t.Errorf("message %q does not mention %q", r.Message, want)
				}
			}
		})
	}
}

// The Rekor entry carries no signed time, but an RFC 3161 timestamp from a
// trusted authority does: verified, and the time is the TSA's.
func TestVerifiedByTimestampAuthority(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{NoInclusionPromise: true, Timestamp: true})
	r := f.verifier(SignedDigest).VerifyFile(context.Background(), f.pkg, "")
	if r.Verdict != Verified || r.SignedAt.IsZero() {
		t.Fatalf("verdict %q (%s: %s) at %v, want verified with a time", r.Verdict, r.Check, r.Message, r.SignedAt)
	}
}

// A path with quotes, spaces, a backslash and shell syntax is hashed and
// read as the one file it names.
func TestVerifiedOddPath(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	odd := filepath.Join(f.dir, `it's a \ $(touch pwned) pkg.tar.gz`)
	writeFile(t, odd, f.content)
	f.signDigest(filepath.Join(f.dir, "sig `x`.json"), f.content, verifytest.SignOptions{})
	r := f.verifier(SignedDigest).VerifyFile(context.Background(), odd, filepath.Join(f.dir, "sig `x`.json"))
	if r.Verdict != Verified {
		t.Fatalf("verdict %q (%s: %s), want verified", r.Verdict, r.Check, r.Message)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "pwned")); err == nil {
		t.Fatal("the path was executed by the shell")
	}
}

func TestNotVerified(t *testing.T) {
	t.Parallel()
	other := []byte("singlestoredb-toolbox-1.17.0.tar.gz contents")
	cases := []struct {
		name  string
		mode  Mode
		setup func(f *fixture) (bundle string)
		check Check
		msg   []string // substrings of Message
	}{
		{
			name: "wrong identity",
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{Identity: "https://kubernetes.io/namespaces/attacker/serviceaccounts/ci"})
				return ""
			},
			check: CheckWrongIdentity,
			msg:   []string{"signed by https://kubernetes.io/namespaces/attacker/serviceaccounts/ci", "only " + DefaultIdentity},
		},
		{
			name: "wrong issuer",
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{Issuer: "https://token.actions.githubusercontent.com"})
				return ""
			},
			check: CheckWrongIssuer,
			msg:   []string{"vouched for by https://token.actions.githubusercontent.com", "only " + DefaultIssuer},
		},
		{
			// ca.VirtualSigstore's own Fulcio puts identities in e-mail SANs;
			// sigstore-go matches those too, the URI SAN check does not.
			name: "identity in an e-mail SAN",
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{EmailSAN: true})
				return ""
			},
			check: CheckWrongIdentity,
			msg:   []string{"not as a URI subject alternative name"},
		},
		{
			name: "tampered file (digest mode)",
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
				tamper(f)
				return ""
			},
			check: CheckDigestMismatch,
			msg:   []string{"does not cover this file", "changed after it was signed"},
		},
		{
			name: "tampered file (file mode)",
			mode: SignedFile,
			setup: func(f *fixture) string {
				f.signFile(f.pkg+".sig", f.content, verifytest.SignOptions{})
				tamper(f)
				return ""
			},
			check: CheckDigestMismatch,
			msg:   []string{"does not cover this file"},
		},
		{
			name: "bundle for another file",
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", other, verifytest.SignOptions{})
				return ""
			},
			check: CheckDigestMismatch,
			msg:   []string{"belongs to another file"},
		},
		{
			name: "bundle signs the bytes, config says digest",
			setup: func(f *fixture) string {
				f.signFile(f.pkg+".sig", f.content, verifytest.SignOptions{})
				return ""
			},
			check: CheckDigestMismatch,
			msg:   []string{"set verify.signed: file"},
		},
		{
			name: "bundle signs the digest, config says file",
			mode: SignedFile,
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
				return ""
			},
			check: CheckDigestMismatch,
			msg:   []string{"set verify.signed: digest"},
		},
		{
			name: "root that does not trust the signer",
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
				stranger, err := verifytest.New()
				if err != nil {
					f.t.Fatal(err)
				}
				if err := stranger.WriteTrustedRoot(f.root, verifytest.RootOptions{}); err != nil {
					f.t.Fatal(err)
				}
				return ""
			},
			check: CheckUntrustedRoot,
			msg:   []string{"log that the trusted root", "does not list"},
		},
		{
			name: "root that trusts the logs but not the certificate authority",
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
				stranger, err := verifytest.New()
				if err != nil {
					f.t.Fatal(err)
				}
				if err := f.ss.WriteTrustedRoot(f.root, verifytest.RootOptions{FulcioFrom: stranger}); err != nil {
					f.t.Fatal(err)
				}
				return ""
			},
			check: CheckUntrustedRoot,
			msg:   []string{"not issued by a certificate authority in the trusted root"},
		},
		{
			name: "certificate without an SCT",
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{NoSCT: true})
				return ""
			},
			check: CheckCertificateTransparency,
			msg:   []string{"no signed certificate timestamp"},
		},
		{
			name: "no trusted time of signing",
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{NoInclusionPromise: true})
				return ""
			},
			check: CheckTimestamp,
			msg:   []string{"nothing trusted says when it was signed"},
		},
		{
			name: "no transparency-log entry",
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
				editBundle(f.t, f.pkg+".sig", func(b *protobundle.Bundle) { b.VerificationMaterial.TlogEntries = nil })
				return ""
			},
			check: CheckTransparencyLog,
			msg:   []string{"no transparency-log entry"},
		},
		{
			name: "forged signed entry timestamp",
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
				editBundle(f.t, f.pkg+".sig", func(b *protobundle.Bundle) {
					set := b.VerificationMaterial.TlogEntries[0].InclusionPromise.SignedEntryTimestamp
					set[len(set)/2] ^= 0xff
				})
				return ""
			},
			check: CheckTransparencyLog,
			msg:   []string{"signed entry timestamp in the bundle does not verify"},
		},
		{
			name: "log entry for another signature",
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
				f.signDigest(f.dir+"/other.sig", other, verifytest.SignOptions{})
				var theirs protobundle.Bundle
				raw, err := os.ReadFile(f.dir + "/other.sig")
				if err != nil {
					f.t.Fatal(err)
				}
				if err := protojson.Unmarshal(raw, &theirs); err != nil {
					f.t.Fatal(err)
				}
				editBundle(f.t, f.pkg+".sig", func(b *protobundle.Bundle) {
					b.VerificationMaterial.TlogEntries = theirs.VerificationMaterial.TlogEntries
				})
				return ""
			},
			check: CheckTransparencyLog,
			msg:   []string{"does not match or does not verify"},
		},
		{
			name:  "missing bundle",
			setup: func(f *fixture) string { return "" },
			check: CheckMissingBundle,
			msg:   []string{"no signature bundle at", ".tar.gz.sig", "--bundle"},
		},
		{
			name: "garbled bundle",
			setup: func(f *fixture) string {
				f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
				raw, _ := os.ReadFile(f.pkg + ".sig")
				writeFile(f.t, f.pkg+".sig", raw[:len(raw)/2])
				return ""
			},
			check: CheckMalformedBundle,
			msg:   []string{"not a Sigstore bundle"},
		},
		{
			name: "bundle that is not JSON at all",
			setup: func(f *fixture) string {
				garbage := make([]byte, 300)
				_, _ = rand.Read(garbage)
				writeFile(f.t, f.dir+"/garbage.bin", garbage)
				return f.dir + "/garbage.bin"
			},
			check: CheckMalformedBundle,
			msg:   []string{"not a Sigstore bundle"},
		},
		{
			name: "oversized bundle",
			setup: func(f *fixture) string {
				writeFile(f.t, f.pkg+".sig", make([]byte, MaxBundleSize+1))
				return ""
			},
			check: CheckMalformedBundle,
			msg:   []string{"larger than 1048576 bytes"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			bundle := c.setup(f)
			mode := c.mode
			if mode == "" {
				mode = SignedDigest
			}
			r := f.verifier(mode).VerifyFile(context.Background(), f.pkg, bundle)
			if r.Verdict != NotVerified || r.Check != c.check {
				t.Fatalf("verdict %q, check %q (%s); want not verified, %q", r.Verdict, r.Check, r.Message, c.check)
			}
			for _, m := range c.msg {
				if !strings.Contains(r.Message, m) {
					t.Errorf("message %q does not say %q", r.Message, m)
				}
			}
			if r.LogIndex != 0 || !r.SignedAt.IsZero() {
				t.Errorf("a failed result reports log index %d, time %v", r.LogIndex, r.SignedAt)
			}
		})
	}
}

func tamper(f *fixture) {
	changed := append([]byte(nil), f.content...)
	changed[len(changed)/2] ^= 1
	writeFile(f.t, f.pkg, changed)
}

func editBundle(t *testing.T, path string, edit func(*protobundle.Bundle)) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b protobundle.Bundle
	if err := protojson.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	edit(&b)
	out, err := protojson.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, out)
}

func TestCouldNotCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		runner func(t *testing.T) Runner
		setup  func(f *fixture) (pkg, bundle string)
		check  Check
		msg    []string
	}{
		{
			name: "package missing on the host",
			setup: func(f *fixture) (string, string) {
				f.signDigest(f.dir+"/gone.tar.gz.sig", f.content, verifytest.SignOptions{})
				return f.dir + "/gone.tar.gz", ""
			},
			check: CheckHashFailed,
			msg:   []string{"could not hash", "No such file or directory"},
		},
		{
			name: "package is a directory",
			setup: func(f *fixture) (string, string) {
				if err := os.Mkdir(f.dir+"/pkgdir", 0o700); err != nil {
					f.t.Fatal(err)
				}
				f.signDigest(f.dir+"/pkgdir.sig", f.content, verifytest.SignOptions{})
				return f.dir + "/pkgdir", ""
			},
			check: CheckHashFailed,
			msg:   []string{"could not hash", "Is a directory"},
		},
		{
			name: "bundle is a directory",
			setup: func(f *fixture) (string, string) {
				if err := os.Mkdir(f.pkg+".sig", 0o700); err != nil {
					f.t.Fatal(err)
				}
				return f.pkg, ""
			},
			check: CheckBundleUnreadable,
			msg:   []string{"could not read bundle", "not a readable regular file"},
		},
		{
			name:   "toolbox host unreachable",
			runner: func(t *testing.T) Runner { return unreachableHost(t) },
			setup: func(f *fixture) (string, string) {
				return f.pkg, ""
			},
			check: CheckHostUnavailable,
			msg:   []string{"connection refused"},
		},
		{
			name:  "relative package path",
			setup: func(f *fixture) (string, string) { return "pkgs/x.tar.gz", "" },
			check: CheckInvalidPath,
			msg:   []string{"not an absolute path"},
		},
		{
			name:  "newline in the bundle path",
			setup: func(f *fixture) (string, string) { return f.pkg, "/tmp/x\n; rm -rf /" },
			check: CheckInvalidPath,
			msg:   []string{"bundle path", "control character"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			pkg, bundle := c.setup(f)
			runner := local
			if c.runner != nil {
				runner = c.runner(t)
			}
			v, err := New(Options{TrustedRootPath: f.root, Runner: runner})
			if err != nil {
				t.Fatal(err)
			}
			r := v.VerifyFile(context.Background(), pkg, bundle)
			if r.Verdict != CouldNotCheck || r.Check != c.check {
				t.Fatalf("verdict %q, check %q (%s); want could not check, %q", r.Verdict, r.Check, r.Message, c.check)
			}
			for _, m := range c.msg {
				if !strings.Contains(r.Message, m) {
					t.Errorf("message %q does not say %q", r.Message, m)
				}
			}
		})
	}
}

func TestCanceledContextCouldNotCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := f.verifier(SignedDigest).VerifyFile(ctx, f.pkg, "")
	if r.Verdict != CouldNotCheck || r.Check != CheckHostUnavailable {
		t.Fatalf("verdict %q (%s: %s), want could not check", r.Verdict, r.Check, r.Message)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	noCT := filepath.Join(f.dir, "no-ct.json")
	if err := f.ss.WriteTrustedRoot(noCT, verifytest.RootOptions{NoCTLog: true}); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(f.dir, "garbage.json")
	writeFile(t, garbage, []byte(`{"mediaType": 7}`))
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"no runner", Options{TrustedRootPath: f.root}, "no runner"},
		{"missing trusted root", Options{TrustedRootPath: f.dir + "/nope.json", Runner: local}, "nope.json does not exist; fetch Sigstore's trusted_root.json over TUF"},
		{"garbled trusted root", Options{TrustedRootPath: garbage, Runner: local}, "trusted root " + garbage},
		{"trusted root without a CT log", Options{TrustedRootPath: noCT, Runner: local}, "lists no certificate transparency log"},
		{"identity not a URI", Options{TrustedRootPath: f.root, Identity: "job-worker", Runner: local}, `identity: "job-worker" is not an absolute URI`},
		{"issuer not a URI", Options{TrustedRootPath: f.root, Issuer: "eks", Runner: local}, `issuer: "eks" is not an absolute URI`},
		{"unknown mode", Options{TrustedRootPath: f.root, Signed: "bytes", Runner: local}, `signed: "bytes" is not one of digest, file`},
	}
	for _, c := range cases {
		_, err := New(c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to say %q", c.name, err, c.want)
			continue
		}
		if runbook.ErrorKind(err) != runbook.Invalid {
			t.Errorf("%s: kind %q, want invalid", c.name, runbook.ErrorKind(err))
		}
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	_, err := New(Options{Runner: local})
	if _, statErr := os.Stat(DefaultTrustedRoot); errors.Is(statErr, os.ErrNotExist) {
		if err == nil || !strings.Contains(err.Error(), DefaultTrustedRoot) {
			t.Fatalf("with no trusted root configured: %v, want it to name %s", err, DefaultTrustedRoot)
		}
	}
	if m, err := ParseMode(""); err != nil || m != SignedDigest {
		t.Fatalf("default mode %q, %v; want digest", m, err)
	}
}

func TestVerifyPackagesKeepsOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
	toolbox := filepath.Join(f.dir, "singlestoredb-toolbox-1.17.0.tar.gz")
	writeFile(t, toolbox, []byte("toolbox"))
	f.signDigest(filepath.Join(f.dir, "toolbox.bundle"), []byte("toolbox"), verifytest.SignOptions{})
	pkgs := []Package{
		{Path: f.pkg},
		{Path: filepath.Join(f.dir, "absent.tar.gz")},
		{Path: toolbox, Bundle: filepath.Join(f.dir, "toolbox.bundle")},
		{Path: toolbox},
	}
	rs := f.verifier(SignedDigest).VerifyPackages(context.Background(), pkgs)
	want := []Verdict{Verified, CouldNotCheck, Verified, NotVerified}
	for i, r := range rs {
		if r.Path != pkgs[i].Path || r.Verdict != want[i] {
			t.Errorf("result %d: %s %q (%s), want %s %q", i, r.Path, r.Verdict, r.Message, pkgs[i].Path, want[i])
		}
	}
	if got := ExitCode(rs); got != 1 {
		t.Errorf("exit code %d, want 1", got)
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	v, n, c := Result{Verdict: Verified}, Result{Verdict: NotVerified}, Result{Verdict: CouldNotCheck}
	cases := []struct {
		rs   []Result
		want int
	}{
		{[]Result{v, v}, 0},
		{[]Result{v, n}, 1},
		{[]Result{v, c}, 2},
		{[]Result{c, n}, 1},
		{[]Result{{}}, 2},
	}
	for _, tc := range cases {
		if got := ExitCode(tc.rs); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.rs, got, tc.want)
		}
	}
}

// Verification keeps no memory: a package verified once and then replaced
// fails the next time.
func TestNothingCachedAsVerified(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.signDigest(f.pkg+".sig", f.content, verifytest.SignOptions{})
	v := f.verifier(SignedDigest)
	if r := v.VerifyFile(context.Background(), f.pkg, ""); r.Verdict != Verified {
		t.Fatalf("first: %q (%s)", r.Verdict, r.Message)
	}
	tamper(f)
	if r := v.VerifyFile(context.Background(), f.pkg, ""); r.Verdict != NotVerified || r.Check != CheckDigestMismatch {
		t.Fatalf("after tampering: %q %q (%s), want not verified, digest mismatch", r.Verdict, r.Check, r.Message)
	}
}
