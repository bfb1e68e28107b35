// Package runbooktest runs the runbook against a simulated cluster through
// the real adapters (MySQL protocol to the sim's MA, sdb-admin over real
// SSH to its toolbox host), for scenario tests of the engine, the terminal
// and the Slack bot. Nothing in it replaces runbook's own code.
package runbooktest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster"
	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
)

// Options shape a simulated cluster and the runbook settings for it.
type Options struct {
	Sim             sim.Options
	Name            string // the cluster's name; default "sim"
	BackupTo        string // default "" (the backup phase is skipped)
	AutoApprove     []runbook.PhaseName
	Parallelism     int           // leaves at a time; 0 = all
	RecoveryTimeout time.Duration // default 10s
	PollInterval    time.Duration // default 5ms
	ConfirmTimeout  time.Duration // default 5s
	// SSHSessions is how many sdb-admin commands run at once over the one
	// SSH connection; default 64 so that a tier of leaves is not queued.
	SSHSessions int
}

// Sim is a running simulated cluster and the runbook.Cluster that reaches
// it through package cluster's adapters.
type Sim struct {
	Sim     *sim.Cluster
	Cluster *runbook.Cluster
	SQL     *cluster.Client
	Admin   *cluster.SDBAdmin
}

// StartSim starts a simulated cluster and wires the adapters to it. Both
// are closed when the test ends.
func StartSim(t testing.TB, opts Options) *Sim {
	t.Helper()
	c, err := sim.Start(context.Background(), opts.Sim)
	if err != nil {
		t.Fatalf("start sim: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	files, err := c.Files(t.TempDir())
	if err != nil {
		t.Fatalf("sim files: %v", err)
	}
	user, pass := opts.Sim.User, opts.Sim.Password
	if user == "" {
		user = sim.DefaultUser
	}
	if pass == "" {
		pass = sim.DefaultPassword
	}
	sqlc, err := cluster.NewClient(cluster.SQLOptions{Addr: c.MySQLAddr(), User: user, Password: pass,
		ConnectTimeout: 2 * time.Second, StatementTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("sql client: %v", err)
	}
	t.Cleanup(func() { sqlc.Close() })
	sessions := opts.SSHSessions
	if sessions == 0 {
		sessions = 64
	}
	runner, err := cluster.NewSSHRunner(cluster.SSHOptions{Addr: c.SSHAddr(), User: files.User, KeyFile: files.KeyFile,
		KnownHostsFile: files.KnownHosts, DialTimeout: 2 * time.Second, MaxSessions: sessions})
	if err != nil {
		t.Fatalf("ssh runner: %v", err)
	}
	t.Cleanup(func() { runner.Close() })
	name := opts.Name
	if name == "" {
		name = "sim"
	}
	admin := &cluster.SDBAdmin{Runner: runner}
	rc := &runbook.Cluster{
		Name:            name,
		Preflight:       cluster.NewPreflighter(cluster.PreflightOptions{Cluster: name, SQL: sqlc, Admin: admin, BackupRecent: 24 * time.Hour}),
		DB:              sqlc,
		Detection:       sqlc,
		Ping:            sqlc,
		Nodes:           admin,
		BackupTo:        opts.BackupTo,
		AutoApprove:     opts.AutoApprove,
		StopParallelism: opts.Parallelism,
		RecoveryTimeout: or(opts.RecoveryTimeout, 10*time.Second),
		PollInterval:    or(opts.PollInterval, 5*time.Millisecond),
		ConfirmTimeout:  or(opts.ConfirmTimeout, 5*time.Second),
	}
	return &Sim{Sim: c, Cluster: rc, SQL: sqlc, Admin: admin}
}

func or(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Source is a fixed set of clusters by name: a runbook.ClusterSource.
type Source map[string]*runbook.Cluster

var _ runbook.ClusterSource = Source(nil)

// Cluster returns the named cluster, or an Invalid error listing the names.
func (s Source) Cluster(_ context.Context, name string) (*runbook.Cluster, error) {
	if c, ok := s[name]; ok {
		return c, nil
	}
	return nil, runbook.Errorf(runbook.Invalid, "no cluster %q (clusters: %s)", name, strings.Join(s.Names(), ", "))
}

// Names returns the cluster names, sorted.
func (s Source) Names() []string {
	var out []string
	for n := range s {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Source returns a ClusterSource with this one cluster.
func (s *Sim) Source() Source { return Source{s.Cluster.Name: s.Cluster} }

// NodeID returns the ID of the first node of role ("master", "aggregator",
// "leaf") as the sim names it, and fails the test if there is none.
func (s *Sim) NodeID(t testing.TB, role string, i int) string {
	t.Helper()
	n := 0
	for _, node := range s.Sim.State().Nodes {
		if node.Role == role {
			if n == i {
				return node.ID
			}
			n++
		}
	}
	t.Fatalf("the sim has no %s number %d", role, i)
	return ""
}

// Roles maps every node ID to its role in the sim.
func (s *Sim) Roles() map[string]string {
	out := map[string]string{}
	for _, n := range s.Sim.State().Nodes {
		out[n.ID] = n.Role
	}
	return out
}

// AllOnline reports whether every node runs and every leaf is recovered.
func AllOnline(st sim.State) bool {
	for _, n := range st.Nodes {
		if n.Process != "running" || n.State != "online" {
			return false
		}
	}
	return true
}

// NodeCommands returns the stop-node and start-node commands the toolbox
// received, in order, as "stop ROLE ID" / "start ROLE ID" (failed ones
// marked with " (failed: ...)").
func (s *Sim) NodeCommands() []string {
	roles := s.Roles()
	var out []string
	for _, e := range s.Sim.Log() {
		if e.Via != "ssh" {
			continue
		}
		verb := ""
		switch {
		case strings.Contains(e.Text, " stop-node "):
			verb = "stop"
		case strings.Contains(e.Text, " start-node "):
			verb = "start"
		default:
			continue
		}
		line := fmt.Sprintf("%s %s %s", verb, roles[e.Node], e.Node)
		if e.Error != "" {
			line += " (failed: " + e.Error + ")"
		}
		out = append(out, line)
	}
	return out
}

// Await reads events from sub until cond holds for one and returns it. It
// fails the test after timeout, naming what it waited for and the last
// event seen.
func Await(t testing.TB, sub *runbook.Subscription, timeout time.Duration, what string, cond func(runbook.Event) bool) runbook.Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var last runbook.Event
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				t.Fatalf("waiting for %s: subscription closed", what)
			}
			last = ev
			if cond(ev) {
				return ev
			}
		case <-deadline.C:
			desc := "none"
			if last.Run != nil {
				desc = fmt.Sprintf("%s at %s (run %s, phase %s)", last.Kind, last.At.Format(time.RFC3339Nano), last.Run.Status, last.Run.Current)
				if p := last.Run.CurrentPhase(); p != nil {
					desc += " " + string(p.Status)
				}
			}
			t.Fatalf("waiting for %s: nothing after %s; last event: %s", what, timeout, desc)
		}
	}
}

// Waiting matches the event that says the run waits for a decision on
// phase (any phase when phase is ""). Other events of the same moment carry
// the same run, so only EventGateWaiting is matched.
func Waiting(phase runbook.PhaseName) func(runbook.Event) bool {
	return func(ev runbook.Event) bool {
		return ev.Kind == runbook.EventGateWaiting && ev.Run.Waiting() && (phase == "" || ev.Run.Current == phase)
	}
}

// Finished matches the event that ends the run.
func Finished(ev runbook.Event) bool { return ev.Kind == runbook.EventRunFinished }
