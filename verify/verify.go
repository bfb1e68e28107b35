package verify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	sigverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// Mode says what a bundle's signature covers.
type Mode string

const (
	// SignedDigest: the signed blob is the package's lower-case hex SHA-256
	// string (64 bytes, no newline), what SingleStore's documented
	// `echo -n <sha256> | cosign verify-blob ... -` checks. The default.
	SignedDigest Mode = "digest"
	// SignedFile: the signed blob is the package file itself. Only its
	// digest is needed, so the package still never leaves the toolbox host.
	SignedFile Mode = "file"
)

// ParseMode reads a verify.signed value; "" is the default, SignedDigest.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", SignedDigest:
		return SignedDigest, nil
	case SignedFile:
		return SignedFile, nil
	}
	return "", runbook.Errorf(runbook.Invalid, "signed: %q is not one of digest, file", s)
}

// Defaults: SingleStore's published signer (the "Verification instructions"
// on its download pages) and the documented place of the pinned root.
const (
	DefaultTrustedRoot = "/etc/sdbmaint/trusted_root.json"
	DefaultIdentity    = "https://kubernetes.io/namespaces/freya-production/serviceaccounts/job-worker"
	DefaultIssuer      = "https://oidc.eks.us-east-1.amazonaws.com/id/CCDCDBA1379A5596AB5B2E46DCA385BC"
)

// Verdict is the answer for one package.
type Verdict string

const (
	// Verified: every check passed; the package is what the signer signed.
	Verified Verdict = "verified"
	// NotVerified: a check failed; do not install the package.
	NotVerified Verdict = "not verified"
	// CouldNotCheck: the checks could not be made (the toolbox host did not
	// answer, the file could not be hashed or the bundle read, bad input).
	CouldNotCheck Verdict = "could not check"
)

// Check names the check that did not pass, in an operator's words.
type Check string

// The checks, in the order they are made.
const (
	CheckInvalidPath             Check = "invalid path"
	CheckHostUnavailable         Check = "toolbox host unavailable"
	CheckBundleUnreadable        Check = "bundle unreadable"
	CheckHashFailed              Check = "hash failed"
	CheckMissingBundle           Check = "missing bundle"
	CheckMalformedBundle         Check = "malformed bundle"
	CheckTransparencyLog         Check = "transparency log"
	CheckUntrustedRoot           Check = "untrusted root"
	CheckTimestamp               Check = "timestamp"
	CheckCertificateTransparency Check = "certificate transparency"
	CheckDigestMismatch          Check = "digest mismatch"
	CheckWrongIdentity           Check = "wrong identity"
	CheckWrongIssuer             Check = "wrong issuer"
	CheckSignature               Check = "signature"
)

// Result is the answer for one package file.
type Result struct {
	Path    string  // the package on the toolbox host
	Bundle  string  // its bundle on the toolbox host
	Verdict Verdict // Verified, NotVerified or CouldNotCheck
	Check   Check   // the check that failed; "" when Verified
	// Identity and Issuer are the certificate's subject (URI SAN) and OIDC
	// issuer. Proven only when Verdict is Verified; otherwise they are what
	// the bundle claims, if it could be read.
	Identity string
	Issuer   string
	LogIndex int64     // Rekor log index of the verified entry (Verified only)
	SignedAt time.Time // time of signing proven by the log or a timestamp authority (Verified only)
	Digest   string    // lower-case hex SHA-256 of the file, computed on the toolbox host
	Message  string    // one sentence for an operator: the evidence or what failed
}

// Options configures a Verifier. Only Runner is required.
type Options struct {
	TrustedRootPath string // local file; default DefaultTrustedRoot
	Identity        string // certificate identity (URI SAN); default DefaultIdentity
	Issuer          string // OIDC issuer; default DefaultIssuer
	Signed          Mode   // default SignedDigest
	Runner          Runner // runs sha256sum and reads bundles on the toolbox host
	Logger          *slog.Logger
}

