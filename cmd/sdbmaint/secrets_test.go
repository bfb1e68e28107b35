package main

// Secrets never leave sdbmaint: a whole maintenance runs through serve in
// both Slack modes with recognisable secret values (the SQL password, the
// Slack tokens, the signing secret, the toolbox's SSH private key), runs
// fail on a wrong password, an unreachable host and a bad host key, and
// every output is searched for the secrets and for their base64: the logs
// (JSON and text, debug level), every Web API call the Slack stand-in
// recorded, every acknowledgement and HTTP answer, the SQLite store's
// files, `history --json`, `preflight`, `run` and `config check`.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
)

// Recognisable secrets. The SQL password has the characters that break a
// DSN pasted together by hand (@ / : ? # %), so that a DSN error would
// show it; the Slack tokens are the ones the stand-in accepts.
const (
	secretSQLPassword   = "pw@Zebra/7f:3c?x=1#%SQLSECRET"
	secretWrongPassword = "wrongpw@Narwhal/9e#%WRONGSECRET"
	secretSigning       = "sign-Quokka-42aa91-SIGNSECRET"
)

// secretSet is the secrets a test searches for, by name, with the forms
// they could leak in.
type secretSet struct {
	names   []string
	needles map[string][]string // name -> the value and its base64 forms
}

func newSecretSet() *secretSet { return &secretSet{needles: map[string][]string{}} }

