package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/config"
	"github.com/sdbmaint/sdbmaint/runbook"
)

// preflightSim starts a simulated cluster and writes its config (cluster
// "sim", key files beside it); it returns the cluster and the config path.
func preflightSim(t *testing.T, opts sim.Options) (*sim.Cluster, string) {
	t.Helper()
	c, err := sim.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	path := filepath.Join(t.TempDir(), "sdbmaint.yaml")
	if err := c.WriteConfig(path); err != nil {
		t.Fatal(err)
	}
	return c, path
}

func runPreflightCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = Main(ctx, env, append([]string{"preflight"}, args...))
	return code, out.String(), errb.String()
}

func TestPreflightCommandPasses(t *testing.T) {
	t.Parallel()
	_, cfg := preflightSim(t, sim.Options{})
	code, out, errOut := runPreflightCmd(t, "--config", cfg, "--cluster", "sim", "--json")
	if code != 0 {
		t.Fatalf("exit %d; stderr %s; stdout %s", code, errOut, out)
	}
	var got struct {
		Cluster string `json:"cluster"`
		OK      bool   `json:"ok"`
		Checks  []struct {
			Name, Status, Detail string
		} `json:"checks"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	var names []string
	for _, c := range got.Checks {
		names = append(names, c.Name)
		if c.Status != "pass" || c.Detail == "" {
			t.Errorf("%+v", c)
		}
	}
	want := "leaves_online aggregators_online no_orphan_partitions nodes_match_toolbox restore_redundancy_plan rebalance_plan recent_backup"
	if got.Cluster != "sim" || !got.OK || strings.Join(names, " ") != want {
		t.Errorf("got %+v", got)
	}

	// The table, with the cluster named by default when the config has one.
	code, out, _ = runPreflightCmd(t, "--config", cfg)
	if code != 0 || !strings.Contains(out, "leaves_online") || !strings.Contains(out, "OK: every check passes") {
		t.Errorf("exit %d, table:\n%s", code, out)
	}
}

func TestPreflightCommandBlockingFailureExits1(t *testing.T) {
	t.Parallel()
	c, cfg := preflightSim(t, sim.Options{})
	if err := c.Inject("aggregator-offline:" + c.Aggregators()[1]); err != nil {
		t.Fatal(err)
	}
	if err := c.Inject("rebalance-pending:web"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runPreflightCmd(t, "--config", cfg, "--cluster", "sim")
	if code != 1 {
		t.Fatalf("exit %d; stderr %s", code, errOut)
	}
	for _, want := range []string{"aggregators_online", "FAIL", "is offline", "rebalance_plan", "WARN",
		"BLOCKED: 1 blocking check(s) failed: aggregators_online"} {
		if !strings.Contains(out, want) {
			t.Errorf("table does not show %q:\n%s", want, out)
		}
	}
}

// Exit 2 is "could not decide", with the reason on stderr and nothing on
// stdout.
func TestPreflightCommandCouldNotRunExits2(t *testing.T) {
	t.Parallel()
	t.Run("host key changed", func(t *testing.T) {
		t.Parallel()
		c, cfg := preflightSim(t, sim.Options{})
		// known_hosts names another key for the toolbox host.
		other, err := ssh.NewSignerFromKey(mustKey(t))
		if err != nil {
			t.Fatal(err)
		}
		line := knownhosts.Line([]string{knownhosts.Normalize(c.SSHAddr())}, other.PublicKey()) + "\n"
		if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), sim.KnownHostsName), []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runPreflightCmd(t, "--config", cfg, "--cluster", "sim", "--json")
		if code != 2 || out != "" || !strings.Contains(errOut, "HOST KEY CHANGED") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("unknown host key", func(t *testing.T) {
		t.Parallel()
		_, cfg := preflightSim(t, sim.Options{})
		if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), sim.KnownHostsName), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runPreflightCmd(t, "--config", cfg)
		if code != 2 || !strings.Contains(errOut, "is not in") || !strings.Contains(errOut, "ssh-keyscan") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		c, cfg := preflightSim(t, sim.Options{})
		c.Close()
		code, out, errOut := runPreflightCmd(t, "--config", cfg, "--cluster", "sim")
		if code != 2 || out != "" || !strings.Contains(errOut, "connection refused") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("usage and config", func(t *testing.T) {
		t.Parallel()
		_, cfg := preflightSim(t, sim.Options{})
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"--cluster", "sim"}, "--config is required"},
			{[]string{"--config", cfg, "--cluster", "prod"}, `no cluster "prod"`},
			{[]string{"--config", filepath.Join(t.TempDir(), "nope.yaml")}, "nope.yaml"},
			{[]string{"--config", cfg, "extra"}, `unexpected argument "extra"`},
			{[]string{"--bogus"}, "flag provided but not defined"},
		} {
			code, _, errOut := runPreflightCmd(t, tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tt.args, code, errOut, tt.want)
			}
		}
	})
}

func mustKey(t *testing.T) any {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// The config's cluster source builds a cluster's adapters once and hands
// the engine the same ones every time.
func TestClusterSourceWiresTheSim(t *testing.T) {
	t.Parallel()
	c, path := preflightSim(t, sim.Options{})
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	src := newClusterSource(cfg, nil)
	defer src.Close()
	ctx := context.Background()
	rc, err := src.Cluster(ctx, "sim")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := src.Cluster(ctx, "sim"); again != rc {
		t.Error("a second lookup built new adapters")
	}
	if rc.Name != "sim" || rc.BackupTo != "/backups" || rc.Preflight == nil || rc.DB == nil || rc.Detection == nil || rc.Ping == nil || rc.Nodes == nil {
		t.Errorf("cluster %+v", rc)
	}
	rep, err := rc.Preflight.Preflight(ctx)
	if err != nil || !rep.OK {
		t.Fatalf("preflight: %v %+v", err, rep)
	}
	nodes, err := rc.Nodes.ListNodes(ctx)
	if err != nil || len(nodes) != len(c.State().Nodes) {
		t.Errorf("list-nodes: %v, %d nodes", err, len(nodes))
	}
	if err := rc.Ping.Ping(ctx); err != nil {
		t.Error(err)
	}
	_, err = src.Cluster(ctx, "prod")
	if runbook.ErrorKind(err) != runbook.Invalid || !strings.Contains(err.Error(), `no cluster "prod" (clusters: sim)`) {
		t.Errorf("unknown cluster: %v", err)
	}
	if !slices.Equal(src.Names(), []string{"sim"}) {
		t.Errorf("names %q", src.Names())
	}
}