// Verifier checks packages on one toolbox host against one policy. It keeps
// no results between calls: every call hashes and verifies again, so nothing
// is ever remembered as verified. Safe for concurrent use.
type Verifier struct {
	rootPath string
	identity string
	issuer   string
	mode     Mode
	runner   Runner
	log      *slog.Logger
	trusted  *root.TrustedRoot
	sv       *sigverify.Verifier
	certID   sigverify.CertificateIdentity
}

// New loads the trusted root and returns a Verifier. Errors are
// runbook.Invalid and name what is wrong (a missing trusted root, an
// identity that is not a URI).
func New(opts Options) (*Verifier, error) {
	if opts.Runner == nil {
		return nil, runbook.Errorf(runbook.Invalid, "verify: no runner for the toolbox host")
	}
	if opts.TrustedRootPath == "" {
		opts.TrustedRootPath = DefaultTrustedRoot
	}
	if opts.Identity == "" {
		opts.Identity = DefaultIdentity
	}
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	mode, err := ParseMode(string(opts.Signed))
	if err != nil {
		return nil, err
	}
	if err := checkURL(opts.Identity); err != nil {
		return nil, runbook.Errorf(runbook.Invalid, "identity: %v", err)
	}
	if err := checkURL(opts.Issuer); err != nil {
		return nil, runbook.Errorf(runbook.Invalid, "issuer: %v", err)
	}
	tr, err := root.NewTrustedRootFromPath(opts.TrustedRootPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, runbook.Errorf(runbook.Invalid, "trusted root %s does not exist; "+
				"fetch Sigstore's trusted_root.json over TUF on a machine with network access (gh attestation trusted-root, or sigstore-go's root.FetchTrustedRoot) and copy it there; see verify/README.md",
				opts.TrustedRootPath)
		}
		return nil, runbook.Errorf(runbook.Invalid, "trusted root %s: %v", opts.TrustedRootPath, err)
	}
	switch {
	case len(tr.FulcioCertificateAuthorities()) == 0:
		return nil, runbook.Errorf(runbook.Invalid, "trusted root %s lists no certificate authority", opts.TrustedRootPath)
	case len(tr.RekorLogs()) == 0:
		return nil, runbook.Errorf(runbook.Invalid, "trusted root %s lists no transparency log", opts.TrustedRootPath)
	case len(tr.CTLogs()) == 0:
		return nil, runbook.Errorf(runbook.Invalid, "trusted root %s lists no certificate transparency log", opts.TrustedRootPath)
	}
	// What cosign verify-blob demands of a keyless bundle, offline: an SCT
	// in the certificate, a transparency-log entry, and a trusted time of
	// signing (the log's signed integrated time or an RFC 3161 timestamp).
	sv, err := sigverify.NewVerifier(tr,
		sigverify.WithSignedCertificateTimestamps(1),
		sigverify.WithTransparencyLog(1),
		sigverify.WithObserverTimestamps(1))
	if err != nil {
		return nil, fmt.Errorf("sigstore verifier: %w", err)
	}
	certID, err := sigverify.NewShortCertificateIdentity(opts.Issuer, "", opts.Identity, "")
	if err != nil {
		return nil, runbook.Errorf(runbook.Invalid, "identity/issuer: %v", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Verifier{
		rootPath: opts.TrustedRootPath,
		identity: opts.Identity,
		issuer:   opts.Issuer,
		mode:     mode,
		runner:   opts.Runner,
		log:      log,
		trusted:  tr,
		sv:       sv,
		certID:   certID,
	}, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URI", s)
	}
	return nil
}

// Package is a package file on the toolbox host and its bundle.
type Package struct {
	Path   string
	Bundle string // default Path + ".sig"
}

// DefaultBundle is where SingleStore's instructions put the signature file:
// next to the package, named like it with ".sig" appended.
func DefaultBundle(path string) string { return path + ".sig" }

