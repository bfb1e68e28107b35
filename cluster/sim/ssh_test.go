package sim_test

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

type listed struct {
	Nodes []struct {
		MemsqlID          string `json:"memsqlId"`
		Role              string `json:"role"`
		Host              string `json:"host"`
		Port              int    `json:"port"`
		ProcessState      string `json:"processState"`
		IsConnectable     bool   `json:"isConnectable"`
		Version           string `json:"version"`
		RecoveryState     string `json:"recoveryState"`
		AvailabilityGroup int    `json:"availabilityGroup"`
		BindAddress       string `json:"bindAddress"`
		NodeID            string `json:"nodeID"`
	} `json:"nodes"`
}

func listNodes(t *testing.T, cl *ssh.Client) listed {
	t.Helper()
	var l listed
	dec := json.NewDecoder(strings.NewReader(admin(t, cl, "list-nodes --json")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("list-nodes --json: %v", err)
	}
	return l
}

func TestListNodesOverSSH(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{})
	cl := sshClient(t, c)
	l := listNodes(t, cl)
	if len(l.Nodes) != 7 {
		t.Fatalf("list-nodes: %d nodes, want 7", len(l.Nodes))
	}
	roles := map[string]int{}
	for _, n := range l.Nodes {
		roles[n.Role]++
		want := node(t, c.State(), n.MemsqlID)
		if n.Port != want.Port || n.Host != "127.0.0.1" || n.ProcessState != "Running" || !n.IsConnectable ||
			n.RecoveryState != "Online" || n.NodeID == "" || n.Version == "" || n.AvailabilityGroup != want.AvailabilityGroup {
			t.Errorf("node %+v, state %+v", n, want)
		}
		if len(n.MemsqlID) != 40 || strings.ToUpper(n.MemsqlID) != n.MemsqlID {
			t.Errorf("memsqlId %q is not 40 upper-case hex characters", n.MemsqlID)
		}
	}
	if roles["Master"] != 1 || roles["Aggregator"] != 2 || roles["Leaf"] != 4 {
		t.Errorf("roles = %v", roles)
	}
	if l.Nodes[0].MemsqlID != c.Master() {
		t.Errorf("first node %s, master %s", l.Nodes[0].MemsqlID, c.Master())
	}
	table := runSSH(t, cl, "/opt/toolbox/sdb-admin list-nodes")
	if table.code != 0 || !strings.Contains(table.stdout, "| MemSQL ID ") || !strings.Contains(table.stdout, c.Master()[:10]) {
		t.Errorf("list-nodes table: %+v", table)
	}
	if e := c.Log()[0]; e.Via != "ssh" || e.Text != "sdb-admin list-nodes --json" || e.Node != "toolbox" {
		t.Errorf("log entry %+v", e)
	}
}

func TestSSHCommandErrors(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{Leaves: 2, Aggregators: -1})
	cl := sshClient(t, c)
	for _, tc := range []struct {
		cmd    string
		code   int
		stderr string
	}{
		{"rm -rf /", 127, "rm: command not found"},
		{"sdb-admin upgrade-cluster", 1, `unknown command "upgrade-cluster"`},
		{"sdb-admin stop-node --memsql-id " + c.Leaves()[0], 1, "--yes"},
		{"sdb-admin stop-node --yes", 1, "--memsql-id"},
		{"sdb-admin stop-node --memsql-id ABCDEF --yes", 1, "no node found with MemSQL ID ABCDEF"},
		{"sdb-admin list-nodes --frobnicate", 1, "unknown flag: --frobnicate"},
		{"sdb-admin list-nodes; reboot", 2, "not supported"},
	} {
		r := runSSH(t, cl, tc.cmd)
		if r.err != nil || r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("%s: code %d err %v stderr %q, want %d and %q", tc.cmd, r.code, r.err, r.stderr, tc.code, tc.stderr)
		}
	}
	if s := c.State(); s.Nodes[1].Process != "running" {
		t.Error("a refused command stopped a node")
	}
}

func TestSSHRefusesOtherKeysAndShells(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{Leaves: 2, Aggregators: -1})
	f, err := c.Files(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(f.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi, err)
	}
	raw, err := os.ReadFile(f.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(raw)
	if err != nil {
		t.Fatalf("key file does not parse: %v", err)
	}
	hostKeys, err := knownhosts.New(f.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := ssh.NewSignerFromKey(other)
	if _, err := ssh.Dial("tcp", c.SSHAddr(), &ssh.ClientConfig{User: f.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(otherSigner)},
		HostKeyCallback: hostKeys, Timeout: 5 * time.Second}); err == nil {
		t.Error("another key was accepted")
	}
	if _, err := ssh.Dial("tcp", c.SSHAddr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys, Timeout: 5 * time.Second}); err == nil {
		t.Error("another user was accepted")
	}
	cl, err := ssh.Dial("tcp", c.SSHAddr(), &ssh.ClientConfig{User: f.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("the written key file and known_hosts do not log in: %v", err)
	}
	defer cl.Close()
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Shell(); err == nil {
		t.Error("an interactive shell was granted")
	}
}

