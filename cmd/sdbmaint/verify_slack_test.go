package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/verify"
	"github.com/sdbmaint/sdbmaint/verify/verifytest"
)

const serveStranger = "U0STRANGER"

// verifyServeConfig writes a serve config for the verify host h: cluster
// prod hashes on this machine (toolbox local: true), cluster edge on the
// verifytest SSH host, and each lists extra packages lines.
func verifyServeConfig(t *testing.T, h *verifyHost, fake *slackfake.Server, ssh *verifytest.SSHHost, prodExtra string) string {
	t.Helper()
	y := fmt.Sprintf(`verify:
  trusted_root: %s
slack:
  mode: socket
  bot_token: ${SLACK_BOT_TOKEN}
  app_token: ${SLACK_APP_TOKEN}
  listen: %q
  api_url: %q
  channel: %s
  approvers: [%s, %s]
clusters:
  - name: prod
    sql: {addr: "127.0.0.1:1", user: sdbmaint, password: secret}
    toolbox: {local: true}
%s
  - name: edge
    sql: {addr: "127.0.0.1:1", user: sdbmaint, password: secret}
    toolbox: {ssh: {addr: %q, user: %s, key_file: %s, known_hosts: %s}}
`, h.root, freeAddr(t), fake.URL(), serveChannel, serveOperator, serveApprover, prodExtra,
		ssh.Addr, ssh.User, ssh.KeyFile, ssh.KnownHosts)
	p := filepath.Join(h.dir, "serve.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// verifyInSlack types /sdbmaint TEXT as user and returns the reply that
// arrives through the command's response_url.
func verifyInSlack(t *testing.T, fake *slackfake.Server, user, text string) slackfake.Response {
	t.Helper()
	p := fake.SlashPayload(user, serveChannel, text)
	slackfake.SocketTransport{S: fake}.Deliver(t, "slash_commands", p)
	return responseTo(t, fake, p["response_url"])
}

func responseText(r slackfake.Response) string { return r.Text + "\n" + slackfake.Texts(r.Blocks) }

// An approver checks SingleStore packages from the channel before the
// maintenance window: they hear at once that the check started, and the
// channel gets each file's verdict with its evidence. A tampered package is
// reported as not verified with the check that failed; someone not on the
// approver list is refused and nothing is hashed for them.
func TestServeVerifyInSlack(t *testing.T) {
	t.Parallel()
	h := newVerifyHost(t)
	ssh, err := verifytest.StartSSHHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ssh.Close() })

	server := h.pkg("singlestoredb-server-8.9.3.tar.gz", filepath.Join(h.dir, "singlestoredb-server-8.9.3.tar.gz.sig"), verifytest.SignOptions{})
	// The toolbox package's bundle is where the config's packages list says.
	toolboxBundle := filepath.Join(h.dir, "bundles-toolbox.json")
	toolbox := h.pkg("singlestoredb-toolbox-1.17.0.tar.gz", toolboxBundle, verifytest.SignOptions{})
	tampered := h.pkg("singlestore-client-1.0.7.tar.gz", filepath.Join(h.dir, "singlestore-client-1.0.7.tar.gz.sig"), verifytest.SignOptions{})
	if err := os.WriteFile(tampered, []byte("not the file SingleStore signed"), 0o600); err != nil {
		t.Fatal(err)
	}

	fake := slackfake.New(t)
	path := verifyServeConfig(t, h, fake, ssh, fmt.Sprintf("    packages: [{path: %s, bundle: %s}]", toolbox, toolboxBundle))
	_, stop := startServe(t, serveEnv(), "--config", path)
	fake.WaitConnected(t, 1)

	help := fake.Command(t, slackfake.SocketTransport{S: fake}, serveOperator, serveChannel, "help")
	wantAll(t, "help", help.Text(), "/sdbmaint verify CLUSTER PATH...", "approvers only")

	// The approver verifies two good packages on prod's toolbox host.
	r := verifyInSlack(t, fake, serveApprover, "verify prod "+server+" "+toolbox)
	if r.ResponseType != "in_channel" {
		t.Errorf("the verdict went out as %q; the channel should see it", r.ResponseType)
	}
	got := responseText(r)
	wantAll(t, "the verdict", got, "Package signatures · prod", "2 of 2 verified", "Checked by <@"+serveApprover+">",
		"✅ `"+server+"` — *verified*", "✅ `"+toolbox+"` — *verified*",
		"Signer: `"+verify.DefaultIdentity+"`", "Issuer: `"+verify.DefaultIssuer+"`",
		"Transparency log index `123456789`", "signed <!date^", "SHA-256 `",
		"bundle `"+server+".sig`", "bundle `"+toolboxBundle+"`")
	notes := fake.Ephemerals(serveApprover)
	if len(notes) != 1 || !strings.Contains(notes[0].Text, "Verifying 2 files on the toolbox host of `prod`") {
		t.Errorf("the approver was not told at once that the check started: %+v", notes)
	}

	// A tampered package, hashed over SSH on edge's toolbox host.
	r = verifyInSlack(t, fake, serveOperator, "verify edge "+tampered)
	got = responseText(r)
	wantAll(t, "the tampered verdict", got, "1 NOT verified", "Do not install",
		"❌ `"+tampered+"` — *NOT verified: digest mismatch*")
	if strings.Contains(got, "*verified*") {
		t.Errorf("a tampered package reads as verified:\n%s", got)
	}

	// Someone not on the approver list.
	r = verifyInSlack(t, fake, serveStranger, "verify prod "+server)
	if r.ResponseType == "in_channel" || !strings.Contains(r.Text, "Only approvers may verify packages of `prod`") {
		t.Errorf("refusal: %s %q", r.ResponseType, r.Text)
	}
	if n := len(fake.Ephemerals(serveStranger)); n != 0 {
		t.Errorf("%d notes for a refused user: a check started for them", n)
	}

	// Mistakes get the usage with an example.
	for text, want := range map[string]string{
		"verify":                            "Which cluster, and which package files?",
		"verify prod":                       "Name at least one package file on the toolbox host of `prod`",
		"verify prd " + server:              "Did you mean `prod`?",
		"verify prod --bundle /b " + server: "`--bundle` is not available in Slack",
		"verify prod pkgs/server.tar.gz":    "is not an absolute path",
	} {
		r := verifyInSlack(t, fake, serveApprover, text)
		wantAll(t, "reply to "+text, responseText(r), want, "for example `/sdbmaint verify prod /opt/pkgs/")
		if r.ResponseType == "in_channel" {
			t.Errorf("%q: a usage error went to the channel", text)
		}
	}
	if code, stderr := stop(); code != 0 {
		t.Fatalf("serve exit %d:\n%s", code, stderr)
	}
}