// VerifyFile checks the package at path on the toolbox host against the
// bundle at bundlePath there ("" means DefaultBundle(path)). The file is
// hashed on the host; only its digest and the bundle come here.
func (v *Verifier) VerifyFile(ctx context.Context, path, bundlePath string) Result {
	if bundlePath == "" {
		bundlePath = DefaultBundle(path)
	}
	res := v.verifyFile(ctx, path, bundlePath)
	v.log.InfoContext(ctx, "package verification", "path", res.Path, "bundle", res.Bundle,
		"verdict", string(res.Verdict), "check", string(res.Check), "digest", res.Digest,
		"identity", res.Identity, "log_index", res.LogIndex)
	return res
}

func (v *Verifier) verifyFile(ctx context.Context, path, bundlePath string) Result {
	res := Result{Path: path, Bundle: bundlePath}
	if err := checkPath(path); err != nil {
		return res.fail(CouldNotCheck, CheckInvalidPath, "package path: "+err.Error())
	}
	if err := checkPath(bundlePath); err != nil {
		return res.fail(CouldNotCheck, CheckInvalidPath, "bundle path: "+err.Error())
	}

	// The bundle first: it is small, and a host that does not answer is
	// found before the package (possibly gigabytes) is hashed.
	raw, bundleErr := readBundleOnHost(ctx, v.runner, bundlePath)
	if bundleErr != nil && !errors.Is(bundleErr, errMissingBundle) {
		return res.fail(CouldNotCheck, hostCheck(bundleErr, CheckBundleUnreadable), bundleErr.Error())
	}
	digest, err := hashOnHost(ctx, v.runner, path)
	if err != nil {
		return res.fail(CouldNotCheck, hostCheck(err, CheckHashFailed), err.Error())
	}
	res.Digest = digest
	if bundleErr != nil {
		return res.fail(NotVerified, CheckMissingBundle, fmt.Sprintf(
			"there is no signature bundle at %s on the toolbox host: download the package's signature file next to it, or name it with --bundle",
			bundlePath))
	}
	if len(raw) > MaxBundleSize {
		return res.fail(NotVerified, CheckMalformedBundle, fmt.Sprintf(
			"%s is larger than %d bytes: not a Sigstore bundle", bundlePath, MaxBundleSize))
	}
	return v.verifyBundle(res, raw)
}

// verifyBundle runs sigstore-go over the bundle and the digest and turns
// its answer into a Result.
func (v *Verifier) verifyBundle(res Result, raw []byte) Result {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return res.fail(NotVerified, CheckMalformedBundle, fmt.Sprintf(
			"%s is not a Sigstore bundle in the new bundle format (cosign --new-bundle-format): %v", res.Bundle, err))
	}
	if b.GetMessageSignature() == nil {
		return res.fail(NotVerified, CheckMalformedBundle, fmt.Sprintf(
			"%s holds an attestation (DSSE envelope), not a blob signature", res.Bundle))
	}
	claimed, haveClaim := claimedSigner(&b)
	if haveClaim {
		res.Identity, res.Issuer = claimed.SubjectAlternativeName, claimed.Issuer
	}

	fileDigest, err := hex.DecodeString(res.Digest)
	if err != nil || len(fileDigest) != sha256.Size {
		return res.fail(CouldNotCheck, CheckHashFailed, "the toolbox host returned a malformed digest")
	}
	var artifact sigverify.ArtifactPolicyOption
	switch v.mode {
	case SignedFile:
		artifact = sigverify.WithArtifactDigest("sha256", fileDigest)
	default:
		artifact = sigverify.WithArtifact(strings.NewReader(res.Digest))
	}
	vr, err := v.sv.Verify(&b, sigverify.NewPolicy(artifact, sigverify.WithCertificateIdentity(v.certID)))
	if err != nil {
		check, msg := v.classify(err, &b, claimed, haveClaim, fileDigest)
		return res.fail(NotVerified, check, msg)
	}

	// sigstore-go matches the identity against the first URI or e-mail SAN;
	// a Kubernetes service account is always a URI SAN, so demand that.
	if !hasURISAN(&b, v.identity) {
		return res.fail(NotVerified, CheckWrongIdentity, fmt.Sprintf(
			"the certificate names %s, but not as a URI subject alternative name, as Fulcio does for a service account", v.identity))
	}
	if vr.Signature != nil && vr.Signature.Certificate != nil {
		res.Identity = vr.Signature.Certificate.SubjectAlternativeName
		res.Issuer = vr.Signature.Certificate.Issuer
	}
	res.SignedAt = signedAt(vr.VerifiedTimestamps)
	res.LogIndex = v.trustedLogIndex(&b)
	res.Verdict = Verified
	res.Message = fmt.Sprintf("signed by %s (issuer %s); in the transparency log at index %d; signed %s",
		res.Identity, res.Issuer, res.LogIndex, res.SignedAt.UTC().Format(time.RFC3339))
	return res
}

