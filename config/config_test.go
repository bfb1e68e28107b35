package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// env returns a getenv over a fixed map, so tests never read the process
// environment.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

var designEnv = env(
	"SLACK_BOT_TOKEN", "xoxb-111-222-botsecret",
	"SLACK_APP_TOKEN", "xapp-1-A1-appsecret",
	"SDB_PASSWORD", "sdb-pa$$word",
)

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestLoadDesignExample loads the example of DESIGN.md and checks every
// value, defaults included.
func TestLoadDesignExample(t *testing.T) {
	t.Parallel()
	cfg, err := Load("testdata/valid/design.yaml", designEnv)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	keys := abs(t, "testdata/keys")
	sched, err := parseSchedule("CRON_TZ=Europe/Berlin 0 2 * * SUN")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Path:  "testdata/valid/design.yaml",
		Store: Store{Path: abs(t, "testdata/valid/sdbmaint.db")},
		Slack: Slack{
			Mode: SlackSocket, BotToken: "xoxb-111-222-botsecret", AppToken: "xapp-1-A1-appsecret",
			Listen: "127.0.0.1:3000", Channel: "C0123456",
			Approvers: []string{"U0AAAAAAA", "S0BBBBBBB"}, TwoPersonRule: true,
		},
		Verify: Verify{TrustedRoot: filepath.Join(keys, "trusted_root.json"), Identity: DefaultIdentity, Issuer: DefaultIssuer, Signed: SignedDigest},
		Clusters: []Cluster{{
			Name: "prod",
			SQL:  SQL{Addr: "10.0.0.10:3306", User: "sdbmaint", Password: "sdb-pa$$word"},
			Toolbox: Toolbox{
				SSH:      SSH{Addr: "deploy-1:22", User: "ops", KeyFile: filepath.Join(keys, "id_test"), KnownHosts: filepath.Join(keys, "known_hosts")},
				SDBAdmin: "sdb-admin",
			},
			Backup: Backup{To: "/backups", Recent: 24 * time.Hour},
			Packages: []Package{{
				Path:   "/opt/pkgs/singlestoredb-server-8.9.3.tar.gz",
				Bundle: "/opt/pkgs/singlestoredb-server-8.9.3.tar.gz.sig",
			}},
			AutoApprove:     []runbook.PhaseName{runbook.PhaseSnapshot, runbook.PhaseSyncSnapshot},
			RecoveryTimeout: 30 * time.Minute,
			Verify:          Verify{TrustedRoot: filepath.Join(keys, "trusted_root.json"), Identity: DefaultIdentity, Issuer: DefaultIssuer, Signed: SignedDigest},
			Windows: []Window{{
				Spec: "CRON_TZ=Europe/Berlin 0 2 * * SUN", Schedule: sched, Duration: 3 * time.Hour,
				Announce: []time.Duration{24 * time.Hour, time.Hour, 10 * time.Minute}, Channel: "C0123456",
			}},
		}},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load(design.yaml):\n got %#v\nwant %#v", cfg, want)
		for i := range min(len(cfg.Clusters), len(want.Clusters)) {
			if !reflect.DeepEqual(cfg.Clusters[i], want.Clusters[i]) {
				t.Errorf("cluster %d differs:\n got %+v\nwant %+v", i, cfg.Clusters[i], want.Clusters[i])
			}
		}
	}
	if !cfg.Slack.Configured() || cfg.RequireSlack() != nil {
		t.Errorf("slack block present but Configured() = false or RequireSlack() = %v", cfg.RequireSlack())
	}
	next := cfg.Clusters[0].Windows[0].Schedule.Next(time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 3, 8, 1, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("window Next = %v, want %v (02:00 Berlin on Sunday)", next, want)
	}
}

// minimal is the smallest valid file: one cluster whose toolbox is this host.
const minimal = `
clusters:
  - name: dev
    sql: {addr: "127.0.0.1:3306", user: root}
    toolbox: {local: true}
`

func TestDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Parse(strings.NewReader(minimal), env())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Path != "" || cfg.Store.Path != DefaultStorePath || cfg.Store.MySQLDSN != "" {
		t.Errorf("store = %+v, path %q; want the default SQLite file", cfg.Store, cfg.Path)
	}
	if cfg.Slack.Configured() {
		t.Error("no slack block, but Slack.Configured() = true")
	}
	if err := cfg.RequireSlack(); err == nil || runbook.ErrorKind(err) != runbook.Invalid || !strings.Contains(err.Error(), "slack: not configured") {
		t.Errorf("RequireSlack() = %v, want an invalid error saying slack is not configured", err)
	}
	if cfg.Verify != defaultVerify() {
		t.Errorf("verify = %+v, want the defaults", cfg.Verify)
	}
	c := cfg.Clusters[0]
	want := Cluster{
		Name:            "dev",
		SQL:             SQL{Addr: "127.0.0.1:3306", User: "root"},
		Toolbox:         Toolbox{Local: true, SDBAdmin: DefaultSDBAdmin},
		Backup:          Backup{Recent: DefaultBackupRecent},
		RecoveryTimeout: DefaultRecoveryTimeout,
		Verify:          defaultVerify(),
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("cluster:\n got %+v\nwant %+v", c, want)
	}
	if c.AutoApproves(runbook.PhaseSnapshot) {
		t.Error("AutoApproves(snapshot) with no auto_approve")
	}
}

