package bot

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/verify"
)

const verifyApprover = "U0APPROVER"

func TestParseVerify(t *testing.T) {
	t.Parallel()
	clusters := []string{"prod", "staging"}
	const pkg = "/opt/pkgs/singlestoredb-server-8.9.3.tar.gz"
	ok := []struct {
		words []string
		want  VerifyArgs
	}{
		{[]string{"prod", pkg}, VerifyArgs{Cluster: "prod", Paths: []string{pkg}}},
		{[]string{"PROD", pkg, "/opt/pkgs/b.tgz", pkg}, VerifyArgs{Cluster: "prod", Paths: []string{pkg, "/opt/pkgs/b.tgz"}}},
		{[]string{"staging", "/opt/a b/c.tar.gz"}, VerifyArgs{Cluster: "staging", Paths: []string{"/opt/a b/c.tar.gz"}}},
		// Odd but possible file names are checked; the answer quotes them safely.
		{[]string{"prod", "/opt/<!channel>"}, VerifyArgs{Cluster: "prod", Paths: []string{"/opt/<!channel>"}}},
	}
	for _, c := range ok {
		got, reply := ParseVerify(c.words, clusters)
		if reply != "" || got.Cluster != c.want.Cluster || !slices.Equal(got.Paths, c.want.Paths) {
			t.Errorf("ParseVerify(%q) = %+v, %q; want %+v", c.words, got, reply, c.want)
		}
	}
	eleven := []string{"prod"}
	for i := range 11 {
		eleven = append(eleven, "/opt/pkgs/p"+string(rune('a'+i)))
	}
	bad := []struct {
		words []string
		want  string
	}{
		{nil, "Which cluster, and which package files?"},
		{[]string{"prd", pkg}, "Did you mean `prod`?"},
		{[]string{"prod"}, "Name at least one package file on the toolbox host of `prod`"},
		{[]string{"prod", "--bundle", "/opt/b.sig", pkg}, "`--bundle` is not available in Slack"},
		{[]string{"prod", pkg, "--bundle=/opt/b.sig"}, "`--bundle` is not available in Slack"},
		{[]string{"prod", "-v", pkg}, "`-v` is not something verify takes in Slack"},
		{[]string{"prod", "pkgs/server.tar.gz"}, "`pkgs/server.tar.gz` is not an absolute path"},
		{[]string{"prod", "~/server.tar.gz"}, "is not an absolute path"},
		{[]string{"prod", "/opt/a\x1b[2Jb"}, "contains control characters"},
		{eleven, "At most 10 files per command; you named 11"},
	}
	for _, c := range bad {
		got, reply := ParseVerify(c.words, clusters)
		if !strings.Contains(reply, c.want) {
			t.Errorf("ParseVerify(%q) = %+v, %q; want a reply saying %q", c.words, got, reply, c.want)
		}
		if !strings.Contains(reply, "for example `/sdbmaint verify prod /opt/pkgs/singlestoredb-server-8.9.3.tar.gz`") {
			t.Errorf("ParseVerify(%q): the reply has no example: %q", c.words, reply)
		}
		if strings.ContainsAny(reply, "\x1b") || strings.Contains(reply, "<!") {
			t.Errorf("ParseVerify(%q) echoes unsafe text: %q", c.words, reply)
		}
	}
}

// verifyFixtures are one result of each kind, as package verify returns them.
func verifyFixtures() []verify.Result {
	return []verify.Result{
		{Path: "/opt/pkgs/singlestoredb-server-8.9.3.tar.gz", Bundle: "/opt/pkgs/singlestoredb-server-8.9.3.tar.gz.sig",
			Verdict: verify.Verified, Identity: verify.DefaultIdentity, Issuer: verify.DefaultIssuer, LogIndex: 123456789,
			SignedAt: at(-30, 0).Add(-48 * time.Hour), Digest: strings.Repeat("3f", 32),
			Message: "signed by the expected identity"},
		{Path: "/opt/pkgs/singlestoredb-toolbox-1.17.0.tar.gz", Bundle: "/opt/bundles/toolbox.json",
			Verdict: verify.NotVerified, Check: verify.CheckWrongIssuer, Identity: verify.DefaultIdentity,
			Issuer: "https://token.actions.githubusercontent.com", Digest: strings.Repeat("a0", 32),
			Message: "The certificate was vouched for by https://token.actions.githubusercontent.com, not by the expected issuer " + verify.DefaultIssuer + "."},
		{Path: "/opt/pkgs/singlestore-client-1.0.7.tar.gz", Bundle: "/opt/pkgs/singlestore-client-1.0.7.tar.gz.sig",
			Verdict: verify.CouldNotCheck, Check: verify.CheckHashFailed,
			Message: "sha256sum on the toolbox host failed: No such file or directory."},
	}
}

// The verify messages, against golden JSON in testdata/ and Slack's limits.
// `go test ./bot -run TestVerifyMessagesGolden -update` rewrites them.
func TestVerifyMessagesGolden(t *testing.T) {
	t.Parallel()
	rs := verifyFixtures()
	golden(t, "verify_verified", VerifyMessage("prod", verifyApprover, rs[:1], t0, 2100*time.Millisecond))
	golden(t, "verify_mixed", VerifyMessage("prod", verifyApprover, rs, t0, 14*time.Second))
	golden(t, "verify_could_not_check", VerifyMessage("prod", verifyApprover, rs[2:], t0, 300*time.Millisecond))
	golden(t, "verify_started", VerifyingMessage(VerifyArgs{Cluster: "prod", Paths: []string{rs[0].Path, rs[1].Path}}))
}

// Ten files with the longest paths package verify accepts, and hostile
// text from a bundle, still make one valid message that shows no mention.
func TestVerifyMessageStaysWithinLimits(t *testing.T) {
	t.Parallel()
	var rs []verify.Result
	for i := range MaxVerifyPaths {
		r := verifyFixtures()[i%3]
		r.Path = "/" + strings.Repeat("p<!channel>`", 4096/12)
		r.Bundle = r.Path + ".sig"
		r.Identity = "https://example.com/<!here>" + strings.Repeat("x", 3000)
		r.Message = strings.Repeat("<@U0EVIL> & ", 400)
		rs = append(rs, r)
	}
	m := VerifyMessage("prod", verifyApprover, rs, t0, time.Minute)
	blocks, err := json.Marshal(m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	if err := slackfake.CheckMessage(m.Text, blocks); err != nil {
		t.Fatalf("breaks Slack's limits: %v", err)
	}
	all := m.Text + slackfake.Texts(blocks)
	for _, bad := range []string{"<!channel>", "<!here>", "<@U0EVIL>"} {
		if strings.Contains(all, bad) {
			t.Errorf("the message carries %s from a path or bundle", bad)
		}
	}
	if n := len(m.Blocks); n != 3+MaxVerifyPaths {
		t.Errorf("%d blocks, want a header, context, summary and one per file", n)
	}
}

func TestVerifySummaryText(t *testing.T) {
	t.Parallel()
	rs := verifyFixtures()
	for _, c := range []struct {
		rs   []verify.Result
		want string
	}{
		{rs[:1], "1 of 1 verified"},
		{rs, "1 NOT verified, 1 could not be checked, 1 verified"},
		{rs[2:], "1 could not be checked"},
		{[]verify.Result{rs[0], rs[0]}, "2 of 2 verified"},
	} {
		if got := verifySummaryText(c.rs); got != c.want {
			t.Errorf("verifySummaryText = %q, want %q", got, c.want)
		}
	}
}
