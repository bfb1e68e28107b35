// Package verify proves that a SingleStore package on the toolbox host is
// the one SingleStore signed, before anyone installs it.
//
// SingleStore signs its downloads (singlestoredb-server, -toolbox, -studio,
// singlestore-client) with Sigstore's keyless flow and tells operators to run
//
//	echo -n <sha256> | cosign verify-blob \
//	  --certificate-oidc-issuer https://oidc.eks.us-east-1.amazonaws.com/id/CCDCDBA1379A5596AB5B2E46DCA385BC \
//	  --certificate-identity https://kubernetes.io/namespaces/freya-production/serviceaccounts/job-worker \
//	  --bundle <SIGNATURE_FILE> --new-bundle-format -
//
// This package makes the same check in-process with sigstore-go, offline,
// without cosign on any host and without moving the package:
//
//  1. The bundle (new bundle format JSON, at most MaxBundleSize) is read on
//     the toolbox host over the Runner, base64-encoded in transit because
//     runners carry lines and a bundle is one long line.
//  2. The package is hashed on the toolbox host with `sha256sum -- 'PATH'`
//     (PATH absolute, no control characters, single-quoted); the output is
//     parsed strictly. A file that cannot be hashed there is CouldNotCheck.
//  3. sigstore-go verifies against a pinned trusted root file, with what
//     cosign demands of a keyless bundle: the certificate chains to a Fulcio
//     CA in the root at the time of signing; it embeds a signed certificate
//     timestamp from a CT log in the root; the bundle holds a Rekor entry from
//     a log in the root whose signed entry timestamp or inclusion proof
//     verifies and whose contents match the bundle; a trusted time of signing
//     exists (the entry's signed integrated time or an RFC 3161 timestamp from
//     a TSA in the root); the signature covers the artifact; the certificate's
//     URI SAN is the expected identity and its issuer extension the expected
//     OIDC issuer. Nothing goes to the network: the inclusion proof and
//     promise travel in the bundle.
//
// # What is signed: the digest string by default
//
// cosign's trailing "-" makes standard input the blob, and what is echoed
// there is a value the download page fills in next to the package: by all
// appearances the package's SHA-256 as lower-case hex, without a newline
// (echo -n). So by default (Options.Signed = SignedDigest, config
// verify.signed: digest) the artifact verified is those 64 ASCII bytes. This
// has not been confirmed against a real SingleStore signature file, so
// SignedFile (verify.signed: file) verifies the file's own bytes instead,
// through its digest (sigstore-go's WithArtifactDigest), so the package
// still never travels. When a bundle fails with a digest mismatch and its
// (unauthenticated) message digest matches the other mode, the failure
// message says to switch: a hint only, never a pass.
//
// # The trusted root
//
// The trusted root is a local file on the machine running sdbmaint
// (default DefaultTrustedRoot, /etc/sdbmaint/trusted_root.json; config
// verify.trusted_root). Fetch it where there is network and copy it over;
// see README.md in this directory. It changes when Sigstore rotates keys, so
// refresh it from time to time; PackagesCheck reloads it on every run.
//
// # Results
//
// VerifyFile returns a Result, never an error: Verified, NotVerified (a check
// failed: wrong identity, wrong issuer, digest mismatch, untrusted root,
// malformed or missing bundle, ...) or CouldNotCheck (the host did not
// answer, the file could not be hashed, bad input). Nothing is cached: each
// call hashes and verifies again, so a result is never remembered as
// verified.
package verify