func TestSlackDefaultsAndModes(t *testing.T) {
	t.Parallel()
	socket := `
slack:
  bot_token: xoxb-1
  app_token: xapp-1
  signing_secret: ${UNUSED_IN_SOCKET_MODE}
  approvers: [U0AAAAAAA, W0CCCCCCC, S0BBBBBBB]
` + minimal
	cfg, err := Parse(strings.NewReader(socket), env())
	if err != nil {
		t.Fatalf("Parse socket: %v", err)
	}
	s := cfg.Slack
	if s.Mode != SlackSocket || s.Listen != DefaultSlackListen || !s.TwoPersonRule || s.SigningSecret != "" || s.APIURL != "" {
		t.Errorf("slack = %+v, want socket mode defaults", s)
	}
	if got := s.ApproverUsers(); !reflect.DeepEqual(got, []string{"U0AAAAAAA", "W0CCCCCCC"}) {
		t.Errorf("ApproverUsers = %v", got)
	}
	if got := s.ApproverGroups(); !reflect.DeepEqual(got, []string{"S0BBBBBBB"}) {
		t.Errorf("ApproverGroups = %v", got)
	}

	http := `
slack:
  mode: http
  bot_token: xoxb-1
  signing_secret: ${SIGNING}
  app_token: ${UNUSED_IN_HTTP_MODE}
  listen: ":0"
  api_url: http://127.0.0.1:9999/api/
  channel: "#ops"
  approvers: [U0AAAAAAA]
  two_person_rule: false
` + minimal
	cfg, err = Parse(strings.NewReader(http), env("SIGNING", "8f742231b10e8888abcd99yyyzzz85a5"))
	if err != nil {
		t.Fatalf("Parse http: %v", err)
	}
	s = cfg.Slack
	if s.Mode != SlackHTTP || s.SigningSecret.Reveal() != "8f742231b10e8888abcd99yyyzzz85a5" || s.AppToken != "" ||
		s.Listen != ":0" || s.APIURL != "http://127.0.0.1:9999/api/" || s.Channel != "#ops" || s.TwoPersonRule {
		t.Errorf("slack = %+v", s)
	}
}

