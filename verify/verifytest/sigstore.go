// Package verifytest is an offline Sigstore for tests: it signs blobs the
// way the public-good instance does for a Kubernetes workload and writes the
// trusted root and bundle files that package verify reads.
//
// It builds on sigstore-go's pkg/testing/ca but avoids that package's traps
// (see /work/shared/reference/sigstore.md):
//
//   - ca.VirtualSigstore's own Fulcio puts the identity in an e-mail SAN and
//     embeds no SCT. Here the leaf certificate is issued like real Fulcio does
//     for a service-account token: the identity as a URI SAN, the OIDC issuer
//     in the extensions 1.3.6.1.4.1.57264.1.1 (raw) and .1.8 (DER UTF8String),
//     and an SCT from a test CT log embedded in the certificate (signed over
//     the precertificate, as RFC 6962 requires).
//   - VirtualSigstore.RekorLogs() keys its log id as the hex string's bytes,
//     which does not survive a trusted_root.json round trip; here the log id
//     written to the file is the raw SHA-256 of the log's public key, as in the
//     real trusted root.
//   - Keys and certificates live minutes to hours, so fixtures are generated
//     when a test runs; nothing is committed.
//
// The Rekor entry (a hashedrekord v0.0.1 with a signed entry timestamp and an
// inclusion proof with a signed checkpoint) and the RFC 3161 timestamps come
// from a ca.VirtualSigstore; the Fulcio CA chain is made with ca.GenerateRootCa
// and ca.GenerateFulcioIntermediate.
package verifytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
)

// Identity and Issuer are what SingleStore's verification instructions pass
// to cosign; tests sign with them unless they mean to be wrong.
const (
	Identity = "https://kubernetes.io/namespaces/freya-production/serviceaccounts/job-worker"
	Issuer   = "https://oidc.eks.us-east-1.amazonaws.com/id/CCDCDBA1379A5596AB5B2E46DCA385BC"
)

// LogIndex is the Rekor log index every bundle from this package carries.
const LogIndex int64 = 123456789

var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
	oidSCTList  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
)

// Sigstore is one offline Sigstore instance: a Fulcio CA, a CT log, a Rekor
// log and a timestamp authority, each with its own keys.
type Sigstore struct {
	virtual *ca.VirtualSigstore // Rekor and TSA

	fulcioRoot      *x509.Certificate
	fulcioInter     *x509.Certificate
	fulcioInterKey  *ecdsa.PrivateKey
	fulcioNotBefore time.Time
	fulcioNotAfter  time.Time

	ctKey *ecdsa.PrivateKey
}

// New makes a fresh instance; two instances trust nothing of each other.
func New() (*Sigstore, error) {
	v, err := ca.NewVirtualSigstore()
	if err != nil {
		return nil, fmt.Errorf("virtual sigstore: %w", err)
	}
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		return nil, fmt.Errorf("fulcio root: %w", err)
	}
	inter, interKey, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		return nil, fmt.Errorf("fulcio intermediate: %w", err)
	}
	ctKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ct log key: %w", err)
	}
	now := time.Now()
	return &Sigstore{
		virtual:         v,
		fulcioRoot:      rootCert,
		fulcioInter:     inter,
		fulcioInterKey:  interKey,
		fulcioNotBefore: now.Add(-5 * time.Hour),
		fulcioNotAfter:  now.Add(time.Hour),
		ctKey:           ctKey,
	}, nil
}

// RootOptions changes what a trusted root written by TrustedRootJSON trusts.
type RootOptions struct {
	// FulcioFrom takes the certificate authority from another instance: the
	// logs are trusted but the signing certificates are not.
	FulcioFrom *Sigstore
	// NoCTLog leaves the CT log out, so no SCT can be verified.
	NoCTLog bool
}

// TrustedRootJSON returns a trusted_root.json (the protojson of
// dev.sigstore.trustroot.v1.TrustedRoot) that trusts this instance.
func (s *Sigstore) TrustedRootJSON(opts RootOptions) ([]byte, error) {
	fulcio := s
	if opts.FulcioFrom != nil {
		fulcio = opts.FulcioFrom
	}
	cas := []root.CertificateAuthority{&root.FulcioCertificateAuthority{
		Root:                fulcio.fulcioRoot,
		Intermediates:       []*x509.Certificate{fulcio.fulcioInter},
		ValidityPeriodStart: fulcio.fulcioNotBefore,
		ValidityPeriodEnd:   fulcio.fulcioNotAfter,
		URI:                 "https://fulcio.test",
	}}

	rekorLogs := map[string]*root.TransparencyLog{}
	for _, l := range s.virtual.RekorLogs() {
		fixed := *l
		id, err := logID(l.PublicKey)
		if err != nil {
			return nil, err
		}
		// The raw key id, not the hex string's bytes that RekorLogs holds.
		fixed.ID = id
		rekorLogs[hex.EncodeToString(id)] = &fixed
	}

	ctLogs := map[string]*root.TransparencyLog{}
	if !opts.NoCTLog {
		id, err := logID(s.ctKey.Public())
		if err != nil {
			return nil, err
		}
		ctLogs[hex.EncodeToString(id)] = &root.TransparencyLog{
			BaseURL:             "https://ctfe.test",
			ID:                  id,
			ValidityPeriodStart: s.fulcioNotBefore,
			ValidityPeriodEnd:   s.fulcioNotAfter,
			HashFunc:            crypto.SHA256,
			PublicKey:           s.ctKey.Public(),
			SignatureHashFunc:   crypto.SHA256,
		}
	}

	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, ctLogs, s.virtual.TimestampingAuthorities(), rekorLogs)
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	return tr.MarshalJSON()
}