// hostCheck tells a toolbox host that did not answer (the runners return
// runbook.Unavailable for that: no connection, a dropped session, a
// canceled command) from a command that ran and failed there.
func hostCheck(err error, ran Check) Check {
	if runbook.ErrorKind(err) == runbook.Unavailable {
		return CheckHostUnavailable
	}
	return ran
}

func (r Result) fail(verdict Verdict, check Check, msg string) Result {
	r.Verdict, r.Check, r.Message = verdict, check, msg
	return r
}

// classify maps a sigstore-go v1.3.0 verification error to the check that
// failed. sigstore-go's errors are mostly text wrapped in a fixed prefix per
// step (log inclusion, timestamps, leaf certificate, SCT, signature,
// identity); the bundle and the trusted root refine the answer. Each branch
// is covered by a test, so a dependency update that changes the texts fails
// the tests rather than the operator.
func (v *Verifier) classify(err error, b *bundle.Bundle, claimed certificate.Summary, haveClaim bool, fileDigest []byte) (Check, string) {
	text := err.Error()
	has := func(prefix string) bool { return strings.HasPrefix(text, prefix) }
	switch {
	case has("failed to verify log inclusion"):
		entries, _ := b.TlogEntries()
		known := 0
		for _, e := range entries {
			if _, ok := v.trusted.RekorLogs()[hex.EncodeToString([]byte(e.LogKeyID()))]; ok {
				known++
			}
		}
		switch {
		case len(entries) == 0:
			return CheckTransparencyLog, "the bundle has no transparency-log entry, so nothing proves the signature was published"
		case known == 0:
			return CheckUntrustedRoot, fmt.Sprintf(
				"the bundle's transparency-log entry is from a log that the trusted root %s does not list: signed on another Sigstore instance, or the trusted root is out of date",
				v.rootPath)
		case strings.Contains(text, "not enough verified log entries"):
			return CheckTransparencyLog, "the transparency log's signed entry timestamp in the bundle does not verify"
		}
		return CheckTransparencyLog, "the transparency-log entry in the bundle does not match or does not verify: " + strings.TrimPrefix(text, "failed to verify log inclusion: ")
	case has("failed to verify timestamps"):
		return CheckTimestamp, "nothing trusted says when it was signed: the log entry has no signed time, and no timestamp authority in the trusted root vouches for it"
	case has("failed to verify leaf certificate"):
		return CheckUntrustedRoot, fmt.Sprintf(
			"the signing certificate was not issued by a certificate authority in the trusted root %s (or not while that authority was valid)", v.rootPath)
	case has("failed to verify signed certificate timestamp"):
		return CheckCertificateTransparency, "the signing certificate carries no signed certificate timestamp from a CT log in the trusted root, so its issuance was not publicly logged"
	case has("failed to verify signature"):
		return CheckDigestMismatch, v.digestMismatch(b, fileDigest)
	case has("failed to verify certificate identity"):
		if haveClaim && claimed.SubjectAlternativeName != v.identity {
			return CheckWrongIdentity, fmt.Sprintf("signed by %s, but only %s is trusted to sign these packages",
				claimed.SubjectAlternativeName, v.identity)
		}
		if haveClaim && claimed.Issuer != v.issuer {
			return CheckWrongIssuer, fmt.Sprintf("the signer's identity was vouched for by %s, but only %s is trusted",
				orNone(claimed.Issuer), v.issuer)
		}
		return CheckWrongIdentity, "the signer is not the trusted identity: " + text
	case has("failed to summarize certificate"), has("failed to fetch verification content"),
		has("failed to fetch signature content"), has("failed to get signature verifier"):
		return CheckMalformedBundle, "the bundle's certificate or signature cannot be read: " + text
	}
	return CheckSignature, "the signature does not verify: " + text
}

