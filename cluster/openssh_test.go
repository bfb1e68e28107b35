//go:build linux

package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// These tests run the SSH runner and SDBAdmin against a real OpenSSH
// server: a throwaway sshd on a 127.0.0.1 port with its own host key, one
// authorized client key, and testdata/openssh/sdb-admin standing in for
// sdb-admin. .ci/run installs openssh-server when it is missing.

const sshdPath = "/usr/sbin/sshd"

// The nodes the sdb-admin stand-in starts with.
const (
	osMaster = "A1A1A1A1A1A1A1A1"
	osLeaf1  = "B1B1B1B1B1B1B1B1"
	osLeaf2  = "B2B2B2B2B2B2B2B2"
	osLeaf3  = "B3B3B3B3B3B3B3B3"
	osLeaf4  = "B4B4B4B4B4B4B4B4"
)

var osLeaves = []string{osLeaf1, osLeaf2, osLeaf3, osLeaf4}

// openSSH is one running sshd and the files a client needs for it.
type openSSH struct {
	addr       string
	user       string
	keyFile    string // the authorized client key
	knownHosts string // lists the host key for addr
	admin      string // absolute path of the sdb-admin stand-in
	state      string // its state directory
	hostKey    ssh.PublicKey

	cmd    *exec.Cmd
	exited chan struct{} // closed when sshd exits
	log    *syncBuffer
}

// syncBuffer is sshd's log, written by one goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startOpenSSH(t *testing.T) *openSSH {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		t.Skipf("OpenSSH server not installed (%s: %v); .ci/run installs openssh-server", sshdPath, err)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &openSSH{user: me.Username, state: filepath.Join(dir, "toolbox")}

	// The host key and the client key, in OpenSSH's own format.
	hostPub := writeKey(t, filepath.Join(dir, "ssh_host_ed25519_key"))
	s.hostKey = hostPub
	s.keyFile = filepath.Join(dir, "id_ed25519")
	clientPub := writeKey(t, s.keyFile)
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		t.Fatal(err)
	}

	// The sdb-admin stand-in lives in its own directory with its state.
	if err := os.Mkdir(s.state, 0o755); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "openssh", "sdb-admin"))
	if err != nil {
		t.Fatal(err)
	}
	s.admin = filepath.Join(s.state, "sdb-admin")
	if err := os.WriteFile(s.admin, script, 0o755); err != nil {
		t.Fatal(err)
	}
	nodes := fmt.Sprintf("%s Master 3306 0 Running\n", osMaster)
	for i, id := range osLeaves {
		nodes += fmt.Sprintf("%s Leaf %d %d Running\n", id, 3307+i, 1+i%2)
	}
	if err := os.WriteFile(filepath.Join(s.state, "nodes"), []byte(nodes), 0o644); err != nil {
		t.Fatal(err)
	}

	// sshd as root needs its privilege separation directory.
	if os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// A free port can be taken by someone else before sshd binds it: try
	// a few.
	for attempt := 1; ; attempt++ {
		err := s.start(t, dir, authorized)
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(s.log.String(), "Bind to port") {
			t.Fatalf("sshd did not start: %v\nsshd log:\n%s", err, s.log)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.log)
		}
	})
	s.knownHosts = filepath.Join(dir, "known_hosts")
	s.writeKnownHosts(t, s.knownHosts, hostPub)
	return s
}

// start runs sshd on a free port and waits until it answers with its
// banner.
func (s *openSSH) start(t *testing.T, dir, authorized string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "sshd_config")
	conf := strings.Join([]string{
		"ListenAddress " + s.addr,
		"HostKey " + filepath.Join(dir, "ssh_host_ed25519_key"),
		"AuthorizedKeysFile " + authorized,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AllowUsers " + s.user,
		"StrictModes no",
		"UsePAM no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"AllowTcpForwarding no",
		"X11Forwarding no",
		"PrintMotd no",
		"LogLevel VERBOSE",
		"",
	}, "\n")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd re-executes itself, so it must be started by its absolute path.
	s.cmd = exec.Command(sshdPath, "-D", "-e", "-f", cfg)
	s.log = &syncBuffer{}
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.killAll)
	return s.waitReady(10 * time.Second)
}