// WriteTrustedRoot writes TrustedRootJSON(opts) to path.
func (s *Sigstore) WriteTrustedRoot(path string, opts RootOptions) error {
	b, err := s.TrustedRootJSON(opts)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// SignOptions says how Sign builds the certificate and the bundle. The zero
// value signs like SingleStore's release pipeline: Identity and Issuer, a URI
// SAN, an embedded SCT, a Rekor entry with promise and proof.
type SignOptions struct {
	Identity string // default Identity
	Issuer   string // default Issuer
	// EmailSAN puts the identity in an e-mail SAN, as ca.VirtualSigstore's
	// own Fulcio does, instead of a URI SAN.
	EmailSAN bool
	// NoSCT leaves the signed certificate timestamp out of the certificate.
	NoSCT bool
	// NoInclusionPromise leaves the signed entry timestamp out of the Rekor
	// entry, so the log gives no trusted time of signing.
	NoInclusionPromise bool
	// Timestamp adds an RFC 3161 timestamp from the test TSA.
	Timestamp bool
}

// Sign signs artifact (the exact bytes; hash them first to sign a digest
// string) and returns the bundle as cosign --new-bundle-format writes it
// (media type application/vnd.dev.sigstore.bundle.v0.3+json).
func (s *Sigstore) Sign(artifact []byte, opts SignOptions) ([]byte, error) {
	if opts.Identity == "" {
		opts.Identity = Identity
	}
	if opts.Issuer == "" {
		opts.Issuer = Issuer
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	leaf, err := s.issueLeaf(key, opts, now)
	if err != nil {
		return nil, fmt.Errorf("leaf certificate: %w", err)
	}

	digest := sha256.Sum256(artifact)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return nil, err
	}

	entry, err := s.rekorEntry(leaf, digest[:], sig, now, !opts.NoInclusionPromise)
	if err != nil {
		return nil, fmt.Errorf("rekor entry: %w", err)
	}

	vm := &protobundle.VerificationMaterial{
		Content:     &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw}},
		TlogEntries: []*protorekor.TransparencyLogEntry{entry},
	}
	if opts.Timestamp {
		tsr, err := s.virtual.TimestampResponse(sig)
		if err != nil {
			return nil, fmt.Errorf("timestamp: %w", err)
		}
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}},
		}
	}
	b := &protobundle.Bundle{
		MediaType:            "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
			Signature:     sig,
		}},
	}
	return protojson.Marshal(b)
}

// issueLeaf issues a short-lived code-signing certificate for key the way
// Fulcio does: issue a precertificate's TBS, have the CT log sign it, embed
// the SCT in the final certificate.
func (s *Sigstore) issueLeaf(key *ecdsa.PrivateKey, opts SignOptions, now time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	issuerV2, err := asn1.MarshalWithParams(opts.Issuer, "utf8")
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(9 * time.Minute),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: oidIssuerV1, Value: []byte(opts.Issuer)},
			{Id: oidIssuerV2, Value: issuerV2},
		},
	}
	if opts.EmailSAN {
		tmpl.EmailAddresses = []string{opts.Identity}
	} else {
		u, err := url.Parse(opts.Identity)
		if err != nil {
			return nil, fmt.Errorf("identity %q: %w", opts.Identity, err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	if opts.NoSCT {
		return s.create(tmpl, key)
	}

	// The SCT signs the certificate without its SCT list; build one with a
	// placeholder list and let the CT library strip it, so the bytes signed
	// are exactly the bytes a verifier reconstructs.
	ts := uint64(now.UnixMilli())
	placeholder := &ct.SignedCertificateTimestamp{SCTVersion: ct.V1, Timestamp: ts,
		Signature: ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA}, Signature: []byte{0}}}
	ext, err := sctListExtension(placeholder)
	if err != nil {
		return nil, err
	}
	withPlaceholder := *tmpl
	withPlaceholder.ExtraExtensions = append(append([]pkix.Extension{}, tmpl.ExtraExtensions...), ext)
	pre, err := s.create(&withPlaceholder, key)
	if err != nil {
		return nil, err
	}
	ctChain, err := ctx509.ParseCertificates(append(append([]byte{}, pre.Raw...), s.fulcioInter.Raw...))
	if err != nil {
		return nil, fmt.Errorf("parse for ct: %w", err)
	}
	leafEntry, err := ct.MerkleTreeLeafForEmbeddedSCT(ctChain, ts)
	if err != nil {
		return nil, fmt.Errorf("precertificate leaf: %w", err)
	}
	id, err := logID(s.ctKey.Public())
	if err != nil {
		return nil, err
	}
	sct := &ct.SignedCertificateTimestamp{SCTVersion: ct.V1, LogID: ct.LogID{KeyID: [32]byte(id)}, Timestamp: ts}
	input, err := ct.SerializeSCTSignatureInput(*sct, ct.LogEntry{Leaf: *leafEntry})
	if err != nil {
		return nil, fmt.Errorf("sct input: %w", err)
	}
	h := sha256.Sum256(input)
	sctSig, err := ecdsa.SignASN1(rand.Reader, s.ctKey, h[:])
	if err != nil {
		return nil, err
	}
	sct.Signature = ct.DigitallySigned{
		Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA},
		Signature: sctSig,
	}
	ext, err = sctListExtension(sct)
	if err != nil {
		return nil, err
	}
	final := *tmpl
	final.ExtraExtensions = append(append([]pkix.Extension{}, tmpl.ExtraExtensions...), ext)
	return s.create(&final, key)
}