// digestMismatch explains a signature that does not cover this file, and
// says so when the bundle looks made for the other signed: mode. The hint
// reads the bundle's message digest, which is unauthenticated, so it only
// ever adds advice to a failure.
func (v *Verifier) digestMismatch(b *bundle.Bundle, fileDigest []byte) string {
	msg := fmt.Sprintf("the signature does not cover this file (sha256 %s): the file changed after it was signed, or the bundle belongs to another file",
		hex.EncodeToString(fileDigest))
	claimed := b.GetMessageSignature().GetMessageDigest().GetDigest()
	digestString := sha256.Sum256([]byte(hex.EncodeToString(fileDigest)))
	switch {
	case v.mode == SignedDigest && string(claimed) == string(fileDigest):
		msg += "; the bundle appears to sign the file's bytes rather than its digest string: if that is how these packages are signed, set verify.signed: file"
	case v.mode == SignedFile && string(claimed) == string(digestString[:]):
		msg += "; the bundle appears to sign the file's digest string rather than its bytes: if that is how these packages are signed, set verify.signed: digest"
	}
	return msg
}

func claimedSigner(b *bundle.Bundle) (certificate.Summary, bool) {
	vc, err := b.VerificationContent()
	if err != nil || vc.Certificate() == nil {
		return certificate.Summary{}, false
	}
	s, err := certificate.SummarizeCertificate(vc.Certificate())
	if err != nil {
		return certificate.Summary{}, false
	}
	return s, true
}

func hasURISAN(b *bundle.Bundle, identity string) bool {
	vc, err := b.VerificationContent()
	if err != nil || vc.Certificate() == nil {
		return false
	}
	for _, u := range vc.Certificate().URIs {
		if u.String() == identity {
			return true
		}
	}
	return false
}

// signedAt prefers the transparency log's signed integrated time (when the
// signature was published) and falls back to the earliest other verified
// timestamp.
func signedAt(ts []sigverify.TimestampVerificationResult) time.Time {
	var best time.Time
	for _, t := range ts {
		if t.Type == "Tlog" {
			return t.Timestamp
		}
		if best.IsZero() || t.Timestamp.Before(best) {
			best = t.Timestamp
		}
	}
	return best
}

// trustedLogIndex is the log index of the first entry from a log the
// trusted root lists (the one the verification relied on).
func (v *Verifier) trustedLogIndex(b *bundle.Bundle) int64 {
	entries, _ := b.TlogEntries()
	for _, e := range entries {
		if _, ok := v.trusted.RekorLogs()[hex.EncodeToString([]byte(e.LogKeyID()))]; ok {
			return e.LogIndex()
		}
	}
	return 0
}

func orNone(s string) string {
	if s == "" {
		return "no issuer"
	}
	return s
}

// parallelism bounds how many packages are hashed on the toolbox host at
// once: hashing is disk-bound there, so more would only contend.
const parallelism = 2

// VerifyPackages verifies each package, two at a time, and returns the
// results in the order given.
func (v *Verifier) VerifyPackages(ctx context.Context, pkgs []Package) []Result {
	out := make([]Result, len(pkgs))
	sem := make(chan struct{}, parallelism)
	var wg sync.WaitGroup
	for i, p := range pkgs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = v.VerifyFile(ctx, p.Path, p.Bundle)
		}()
	}
	wg.Wait()
	return out
}

// ExitCode is the exit status of `sdbmaint verify` for results: 0 when every
// package is verified, 1 when one is not verified, 2 when none failed a
// check but one could not be checked. A failed check outranks "could not
// check": it is evidence, not an outage.
func ExitCode(results []Result) int {
	code := 0
	for _, r := range results {
		switch r.Verdict {
		case NotVerified:
			return 1
		case CouldNotCheck:
			code = 2
		case Verified:
		default:
			code = 2
		}
	}
	return code
}