// add registers a secret: its value, and every run of base64 characters
// that encoding it can produce wherever it starts in a longer text (the
// three alignments, standard and URL alphabets, without the last partial
// group, which depends on what follows).
func (s *secretSet) add(name string, value []byte) {
	s.names = append(s.names, name)
	forms := []string{string(value)}
	for _, pad := range [][]byte{nil, {0}, {0, 0}} {
		// The secret preceded by len(pad) bytes, encoded; keep the
		// characters of the groups that lie wholly inside the secret.
		buf := append(append([]byte{}, pad...), value...)
		enc := base64.StdEncoding.EncodeToString(buf)
		start, end := (len(pad)+2)/3*4, len(buf)/3*4
		if end-start >= 12 {
			forms = append(forms, enc[start:end], strings.NewReplacer("+", "-", "/", "_").Replace(enc[start:end]))
		}
	}
	s.needles[name] = dedupe(forms)
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range in {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// addKey registers the material of an OpenSSH private key file: every line
// of its PEM body, and the raw key (its seed) as bytes, hex and base64.
func (s *secretSet) addKey(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("%s is not PEM", path)
	}
	body := strings.TrimSpace(string(pem.EncodeToMemory(block)))
	lines := strings.Split(body, "\n")
	for i, l := range lines[1 : len(lines)-1] {
		if len(l) >= 16 {
			s.names = append(s.names, fmt.Sprintf("ssh key PEM line %d", i+1))
			s.needles[s.names[len(s.names)-1]] = []string{l}
		}
	}
	key, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	pk, ok := key.(*ed25519.PrivateKey)
	if !ok {
		t.Fatalf("the sim's key is a %T, want *ed25519.PrivateKey", key)
	}
	seed := pk.Seed()
	s.add("ssh key seed", seed)
	s.needles["ssh key seed"] = append(s.needles["ssh key seed"], hex.EncodeToString(seed), strings.ToUpper(hex.EncodeToString(seed)))
}

// check fails the test if text holds any secret, naming where and which.
func (s *secretSet) check(t testing.TB, where string, text []byte) {
	t.Helper()
	for _, name := range s.names {
		for _, n := range s.needles[name] {
			if i := bytes.Index(text, []byte(n)); i >= 0 {
				from, to := max(0, i-60), min(len(text), i+len(n)+20)
				t.Errorf("%s holds the %s (as %q): …%q…", where, name, n, text[from:to])
				break
			}
		}
	}
}

// standardSecrets are the secrets every test looks for.
func standardSecrets(t *testing.T, keyFile string) *secretSet {
	s := newSecretSet()
	s.add("SQL password", []byte(secretSQLPassword))
	s.add("wrong SQL password", []byte(secretWrongPassword))
	s.add("bot token", []byte(slackfake.BotToken))
	s.add("app token", []byte(slackfake.AppToken))
	s.add("signing secret", []byte(secretSigning))
	s.addKey(t, keyFile)
	return s
}

// secretsGetenv is the environment serve reads its secrets from.
var secretsGetenv = envMap("SLACK_BOT_TOKEN", slackfake.BotToken, "SLACK_APP_TOKEN", slackfake.AppToken,
	"SLACK_SIGNING_SECRET", secretSigning, "SDB_PASSWORD", secretSQLPassword, "SDB_WRONG_PASSWORD", secretWrongPassword)

// secretsWorld is a simulated cluster that takes the secret password, its
// key files, a config with four clusters that reach it (one good, one
// with a wrong password, one at an address nothing listens on, one with a
// known_hosts entry of another key) and a store path.
type secretsWorld struct {
	sim    *sim.Cluster
	dir    string
	config string
	store  string
	key    string
}

func newSecretsWorld(t *testing.T, slackBlock string) *secretsWorld {
	t.Helper()
	c, err := sim.Start(context.Background(), sim.Options{Aggregators: 1, Leaves: 2, Databases: []string{"sales"},
		Password: secretSQLPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	dir := t.TempDir()
	files, err := c.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A known_hosts that lists another key for the toolbox host.
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	badKnownHosts := filepath.Join(dir, "other_known_hosts")
	if err := os.WriteFile(badKnownHosts, []byte(knownhosts.Line([]string{knownhosts.Normalize(c.SSHAddr())}, other)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	w := &secretsWorld{sim: c, dir: dir, config: filepath.Join(dir, "sdbmaint.yaml"), store: filepath.Join(dir, "sdbmaint.db"), key: files.KeyFile}
	toolbox := func(knownHosts string) string {
		return fmt.Sprintf("{ssh: {addr: %q, user: %s, key_file: %q, known_hosts: %q}}", c.SSHAddr(), files.User, files.KeyFile, knownHosts)
	}
	yaml := fmt.Sprintf(`store:
  path: %q
%s
clusters:
  - name: sim
    sql: {addr: %q, user: %s, password: "${SDB_PASSWORD}"}
    toolbox: %s
    backup: {to: /backups, recent: 24h}
    recovery_timeout: 1m
  - name: badpw
    sql: {addr: %q, user: %s, password: "${SDB_WRONG_PASSWORD}"}
    toolbox: %s
  - name: nohost
    sql: {addr: %q, user: %s, password: "${SDB_PASSWORD}"}
    toolbox: %s
  - name: badkey
    sql: {addr: %q, user: %s, password: "${SDB_PASSWORD}"}
    toolbox: %s
`, w.store, slackBlock,
		c.MySQLAddr(), sim.DefaultUser, toolbox(files.KnownHosts),
		c.MySQLAddr(), sim.DefaultUser, toolbox(files.KnownHosts),
		closed, sim.DefaultUser, toolbox(files.KnownHosts),
		c.MySQLAddr(), sim.DefaultUser, toolbox(badKnownHosts))
	if err := os.WriteFile(w.config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func slackBlock(mode, listen, apiURL string) string {
	return fmt.Sprintf(`slack:
  mode: %s
  bot_token: ${SLACK_BOT_TOKEN}
  app_token: ${SLACK_APP_TOKEN}
  signing_secret: ${SLACK_SIGNING_SECRET}
  listen: %q
  api_url: %q
  channel: %s
  approvers: [%s, %s]
  two_person_rule: true`, mode, listen, apiURL, serveChannel, serveOperator, serveApprover)
}

// TestSecretsNeverLeaveServe runs a whole maintenance, three failing
// preflights and a failed run through serve, in each Slack mode, and
// searches every output for the secrets.
func TestSecretsNeverLeaveServe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ mode, format string }{{"socket", "json"}, {"http", "text"}} {
		t.Run(tc.mode+"/"+tc.format, func(t *testing.T) {
			t.Parallel()
			fake := slackfake.New(t)
			addr := freeAddr(t)
			w := newSecretsWorld(t, slackBlock(tc.mode, addr, fake.URL()))
			secrets := standardSecrets(t, w.key)
			stderr, stop := startServe(t, secretsGetenv, "--config", w.config, "--log-format", tc.format, "--log-level", "debug", "--drain-timeout", "20s")
			var tr slackfake.Transport
			if tc.mode == "socket" {
				fake.WaitConnected(t, 1)
				tr = slackfake.SocketTransport{S: fake}
			} else {
				stderr.waitFor(t, "ready for Slack requests")
				tr = slackfake.HTTPTransport{BaseURL: "http://" + addr, Secret: []byte(secretSigning)}
			}
			var replies [][]byte
			command := func(text string) {
				t.Helper()
				r := fake.Command(t, tr, serveOperator, serveChannel, text)
				if r.Status != 200 {
					t.Fatalf("/sdbmaint %s: status %d %s", text, r.Status, r.Body)
				}
				replies = append(replies, r.Body)
			}
			click := func(msg slackfake.Message, action string) {
				t.Helper()
				r := fake.Click(t, tr, serveApprover, msg, "sdbmaint:"+action)
				if r.Status != 200 {
					t.Fatalf("click %s: status %d %s", action, r.Status, r.Body)
				}
				replies = append(replies, r.Body)
			}

			// Preflights that cannot run: each answer says why, without
			// the secret it was given.
			for _, c := range []struct{ cluster, why string }{
				{"badpw", "access denied"}, {"nohost", "connection refused"}, {"badkey", "host key"},
			} {
				command("preflight " + c.cluster)
				fake.WaitFor(t, "the "+c.cluster+" preflight answer naming "+c.why, func() bool {
					for _, r := range fake.Responses() {
						all := r.Text + slackfake.Texts(r.Blocks)
						if strings.Contains(strings.ToLower(all), c.why) {
							return true
						}
					}
					return false
				})
			}
			// A run whose preflight cannot log in: blocked, then ended.
			command("start badpw")
			blocked := waitCardButton(t, fake, "badpw", runbook.PhasePreflight, "end-run")
			if !strings.Contains(strings.ToLower(blocked.AllText()), "access denied") {
				t.Errorf("the blocked card does not say why:\n%s", blocked.AllText())
			}
			click(blocked, "end-run")

			// The whole maintenance of the good cluster.
			command("start sim")
			for _, g := range []struct {
				phase  runbook.PhaseName
				action string
			}{
				{runbook.PhaseBackup, "approve"}, {runbook.PhaseSnapshot, "approve"}, {runbook.PhaseSyncSnapshot, "approve"},
				{runbook.PhaseStop, "approve"}, {runbook.PhaseMaintenance, "maintenance-done"}, {runbook.PhaseStart, "approve"},
			} {
				click(waitCardButton(t, fake, "sim", g.phase, g.action), g.action)
			}
			fake.WaitFor(t, "the sim run succeeded", func() bool {
				for _, m := range fake.Messages(serveChannel) {
					if strings.HasPrefix(m.Text, "Maintenance of sim") && strings.Contains(m.Text, "succeeded") && len(m.Buttons()) == 0 {
						return true
					}
				}
				return false
			})
			if v := w.sim.Violations(); len(v) > 0 {
				t.Errorf("violations: %+v", v)
			}
			command("status sim")
			command("history sim")
			command("clusters")

			// The operations endpoints, and (in HTTP mode) a forged request.
			var bodies [][]byte
			for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
				bodies = append(bodies, httpGet(t, "http://"+addr+p))
			}
			if tc.mode == "http" {
				_, ctype, body, err := slackfake.EncodeHTTP("slash_commands", fake.SlashPayload(serveOperator, serveChannel, "start sim"))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := http.DefaultClient.Do(slackfake.SignedRequest("http://"+addr+"/slack/commands", []byte(secretSigning[:10]), time.Now(), ctype, body))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("forged request: %d", resp.StatusCode)
				}
				bodies = append(bodies, b)
			}

			// The store while it runs (its WAL holds the latest writes),
			// and again after the drain.
			checkStoreFiles(t, secrets, w.store)
			code, logs := stop()
			if code != 0 {
				t.Fatalf("serve exit %d:\n%s", code, logs)
			}

			// Everything that left sdbmaint.
			if !strings.Contains(logs, "run started") || len(logs) < 2000 {
				t.Fatalf("the log looks too thin to mean anything (%d bytes):\n%s", len(logs), logs)
			}
			secrets.check(t, "the "+tc.format+" log", []byte(logs))
			for i, r := range replies {
				secrets.check(t, fmt.Sprintf("acknowledgement %d", i), r)
			}
			for i, b := range bodies {
				secrets.check(t, fmt.Sprintf("HTTP answer %d", i), b)
			}
			checkSlackCalls(t, secrets, fake)
			checkStoreFiles(t, secrets, w.store)
			var out, errb bytes.Buffer
			env := &Env{Stdout: &out, Stderr: &errb, Getenv: secretsGetenv}
			if code := Main(context.Background(), env, []string{"history", "--config", w.config, "--json"}); code != 0 {
				t.Fatalf("history --json: exit %d: %s", code, errb.String())
			}
			if !strings.Contains(out.String(), "badpw") || !strings.Contains(out.String(), serveApprover) {
				t.Errorf("history --json lacks the runs or the approver:\n%s", out.String())
			}
			secrets.check(t, "history --json", out.Bytes())
			secrets.check(t, "history's stderr", errb.Bytes())
		})
	}
}

// waitCardButton waits until the card of cluster offers action for phase.
func waitCardButton(t *testing.T, fake *slackfake.Server, cluster string, phase runbook.PhaseName, action string) slackfake.Message {
	t.Helper()
	var card slackfake.Message
	fake.WaitFor(t, fmt.Sprintf("the %s card offering %s at %s", cluster, action, phase), func() bool {
		for _, m := range fake.Messages(serveChannel) {
			if !strings.HasPrefix(m.Text, "Maintenance of "+cluster+":") {
				continue
			}
			for _, b := range m.Buttons() {
				if b.ActionID == "sdbmaint:"+action && strings.Contains(b.Value, "|"+string(phase)+"|") {
					card = m
					return true
				}
			}
		}
		return false
	})
	return card
}

func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkSlackCalls searches everything the bot sent Slack. The token form
// field is the one place a token belongs: it must hold the right token for
// the method and nothing else.
func checkSlackCalls(t *testing.T, secrets *secretSet, fake *slackfake.Server) {
	t.Helper()
	calls := fake.Calls("")
	if len(calls) < 20 {
		t.Fatalf("only %d Slack calls recorded", len(calls))
	}
	for i, c := range calls {
		where := fmt.Sprintf("Slack call %d (%s)", i, c.Method)
		form := c.Form
		if tok := form.Get("token"); tok != "" {
			want := slackfake.BotToken
			if c.Method == "apps.connections.open" {
				want = slackfake.AppToken
			}
			if tok != want {
				t.Errorf("%s sends token %q, want the %s", where, tok, want)
			}
			form = cloneValues(form)
			form.Del("token")
		}
		secrets.check(t, where+" form", []byte(form.Encode()))
		secrets.check(t, where+" JSON body", c.JSON)
	}
	for _, m := range fake.Messages(serveChannel) {
		secrets.check(t, "message "+m.TS, []byte(m.Text+"\n"+string(m.Blocks)))
		for _, r := range fake.Thread(m.TS) {
			secrets.check(t, "thread message "+r.TS, []byte(r.Text+"\n"+string(r.Blocks)))
		}
	}
	for _, f := range fake.Files() {
		secrets.check(t, "uploaded file "+f.Name, []byte(f.Title+"\n"+f.Comment+"\n"+f.Content))
	}
	for _, r := range fake.Responses() {
		secrets.check(t, "response_url post", []byte(r.Text+"\n"+string(r.Blocks)))
	}
	for _, u := range []string{serveOperator, serveApprover} {
		for _, e := range fake.Ephemerals(u) {
			secrets.check(t, "ephemeral to "+u, []byte(e.Text+"\n"+string(e.Blocks)))
		}
	}
	for _, v := range fake.Views() {
		secrets.check(t, "view "+v.ID, v.View)
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// checkStoreFiles searches the bytes of the SQLite store and its WAL.
func checkStoreFiles(t *testing.T, secrets *secretSet, store string) {
	t.Helper()
	matches, err := filepath.Glob(store + "*")
	if err != nil || len(matches) == 0 {
		t.Fatalf("no store files at %s: %v", store, err)
	}
	size := 0
	for _, f := range matches {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		size += len(b)
		secrets.check(t, "store file "+filepath.Base(f), b)
	}
	if size < 8192 {
		t.Fatalf("the store files hold only %d bytes", size)
	}
}

// The search itself finds what it looks for: each secret as is, and its
// base64 wherever it starts in a longer text; the key file is all key.
func TestSecretSetFindsEveryForm(t *testing.T) {
	t.Parallel()
	c, err := sim.Start(context.Background(), sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	files, err := c.Files(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	secrets := standardSecrets(t, files.KeyFile)
	key, err := os.ReadFile(files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, v := range []string{secretSQLPassword, secretSigning, slackfake.BotToken, slackfake.AppToken} {
		texts = append(texts, "x "+v+" y")
		for _, prefix := range []string{"", "a", "ab", "abc"} {
			texts = append(texts, base64.StdEncoding.EncodeToString([]byte(prefix+v+"tail")),
				base64.RawURLEncoding.EncodeToString([]byte(prefix+v)))
		}
	}
	texts = append(texts, string(key))
	for _, text := range texts {
		rec := &recorder{TB: t}
		secrets.check(rec, "probe", []byte(text))
		if rec.errors == 0 {
			t.Errorf("the search misses a secret in %q", text)
		}
	}
	rec := &recorder{TB: t}
	secrets.check(rec, "probe", []byte("an innocent log line: sdbmaint-test team, user sdbmaint, SQLSECRET alone"))
	if rec.errors != 0 {
		t.Errorf("the search flags an innocent line")
	}
}

// recorder counts Errorf calls instead of failing the test.
type recorder struct {
	testing.TB
	errors int
}

func (r *recorder) Errorf(string, ...any) { r.errors++ }
func (r *recorder) Helper()               {}

// Commands that fail because of a wrong password, an unreachable host or a
// host key that does not match say so without the secret they were given;
// so do config check's complaints about a config full of secrets.
func TestSecretsStayOutOfErrors(t *testing.T) {
	t.Parallel()
	w := newSecretsWorld(t, "")
	secrets := standardSecrets(t, w.key)
	run := func(stdin string, args ...string) (int, string) {
		t.Helper()
		var out, errb bytes.Buffer
		env := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: secretsGetenv}
		code := Main(context.Background(), env, args)
		all := out.String() + "\n" + errb.String()
		secrets.check(t, fmt.Sprintf("sdbmaint %s", strings.Join(args, " ")), []byte(all))
		return code, all
	}
	for _, c := range []struct{ cluster, why string }{
		{"badpw", "access denied"}, {"nohost", "connection refused"}, {"badkey", "host key"},
	} {
		for _, json := range []bool{false, true} {
			args := []string{"preflight", "--config", w.config, "--cluster", c.cluster}
			if json {
				args = append(args, "--json")
			}
			code, out := run("", args...)
			if code != 2 || !strings.Contains(strings.ToLower(out), c.why) {
				t.Errorf("%v: exit %d, want 2 and the reason %q:\n%s", args, code, c.why, out)
			}
		}
		// A run whose preflight cannot run blocks; the operator ends it.
		code, out := run("e\n", "run", "--config", w.config, "--cluster", c.cluster, "--yes")
		if !strings.Contains(strings.ToLower(out), c.why) {
			t.Errorf("run on %s: exit %d, the output does not say %q:\n%s", c.cluster, code, c.why, out)
		}
	}
	if code, out := run("", "history", "--config", w.config, "--json"); code != 0 || !strings.Contains(out, "badkey") {
		t.Errorf("history --json: exit %d:\n%s", code, out)
	}
	checkStoreFiles(t, secrets, w.store)

	// config check on broken configs that hold the secrets, inline and
	// from the environment.
	for _, bad := range []struct {
		name, yaml string
		getenv     func(string) string
	}{
		{"inline secrets beside mistakes", fmt.Sprintf(`slack:
  mode: http
  bot_token: %q
  app_token: %q
  signing_secret: %q
  listen: "127.0.0.1:notaport"
  channel: C0OPS
  approvers: [U0A]
clusters:
  - name: prod
    sql: {addr: "10.0.0.1:3306", user: sdbmaint, password: %q, passwd: %q}
    toolbox:
      ssh: {addr: "deploy-1:22", user: ops, key_file: id_ed25519, known_hosts: known_hosts}
    recovery_timeout: soon
`, slackfake.AppToken, slackfake.BotToken, secretSigning, secretSQLPassword, secretWrongPassword), nil},
		{"tokens of the wrong kind from the environment", `slack:
  bot_token: ${SLACK_BOT_TOKEN}
  app_token: ${SLACK_APP_TOKEN}
  channel: C0OPS
  approvers: [U0A]
clusters:
  - name: prod
    sql: {addr: "10.0.0.1:3306", user: sdbmaint, password: "${SDB_PASSWORD}"}
    toolbox: {local: true, sdb_admin: 7}
    stop_parallelism: -1
`, envMap("SLACK_BOT_TOKEN", slackfake.AppToken, "SLACK_APP_TOKEN", slackfake.BotToken, "SDB_PASSWORD", secretSQLPassword)},
		{"a YAML syntax error beside a secret", fmt.Sprintf(`clusters:
  - name: prod
    sql: {addr: "10.0.0.1:3306", user: sdbmaint, password: %q
    toolbox: {local: true}
`, secretSQLPassword), nil},
	} {
		getenv := bad.getenv
		if getenv == nil {
			getenv = envMap()
		}
		code, stdout, stderr := runConfigCheckCmd(t, getenv, "--config", writeConfig(t, bad.yaml))
		if code != 1 || len(stdout+stderr) < 20 {
			t.Errorf("config check (%s): exit %d, want 1 with the problems:\n%s%s", bad.name, code, stdout, stderr)
		}
		secrets.check(t, "config check ("+bad.name+")", []byte(stdout+stderr))
		t.Logf("config check (%s):\n%s%s", bad.name, stdout, stderr)
	}
}