func (s *Sigstore) create(tmpl *x509.Certificate, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.fulcioInter, key.Public(), s.fulcioInterKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func sctListExtension(sct *ct.SignedCertificateTimestamp) (pkix.Extension, error) {
	list, err := ctx509util.MarshalSCTsIntoSCTList([]*ct.SignedCertificateTimestamp{sct})
	if err != nil {
		return pkix.Extension{}, err
	}
	raw, err := cttls.Marshal(*list)
	if err != nil {
		return pkix.Extension{}, err
	}
	val, err := asn1.Marshal(raw)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidSCTList, Value: val}, nil
}

// rekorEntry logs a hashedrekord v0.0.1 entry for (digest, sig, leaf) in the
// virtual Rekor: canonical body, signed entry timestamp, inclusion proof.
func (s *Sigstore) rekorEntry(leaf *x509.Certificate, digest, sig []byte, at time.Time, promise bool) (*protorekor.TransparencyLogEntry, error) {
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	// json.Marshal of maps sorts keys and writes no spaces: the canonical
	// form Rekor stores for ASCII content.
	body, err := json.Marshal(map[string]any{
		"apiVersion": "0.0.1",
		"kind":       "hashedrekord",
		"spec": map[string]any{
			"data": map[string]any{"hash": map[string]any{"algorithm": "sha256", "value": hex.EncodeToString(digest)}},
			"signature": map[string]any{
				"content":   base64.StdEncoding.EncodeToString(sig),
				"publicKey": map[string]any{"content": base64.StdEncoding.EncodeToString(certPEM)},
			},
		},
	})
	if err != nil {
		return nil, err
	}
	hexID, err := s.virtual.RekorLogID()
	if err != nil {
		return nil, err
	}
	rawID, err := hex.DecodeString(hexID)
	if err != nil {
		return nil, err
	}
	proof, err := s.virtual.GetInclusionProof(body)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof: %w", err)
	}
	rootHash, err := hex.DecodeString(*proof.RootHash)
	if err != nil {
		return nil, err
	}
	entry := &protorekor.TransparencyLogEntry{
		LogIndex:       LogIndex,
		LogId:          &protocommon.LogId{KeyId: rawID},
		KindVersion:    &protorekor.KindVersion{Kind: "hashedrekord", Version: "0.0.1"},
		IntegratedTime: at.Unix(),
		InclusionProof: &protorekor.InclusionProof{
			LogIndex:   *proof.LogIndex,
			RootHash:   rootHash,
			TreeSize:   *proof.TreeSize,
			Hashes:     [][]byte{},
			Checkpoint: &protorekor.Checkpoint{Envelope: *proof.Checkpoint},
		},
		CanonicalizedBody: body,
	}
	if promise {
		set, err := s.virtual.RekorSignPayload(tlog.RekorPayload{
			Body:           base64.StdEncoding.EncodeToString(body),
			IntegratedTime: entry.IntegratedTime,
			LogIndex:       LogIndex,
			LogID:          hexID,
		})
		if err != nil {
			return nil, fmt.Errorf("signed entry timestamp: %w", err)
		}
		entry.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	}
	return entry, nil
}

// logID is the id a trusted root and an SCT use for a log: the SHA-256 of
// the log's PKIX public key.
func logID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return sum[:], nil
}

// DigestString is the value SingleStore's instructions echo into cosign:
// the lower-case hex SHA-256 of the package, no newline. Sign it to make a
// bundle for verify's "digest" mode.
func DigestString(pkg []byte) []byte {
	sum := sha256.Sum256(pkg)
	return []byte(hex.EncodeToString(sum[:]))
}