func TestClusterSettings(t *testing.T) {
	t.Parallel()
	src := `
store:
  mysql_dsn: ${STORE_DSN}
verify:
  identity: https://example.com/signer
clusters:
  - name: prod
    sql: {addr: "[2001:db8::1]:3306", user: sdbmaint, password: "${PW}"}
    toolbox:
      ssh: {addr: deploy-1, user: ops, key_file: testdata/keys/id_test, known_hosts: testdata/keys/known_hosts}
      sdb_admin: sudo -u memsql sdb-admin
    packages:
      - /opt/pkgs/a.tar.gz
      - {path: /opt/pkgs/b.tar.gz}
    auto_approve: [backup, maintenance, start]
    stop_parallelism: 4
    recovery_timeout: 2h30m
    verify: {signed: file, trusted_root: testdata/keys/trusted_root.json}
    windows:
      - schedule: "@weekly"
        announce: [10m, 2h]
        channel: C0999
      - schedule: TZ=UTC 30 1 * * *
        duration: 45m
        announce: []
  - name: staging_2
    sql: {addr: "db:3307", user: u}
    toolbox: {ssh: {addr: "[::1]", user: ops, key_file: testdata/keys/id_test, known_hosts: testdata/keys/known_hosts}}
`
	cfg, err := Parse(strings.NewReader(src), env("STORE_DSN", "bot:dsnsecret@tcp(store:3306)/sdbmaint", "PW", "pw"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Store.Path != "" || cfg.Store.MySQLDSN.Reveal() != "bot:dsnsecret@tcp(store:3306)/sdbmaint" {
		t.Errorf("store = path %q dsn %q", cfg.Store.Path, cfg.Store.MySQLDSN.Reveal())
	}
	if got := cfg.ClusterNames(); !reflect.DeepEqual(got, []string{"prod", "staging_2"}) {
		t.Errorf("ClusterNames = %v", got)
	}
	prod, ok := cfg.Cluster("prod")
	if !ok || prod != &cfg.Clusters[0] {
		t.Fatalf("Cluster(prod) = %v, %v", prod, ok)
	}
	if _, ok := cfg.Cluster("nope"); ok {
		t.Error("Cluster(nope) found")
	}
	if prod.SQL.Addr != "[2001:db8::1]:3306" || prod.Toolbox.SSH.Addr != "deploy-1:22" || prod.Toolbox.SDBAdmin != "sudo -u memsql sdb-admin" {
		t.Errorf("addresses: sql %q ssh %q sdb_admin %q", prod.SQL.Addr, prod.Toolbox.SSH.Addr, prod.Toolbox.SDBAdmin)
	}
	if want := []Package{{"/opt/pkgs/a.tar.gz", "/opt/pkgs/a.tar.gz.sig"}, {"/opt/pkgs/b.tar.gz", "/opt/pkgs/b.tar.gz.sig"}}; !reflect.DeepEqual(prod.Packages, want) {
		t.Errorf("packages = %v", prod.Packages)
	}
	if !prod.AutoApproves(runbook.PhaseStart) || prod.AutoApproves(runbook.PhaseStop) || prod.AutoApproves(runbook.PhaseSnapshot) {
		t.Errorf("auto_approve = %v", prod.AutoApprove)
	}
	if prod.StopParallelism != 4 || prod.RecoveryTimeout != 150*time.Minute {
		t.Errorf("stop_parallelism %d recovery_timeout %v", prod.StopParallelism, prod.RecoveryTimeout)
	}
	wantVerify := Verify{TrustedRoot: filepath.Clean("testdata/keys/trusted_root.json"), Identity: "https://example.com/signer", Issuer: DefaultIssuer, Signed: SignedFile}
	if prod.Verify != wantVerify {
		t.Errorf("prod verify = %+v, want %+v (top level merged with the override)", prod.Verify, wantVerify)
	}
	if want := (Verify{TrustedRoot: DefaultTrustedRoot, Identity: "https://example.com/signer", Issuer: DefaultIssuer, Signed: SignedDigest}); cfg.Clusters[1].Verify != want {
		t.Errorf("staging verify = %+v, want the top-level block %+v", cfg.Clusters[1].Verify, want)
	}
	w := prod.Windows
	if len(w) != 2 || w[0].Duration != DefaultWindowDuration || !reflect.DeepEqual(w[0].Announce, []time.Duration{2 * time.Hour, 10 * time.Minute}) ||
		w[0].Channel != "C0999" || w[1].Duration != 45*time.Minute || len(w[1].Announce) != 0 || w[1].Channel != "" {
		t.Errorf("windows = %+v", w)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := w[1].Schedule.Next(at); !got.Equal(time.Date(2026, 1, 1, 1, 30, 0, 0, time.UTC)) {
		t.Errorf("TZ=UTC 30 1 * * * next = %v", got)
	}
	if got := cfg.Clusters[1].Toolbox.SSH.Addr; got != "[::1]:22" {
		t.Errorf("bracketed IPv6 ssh addr = %q, want [::1]:22", got)
	}
}

// TestRelativePaths loads a config from a directory that is not the
// working directory: its relative key paths and the store resolve beside it.
func TestRelativePaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"id_ed25519", "known_hosts"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	src := `
store: {path: state/runs.db}
clusters:
  - name: sim
    sql: {addr: "127.0.0.1:3306", user: root}
    toolbox:
      ssh: {addr: "127.0.0.1:2222", user: ops, key_file: id_ed25519, known_hosts: ./known_hosts}
`
	path := filepath.Join(dir, "sdbmaint.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, env())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	ssh := cfg.Clusters[0].Toolbox.SSH
	if ssh.KeyFile != filepath.Join(dir, "id_ed25519") || ssh.KnownHosts != filepath.Join(dir, "known_hosts") {
		t.Errorf("key paths = %q, %q; want them beside the config in %s", ssh.KeyFile, ssh.KnownHosts, dir)
	}
	if cfg.Store.Path != filepath.Join(dir, "state", "runs.db") {
		t.Errorf("store path = %q", cfg.Store.Path)
	}

	// Parsed from a reader, the same file resolves against the working
	// directory, where the key files are not.
	_, err = Parse(strings.NewReader(src), env())
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("Parse from another directory: %v; want 3 errors (two files, the store directory)", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), env())
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a not-exist error", err)
	}
}

// TestValidFiles loads every file in testdata/valid.
func TestValidFiles(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	if len(files) < 3 {
		t.Fatalf("only %d valid test files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			if _, err := Load(f, designEnv); err != nil {
				t.Errorf("Load(%s):\n%v", f, err)
			}
		})
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	t.Parallel()
	cfg, err := Load("testdata/valid/anchors.yaml", designEnv)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	eu1, _ := cfg.Cluster("eu-1")
	eu2, _ := cfg.Cluster("eu-2")
	if eu1.RecoveryTimeout != time.Hour || eu2.RecoveryTimeout != 2*time.Hour {
		t.Errorf("recovery_timeout = %v, %v; want the merged 1h and the overriding 2h", eu1.RecoveryTimeout, eu2.RecoveryTimeout)
	}
	if eu1.StopParallelism != 8 || eu2.StopParallelism != 8 || len(eu2.AutoApprove) != 3 {
		t.Errorf("merged defaults missing: %+v", eu2)
	}
	if eu1.Toolbox.SSH.Addr != "toolbox.internal:22" || eu2.Toolbox.SSH.Addr != "toolbox-2.internal:22" || eu2.Toolbox.SSH.User != "ops" {
		t.Errorf("ssh = %+v / %+v", eu1.Toolbox.SSH, eu2.Toolbox.SSH)
	}
}