// stop-node streams its progress while the node stops: the first line
// arrives while the node is still running.
func TestStopStartStreamOutputAndChangeState(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{Leaves: 2, Aggregators: -1, StopTime: time.Second, RecoveryTime: 20 * time.Millisecond})
	cl := sshClient(t, c)
	leaf := c.Leaves()[0]
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stdout, _ := s.StdoutPipe()
	if err := s.Start("sdb-admin stop-node --memsql-id " + leaf + " --yes"); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatal("no output")
	}
	if got := node(t, c.State(), leaf).Process; got != "running" {
		t.Errorf("node %s before the command finished; output is not streamed", got)
	}
	var all []string
	for lines.Scan() {
		all = append(all, lines.Text())
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("stop-node: %v", err)
	}
	if len(all) < 4 || !strings.Contains(all[len(all)-1], "✓ Successfully stopped node "+leaf) {
		t.Errorf("stop-node output:\n%s", strings.Join(all, "\n"))
	}
	st := c.State()
	if n := node(t, st, leaf); n.Process != "stopped" || n.State != "offline" || n.Recovery != "Offline" {
		t.Errorf("after stop: %+v", n)
	}
	if refuses(addrOf(t, c, leaf)) != true {
		t.Error("a stopped leaf's port accepts connections")
	}
	for _, n := range listNodes(t, cl).Nodes {
		if n.MemsqlID == leaf && (n.ProcessState != "Stopped" || n.IsConnectable) {
			t.Errorf("list-nodes after stop: %+v", n)
		}
	}
	// stopping a stopped node is a no-op that says so
	if out := admin(t, cl, "stop-node --memsql-id "+leaf+" --yes"); !strings.Contains(out, "already stopped") {
		t.Errorf("second stop: %q", out)
	}

	startNode(t, cl, leaf)
	if refuses(addrOf(t, c, leaf)) {
		t.Error("a started leaf refuses connections on its port")
	}
	waitState(t, c, "leaf recovered", func(s sim.State) bool { return node(t, s, leaf).Recovery == "Online" })
	for _, n := range listNodes(t, cl).Nodes {
		if n.MemsqlID == leaf && (n.ProcessState != "Running" || n.RecoveryState != "Online") {
			t.Errorf("list-nodes after start: %+v", n)
		}
	}
	var ssh []string
	for _, e := range c.Log() {
		if e.Via == "ssh" && e.Node == leaf {
			ssh = append(ssh, e.Text)
		}
	}
	if len(ssh) != 3 {
		t.Errorf("ssh log for the leaf: %q", ssh)
	}
}

func TestSSHDropFault(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{Leaves: 2, Aggregators: -1})
	cl := sshClient(t, c)
	if err := c.Inject("ssh-drop"); err != nil {
		t.Fatal(err)
	}
	r := runSSH(t, cl, "sdb-admin list-nodes --json")
	var missing *ssh.ExitMissingError
	if r.err == nil || r.code != 0 || !(errors.As(r.err, &missing) || errors.Is(r.err, io.EOF) || strings.Contains(r.err.Error(), "EOF")) {
		t.Fatalf("dropped session: err %v code %d", r.err, r.code)
	}
	if r.stdout == "" || json.Valid([]byte(r.stdout)) {
		t.Errorf("want partial output before the drop, got %q", r.stdout)
	}
	if f := c.State().Faults; len(f) != 0 {
		t.Errorf("ssh-drop still active after one command: %v", f)
	}
	// the drop took the connection; a new one works
	listNodes(t, sshClient(t, c))

	// a dropped stop-node does not stop the node
	if err := c.Inject("ssh-drop"); err != nil {
		t.Fatal(err)
	}
	cl = sshClient(t, c)
	leaf := c.Leaves()[1]
	if r := runSSH(t, cl, "sdb-admin stop-node --memsql-id "+leaf+" --yes"); r.err == nil {
		t.Fatalf("stop-node with ssh-drop: code %d, want a dropped session", r.code)
	}
	if n := node(t, c.State(), leaf); n.Process != "running" {
		t.Errorf("dropped stop-node stopped the node: %+v", n)
	}
	if e := c.Log()[len(c.Log())-1]; e.Error != "session dropped" {
		t.Errorf("log entry %+v", e)
	}
}
