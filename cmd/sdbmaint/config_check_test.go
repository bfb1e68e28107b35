package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/config"
)

// writeConfig writes yaml as sdbmaint.yaml in a fresh directory that also
// holds a key file and a known_hosts file, and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"id_ed25519":    "placeholder key; config check only reads it\n",
		"known_hosts":   "placeholder\n",
		"sdbmaint.yaml": yaml,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "sdbmaint.yaml")
}

func runConfigCheckCmd(t *testing.T, getenv func(string) string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Getenv: getenv}
	code = Main(context.Background(), env, append([]string{"config", "check"}, args...))
	return code, out.String(), errb.String()
}

func envMap(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

const twoClusters = `
slack:
  bot_token: ${SLACK_BOT_TOKEN}
  app_token: ${SLACK_APP_TOKEN}
  channel: C0123456
  approvers: [U0AAAAAAA]
clusters:
  - name: prod
    sql: {addr: "10.0.0.10:3306", user: sdbmaint, password: "${SDB_PASSWORD}"}
    toolbox:
      ssh: {addr: deploy-1, user: ops, key_file: id_ed25519, known_hosts: known_hosts}
  - name: staging
    sql: {addr: "10.0.1.10:3306", user: sdbmaint, password: "${SDB_PASSWORD}"}
    toolbox: {local: true}
`

var secretEnv = envMap("SLACK_BOT_TOKEN", "xoxb-TOPSECRETBOT", "SLACK_APP_TOKEN", "xapp-TOPSECRETAPP", "SDB_PASSWORD", "TOPSECRETSQL")

func TestConfigCheckOK(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, twoClusters)
	code, out, errs := runConfigCheckCmd(t, secretEnv, "--config", path)
	if code != 0 || out != "OK: 2 clusters (prod, staging)\n" || errs != "" {
		t.Errorf("config check: exit %d\nstdout %q\nstderr %q", code, out, errs)
	}

	// Terminal-only: no slack block is fine, and it says what that means.
	path = writeConfig(t, "clusters: [{name: dev, sql: {addr: \"127.0.0.1:3306\", user: root}, toolbox: {local: true}}]\n")
	code, out, _ = runConfigCheckCmd(t, envMap(), "--config="+path)
	if code != 0 || !strings.HasPrefix(out, "OK: 1 cluster (dev)\n") || !strings.Contains(out, "serve will refuse") {
		t.Errorf("config check without slack: exit %d, stdout %q", code, out)
	}
}

// TestConfigCheckErrors checks that every problem is printed, one per line,
// with its field path and line, and that no secret is echoed.
func TestConfigCheckErrors(t *testing.T) {
	t.Parallel()
	bad := strings.NewReplacer(
		`addr: "10.0.0.10:3306"`, `addr: 10.0.0.10`,
		"known_hosts: known_hosts", "known_hosts: missing_known_hosts",
		"  - name: staging", "  - name: staging\n    auto_approve: [stop]",
		"toolbox: {local: true}", "toolbox: {local: true, sdbadmin: x}",
	).Replace(twoClusters)
	path := writeConfig(t, bad)
	code, out, errs := runConfigCheckCmd(t, envMap("SLACK_BOT_TOKEN", "xoxp-TOPSECRETUSERTOKEN", "SDB_PASSWORD", "TOPSECRETSQL"), "--config", path)
	dir := filepath.Dir(path)
	want := strings.Join([]string{
		"slack.bot_token: must be a bot token (it starts with xoxb-) (line 3)",
		"slack.app_token: environment variable SLACK_APP_TOKEN is not set (or empty) (line 4)",
		"clusters[0].sql.addr: missing port (write host:port, such as 10.0.0.10:3306) (line 9)",
		"clusters[0].toolbox.ssh.known_hosts: file not found: " + filepath.Join(dir, "missing_known_hosts") + " (line 11)",
		"clusters[1].auto_approve[0]: stop can never be approved automatically: a person must decide to take the cluster down (line 13)",
		"clusters[1].toolbox.sdbadmin: unknown key (did you mean sdb_admin?) (line 15)",
	}, "\n") + "\n"
	if code != 1 || out != want {
		t.Errorf("config check: exit %d\nstdout:\n%s\nwant:\n%s", code, out, want)
	}
	if !strings.Contains(errs, path+": 6 problems") {
		t.Errorf("stderr %q, want a count of the problems", errs)
	}
	if strings.Contains(out+errs, "TOPSECRET") {
		t.Errorf("output repeats a secret:\n%s%s", out, errs)
	}
}

func TestConfigCheckUsage(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, twoClusters)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "--config is required"},
		{[]string{"--config", path, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--colour"}, 2, "flag provided but not defined: -colour"},
		{[]string{"-h"}, 0, "usage: sdbmaint config check --config FILE"},
		{[]string{"--config", filepath.Join(filepath.Dir(path), "absent.yaml")}, 1, "absent.yaml: no such file or directory"},
	}
	for _, c := range cases {
		code, out, errs := runConfigCheckCmd(t, secretEnv, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("config check %v: exit %d, stderr %q; want %d and %q (stdout %q)", c.args, code, errs, c.code, c.want, out)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	env := &Env{Getenv: secretEnv}
	if _, err := loadConfig(env, ""); !errors.Is(err, errNoConfig) {
		t.Errorf("loadConfig(\"\") = %v, want errNoConfig", err)
	}
	cfg, err := loadConfig(env, writeConfig(t, twoClusters))
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if c, err := findCluster(cfg, "staging"); err != nil || c.Name != "staging" {
		t.Errorf("findCluster(staging) = %v, %v", c, err)
	}
	if _, err := findCluster(cfg, "qa"); err == nil || !strings.Contains(err.Error(), `no cluster "qa" in `+cfg.Path+" (clusters: prod, staging)") {
		t.Errorf("findCluster(qa) = %v", err)
	}

	path := writeConfig(t, strings.Replace(twoClusters, `addr: "10.0.0.10:3306"`, `addr: 10.0.0.10`, 1))
	_, err = loadConfig(env, path)
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("loadConfig(invalid) = %v, want config.Errors inside", err)
	}
	want := "config " + path + " is not valid (1 problem):\n  clusters[0].sql.addr: missing port"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("loadConfig(invalid) error:\n%v\nwant it to start with\n%s", err, want)
	}
}

// TestConfigCheckSimConfig checks the config that sdbmaint sim writes: the
// contract between the simulated cluster and every other command.
func TestConfigCheckSimConfig(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := sim.Start(ctx, sim.Options{})
	if err != nil {
		t.Fatalf("start sim: %v", err)
	}
	defer c.Close()
	path := filepath.Join(t.TempDir(), "sim.yaml")
	if err := c.WriteConfig(path); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runConfigCheckCmd(t, envMap(), "--config", path)
	if code != 0 || !strings.HasPrefix(out, "OK: 1 cluster (sim)\n") {
		t.Fatalf("config check of the sim's config: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	cfg, err := loadConfig(&Env{Getenv: envMap()}, path)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := cfg.Cluster("sim")
	if cl.SQL.Addr != c.MySQLAddr() || cl.Toolbox.SSH.Addr != c.SSHAddr() || cl.SQL.Password.Reveal() == "" {
		t.Errorf("sim cluster = %+v; want the sim's addresses %s and %s", cl, c.MySQLAddr(), c.SSHAddr())
	}
}