// waitReady polls the port until sshd answers with an OpenSSH banner, sshd
// exits, or the deadline passes.
func (s *openSSH) waitReady(within time.Duration) error {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if banner(s.addr) {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("sshd exited: %v", s.cmd.ProcessState)
		case <-deadline.C:
			return fmt.Errorf("sshd did not answer on %s within %v", s.addr, within)
		case <-tick.C:
		}
	}
}

// banner reports whether an OpenSSH server answers on addr.
func banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-OpenSSH")
}

// writeKey writes a new ed25519 private key to path in OpenSSH format and
// returns its public key.
func writeKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "sdbmaint test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshPub
}

// writeKnownHosts writes a known_hosts file that lists key for the server.
func (s *openSSH) writeKnownHosts(t *testing.T, path string, key ssh.PublicKey) {
	t.Helper()
	line := knownhosts.Line([]string{knownhosts.Normalize(s.addr)}, key)
	if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (s *openSSH) runner(t *testing.T, knownHosts string) *SSHRunner {
	t.Helper()
	return newRunner(t, SSHOptions{Addr: s.addr, User: s.user, KeyFile: s.keyFile, KnownHostsFile: knownHosts, DialTimeout: 10 * time.Second})
}

// calls returns the sdb-admin command lines the stand-in received.
func (s *openSSH) calls(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.state, "calls"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// descendants returns the processes below pid, parents before children,
// read from /proc.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// dropConnections kills every per-connection sshd process, as a network
// that goes away or a toolbox host that reboots would, and leaves the
// listener running. The commands those connections ran are killed after
// their sshd, so that none of them can report an exit status first.
func (s *openSSH) dropConnections(t *testing.T) {
	t.Helper()
	below := descendants(s.cmd.Process.Pid)
	var killed int
	for _, p := range below {
		if comm(p) == "sshd" {
			if syscall.Kill(p, syscall.SIGKILL) == nil {
				killed++
			}
		}
	}
	if killed == 0 {
		t.Fatalf("no sshd connection process to kill below %d", s.cmd.Process.Pid)
	}
	for _, p := range below {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// killAll kills sshd and everything it started, and waits for sshd.
func (s *openSSH) killAll() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		below := descendants(s.cmd.Process.Pid)
		_ = s.cmd.Process.Kill()
		for _, p := range below {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		<-s.exited
	}
	// A held command orphaned by a dropped connection.
	if b, err := os.ReadFile(filepath.Join(s.state, "held.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// hold makes the next stop-node or start-node block after its first lines,
// until release.
func (s *openSSH) hold(t *testing.T) {
	t.Helper()
	if err := syscall.Mkfifo(filepath.Join(s.state, "hold"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func nodeRunning(t *testing.T, nodes []runbook.Node, id string) bool {
	t.Helper()
	for _, n := range nodes {
		if n.ID == id {
			return n.Running
		}
	}
	t.Fatalf("node %s not listed in %+v", id, nodes)
	return false
}

// list-nodes, stop-node and start-node through the real runner and a real
// sshd, the way the stop and start phases use them: a tier of nodes at a
// time over one connection.
func TestOpenSSHNodeControl(t *testing.T) {
	t.Parallel()
	srv := startOpenSSH(t)
	ctx := testCtx(t)
	admin := &SDBAdmin{Runner: srv.runner(t, srv.knownHosts), Command: srv.admin}

	nodes, err := admin.ListNodes(ctx)

	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 5 || nodes[0].ID != osMaster || nodes[0].Role != runbook.RoleMaster || nodes[1].Role != runbook.RoleLeaf ||
		nodes[2].AvailabilityGroup != 2 || nodes[3].Port != 3309 || !nodes[4].Running || !nodes[4].Connectable {
		t.Fatalf("list-nodes: %+v", nodes)
	}

	// Stop every leaf at once: one session each over the one connection.
	var out lines
	var wg sync.WaitGroup
	errs := make([]error, len(osLeaves))
	for i, id := range osLeaves {
		wg.Go(func() { errs[i] = admin.StopNode(ctx, id, out.add) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, id := range osLeaves {
		for _, want := range []string{
			"stdout:   · Run 'memsqlctl stop-node --yes --memsql-id " + id + "'",
			"stdout: ✓ stopped node " + id,
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
	}
	if got := strings.Count(out.String(), "stderr:   · waiting for the memsqld process"); got != len(osLeaves) {
		t.Errorf("%d stderr lines, want %d:\n%s", got, len(osLeaves), out.String())
	}
	nodes, err = admin.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range osLeaves {
		if nodeRunning(t, nodes, id) {
			t.Errorf("leaf %s still running after stop-node", id)
		}
	}
	if !nodeRunning(t, nodes, osMaster) {
		t.Error("the master stopped with the leaves")
	}

	if err := admin.StartNode(ctx, osLeaf2, nil); err != nil {
		t.Fatal(err)
	}
	nodes, err = admin.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !nodeRunning(t, nodes, osLeaf2) || nodeRunning(t, nodes, osLeaf1) {
		t.Errorf("after start-node %s: %+v", osLeaf2, nodes)
	}

	// A node sdb-admin does not know: exit status 1, its message and output.
	err = admin.StartNode(ctx, "C0C0C0C0C0C0C0C0", nil)
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 1 || exit.Stderr != "Error: no node found with MemSQL ID C0C0C0C0C0C0C0C0" {
		t.Fatalf("unknown node: %v", err)
	}
	if runbook.ErrorKind(err) != runbook.Unavailable || !strings.Contains(runbook.ErrorMessage(err), "exited with status 1") {
		t.Errorf("unknown node: kind %v, message %q", runbook.ErrorKind(err), runbook.ErrorMessage(err))
	}

	// What arrived on the host is exactly one ID per call, with --yes.
	calls := srv.calls(t)
	for _, id := range osLeaves {
		if !slices.Contains(calls, "stop-node --memsql-id "+id+" --yes") {
			t.Errorf("sdb-admin never got stop-node for %s: %q", id, calls)
		}
	}
	if want := "start-node --memsql-id " + osLeaf2 + " --yes"; !slices.Contains(calls, want) {
		t.Errorf("sdb-admin never got %q: %q", want, calls)
	}
	if got := strings.Count(srv.log.String(), "Accepted publickey for "+srv.user); got != 1 {
		t.Errorf("%d logins, want 1 connection for every command:\n%s", got, srv.log)
	}
}

// A host key that is not the one known_hosts lists is refused before
// anything runs, with a message that names the host.
func TestOpenSSHRefusesWrongHostKey(t *testing.T) {
	t.Parallel()
	srv := startOpenSSH(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	name := knownhosts.Normalize(srv.addr)

	other := writeKey(t, filepath.Join(dir, "other"))
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, err := ssh.NewPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		knownHosts string // the file's contents
		want       []string
	}{
		{"changed key", knownhosts.Line([]string{name}, other),
			[]string{"HOST KEY CHANGED for " + name, "ssh-ed25519 key " + ssh.FingerprintSHA256(srv.hostKey)}},
		// The host was rebuilt with a key of another type: still a changed
		// key, not a failed algorithm negotiation.
		{"key of another type", knownhosts.Line([]string{name}, ecPub),
			[]string{"HOST KEY CHANGED for " + name, "ssh-ed25519 key " + ssh.FingerprintSHA256(srv.hostKey)}},
		{"unknown host", knownhosts.Line([]string{"[127.0.0.1]:1"}, srv.hostKey),
			[]string{"host key for " + name + " is not in", "ssh-keyscan -p "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(path, []byte(tt.knownHosts+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			admin := &SDBAdmin{Runner: srv.runner(t, path), Command: srv.admin}
			_, err := admin.ListNodes(ctx)
			if err == nil {
				t.Fatal("list-nodes ran on a host whose key does not match")
			}
			for _, want := range tt.want {
				if !strings.Contains(runbook.ErrorMessage(err), want) {
					t.Errorf("error %q does not say %q", runbook.ErrorMessage(err), want)
				}
			}
			if err := admin.StopNode(ctx, osLeaf1, nil); err == nil {
				t.Fatal("stop-node ran on a host whose key does not match")
			}
		})
	}
	if calls := srv.calls(t); len(calls) != 0 {
		t.Errorf("sdb-admin ran despite the host key: %q", calls)
	}
	if strings.Contains(srv.log.String(), "Accepted publickey") {
		t.Errorf("the client authenticated to a host it should not trust:\n%s", srv.log)
	}
}

// A connection that drops while stop-node runs ends the command with an
// error that says its outcome is unknown, promptly; the next command
// reconnects. When sshd itself is gone, the next command says so.
func TestOpenSSHDroppedConnection(t *testing.T) {
	t.Parallel()
	srv := startOpenSSH(t)
	ctx := testCtx(t)
	admin := &SDBAdmin{Runner: srv.runner(t, srv.knownHosts), Command: srv.admin}

	// The connection drops; the listener stays.
	srv.hold(t)
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- admin.StopNode(ctx, osLeaf1, func(string, string) { once.Do(func() { close(started) }) })
	}()
	waitFor(t, ctx, started, done, "stop-node to start")
	srv.dropConnections(t)
	err := waitErr(t, ctx, done)
	if !errors.Is(err, ErrSessionDropped) || !strings.Contains(runbook.ErrorMessage(err), "whether it did its work is unknown") {
		t.Fatalf("dropped connection: %v", err)
	}
	if err := os.Remove(filepath.Join(srv.state, "hold")); err != nil {
		t.Fatal(err)
	}
	nodes, err := admin.ListNodes(ctx)
	if err != nil {
		t.Fatalf("list-nodes after the drop: %v", err)
	}
	if !nodeRunning(t, nodes, osLeaf1) {
		t.Error("the dropped stop-node changed the node")
	}

	// sshd itself dies mid-command.
	srv.hold(t)
	started = make(chan struct{})
	once = sync.Once{}
	go func() {
		done <- admin.StartNode(ctx, osLeaf2, func(string, string) { once.Do(func() { close(started) }) })
	}()
	waitFor(t, ctx, started, done, "start-node to start")
	srv.killAll()
	err = waitErr(t, ctx, done)
	if !errors.Is(err, ErrSessionDropped) {
		t.Fatalf("sshd killed: %v", err)
	}
	_, err = admin.ListNodes(ctx)
	if err == nil || !strings.Contains(runbook.ErrorMessage(err), "ssh "+srv.addr+": cannot connect: connection refused") {
		t.Fatalf("list-nodes with sshd gone: %v", err)
	}
}

// waitFor waits until ch is closed; a result on done first fails the test.
func waitFor(t *testing.T, ctx context.Context, ch <-chan struct{}, done <-chan error, what string) {
	t.Helper()
	select {
	case <-ch:
	case err := <-done:
		t.Fatalf("waiting for %s, the command ended: %v", what, err)
	case <-ctx.Done():
		t.Fatalf("waiting for %s: %v", what, ctx.Err())
	}
}

// waitErr returns the command's result; a command still running when the
// test's context ends has hung.
func waitErr(t *testing.T, ctx context.Context, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			t.Fatalf("the command ended only by its context: %v", err)
		}
		return err
	case <-ctx.Done():
		t.Fatal("the command hung after its connection dropped")
		return nil
	}
}
