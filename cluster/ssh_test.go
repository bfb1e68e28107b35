package cluster

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// testCtx bounds a test that would otherwise hang on a bug.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newRunner(t *testing.T, opts SSHOptions) *SSHRunner {
	t.Helper()
	r, err := NewSSHRunner(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

type lines struct {
	mu  sync.Mutex
	got []string
}

func (l *lines) add(stream, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, stream+": "+line)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.got, "\n")
}

func TestSSHStreamsLinesAsTheyArrive(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	srv := startSSHServer(t, func(s *execSession) {
		fmt.Fprintf(s.Stdout, "ran %s\n", s.Cmd)
		// The second line is written only after the client has seen the
		// first: a runner that waited for the exit would hang here.
		select {
		case <-next:
		case <-s.Closed:
			return
		}
		io.WriteString(s.Stderr, "warn")
		io.WriteString(s.Stderr, "ing\r\n")
		io.WriteString(s.Stdout, "last line without newline")
	})
	r := newRunner(t, srv.options())
	var got lines
	err := r.Run(testCtx(t), "sdb-admin list-nodes --json", func(stream, line string) {
		got.add(stream, line)
		if line == "ran sdb-admin list-nodes --json" {
			close(next)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Lines of one stream keep their order; the two streams interleave
	// in order of arrival, which is not fixed, so the tail is sorted.
	got.mu.Lock()
	defer got.mu.Unlock()
	slices.Sort(got.got[1:])
	want := []string{"stdout: ran sdb-admin list-nodes --json", "stderr: warning", "stdout: last line without newline"}
	if !slices.Equal(got.got, want) {
		t.Errorf("got %q, want %q", got.got, want)
	}
}

func TestSSHNonZeroExitCarriesOutput(t *testing.T) {
	t.Parallel()
	srv := startSSHServer(t, func(s *execSession) {
		io.WriteString(s.Stdout, "stopping node DEADBEEF\n")
		io.WriteString(s.Stderr, "Error: node DEADBEEF is not running\n")
		s.Exit(3)
	})
	r := newRunner(t, srv.options())
	err := r.Run(testCtx(t), "sdb-admin stop-node --memsql-id DEADBEEF --yes", nil)
	var exit *ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("got %v, want *ExitError", err)
	}
	// The order between stdout and stderr is the order of arrival, which
	// two streams do not guarantee; each line is there.
	if exit.Code != 3 || !strings.Contains(exit.Output, "stopping node DEADBEEF\n") || !strings.Contains(exit.Output, "Error: node DEADBEEF is not running\n") {
		t.Errorf("got code %d output %q", exit.Code, exit.Output)
	}
	if !strings.Contains(err.Error(), "exit status 3: Error: node DEADBEEF is not running") {
		t.Errorf("error %q should end with the last line of output", err)
	}
}

func TestSSHUnknownHostKeyIsRefused(t *testing.T) {
	t.Parallel()
	ran := make(chan string, 1)
	srv := startSSHServer(t, func(s *execSession) { ran <- s.Cmd })
	srv.writeKnownHosts() // an empty known_hosts
	r := newRunner(t, srv.options())
	err := r.Run(testCtx(t), "sdb-admin list-nodes --json", nil)
	if err == nil {
		t.Fatal("connected to a host whose key is not in known_hosts")
	}
	_, port, _ := net.SplitHostPort(srv.Addr)
	for _, want := range []string{
		"host key for [127.0.0.1]:" + port + " is not in " + srv.KnownHosts,
		"refuses to connect",
		"ssh-keyscan -p " + port + " 127.0.0.1 >> " + srv.KnownHosts,
		"SHA256:",
	} {
		if !strings.Contains(runbook.ErrorMessage(err), want) {
			t.Errorf("message %q does not say %q", runbook.ErrorMessage(err), want)
		}
	}
	if runbook.ErrorKind(err) != runbook.Unavailable {
		t.Errorf("kind %s, want unavailable", runbook.ErrorKind(err))
	}
	select {
	case cmd := <-ran:
		t.Errorf("the command %q ran anyway", cmd)
	default:
	}
}

func TestSSHChangedHostKeyIsRefused(t *testing.T) {
	t.Parallel()
	srv := startSSHServer(t, func(s *execSession) { t.Errorf("command %q ran on a host with a changed key", s.Cmd) })
	other, _ := newSigner(t)
	srv.writeKnownHosts(other.PublicKey())
	r := newRunner(t, srv.options())
	err := r.Run(testCtx(t), "sdb-admin list-nodes --json", nil)
	if err == nil {
		t.Fatal("connected to a host whose key changed")
	}
	msg := runbook.ErrorMessage(err)
	for _, want := range []string{"HOST KEY CHANGED for [127.0.0.1]:", "man-in-the-middle", srv.KnownHosts + ":1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
}

func TestSSHKeyAddedLaterIsAccepted(t *testing.T) {
	t.Parallel()
	srv := startSSHServer(t, func(s *execSession) {})
	srv.writeKnownHosts()
	r := newRunner(t, srv.options())
	if err := r.Run(testCtx(t), "true", nil); err == nil {
		t.Fatal("unknown key accepted")
	}
	// The operator verifies the key and adds it; no restart is needed.
	srv.writeKnownHosts(srv.HostKey.PublicKey())
	if err := r.Run(testCtx(t), "true", nil); err != nil {
		t.Fatal(err)
	}
}

func TestSSHDroppedSession(t *testing.T) {
	t.Parallel()
	srv := startSSHServer(t, func(s *execSession) {
		io.WriteString(s.Stdout, "Stopping node DEADBEEF\n")
		s.Drop()
	})
	r := newRunner(t, srv.options())
	var got lines
	err := r.Run(testCtx(t), "sdb-admin stop-node --memsql-id DEADBEEF --yes", got.add)
	if !errors.Is(err, ErrSessionDropped) {
		t.Fatalf("got %v, want ErrSessionDropped", err)
	}
	if !strings.Contains(runbook.ErrorMessage(err), "session dropped") || !strings.Contains(runbook.ErrorMessage(err), "unknown") {
		t.Errorf("message %q", runbook.ErrorMessage(err))
	}
	if got.String() != "stdout: Stopping node DEADBEEF" {
		t.Errorf("output before the drop: %q", got.String())
	}
}

func TestSSHCancelClosesTheSession(t *testing.T) {
	t.Parallel()
	serverSawClose := make(chan struct{})
	srv := startSSHServer(t, func(s *execSession) {
		io.WriteString(s.Stdout, "started\n")
		<-s.Closed
		close(serverSawClose)
	})
	r := newRunner(t, srv.options())
	ctx, cancel := context.WithCancel(testCtx(t))
	err := r.Run(ctx, "sdb-admin start-node --memsql-id DEADBEEF --yes", func(_, line string) {
		if line == "started" {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	select {
	case <-serverSawClose:
	case <-testCtx(t).Done():
		t.Fatal("the server never saw the session close")
	}
}

func TestSSHCommandTimeout(t *testing.T) {
	t.Parallel()
	srv := startSSHServer(t, func(s *execSession) { <-s.Closed })
	opts := srv.options()
	opts.CommandTimeout = 50 * time.Millisecond
	r := newRunner(t, opts)
	err := r.Run(testCtx(t), "sleep 100", nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no result within 50ms") {
		t.Fatalf("got %v", err)
	}
}

func TestSSHReconnectsAfterTheConnectionDrops(t *testing.T) {
	t.Parallel()
	srv := startSSHServer(t, func(s *execSession) { io.WriteString(s.Stdout, "ok\n") })
	r := newRunner(t, srv.options())
	ctx := testCtx(t)
	for i := 0; i < 3; i++ {
		if err := r.Run(ctx, "true", nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 commands, want 1", n)
	}
	srv.dropConnections()
	if err := r.Run(ctx, "true", nil); err != nil {
		t.Fatalf("after the connection dropped: %v", err)
	}
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (one reconnect)", n)
	}
}

func TestSSHConcurrentCommandsShareOneConnection(t *testing.T) {
	t.Parallel()
	srv := startSSHServer(t, func(s *execSession) { fmt.Fprintln(s.Stdout, s.Cmd) })
	r := newRunner(t, srv.options())
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprintf("echo %d", i)
			var got lines
			if err := r.Run(ctx, want, got.add); err != nil {
				errs <- err
			} else if got.String() != "stdout: "+want {
				errs <- fmt.Errorf("command %q printed %q", want, got.String())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestSSHWrongClientKey(t *testing.T) {
	t.Parallel()
	srv := startSSHServer(t, func(s *execSession) {})
	other := startSSHServer(t, func(s *execSession) {})
	opts := srv.options()
	opts.KeyFile = other.KeyFile // a key srv does not authorise
	r := newRunner(t, opts)
	err := r.Run(testCtx(t), "true", nil)
	if err == nil || !strings.Contains(runbook.ErrorMessage(err), "refused key "+other.KeyFile+` for user "ops"`) {
		t.Fatalf("got %v", err)
	}
}

func TestSSHConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := startSSHServer(t, func(s *execSession) {})
	srv.ln.Close()
	r := newRunner(t, srv.options())
	err := r.Run(testCtx(t), "true", nil)
	if err == nil || !strings.Contains(runbook.ErrorMessage(err), "cannot connect: connection refused") || runbook.ErrorKind(err) != runbook.Unavailable {
		t.Fatalf("got %v", err)
	}
}

func TestNewSSHRunnerChecksFiles(t *testing.T) {
	t.Parallel()
	srv := startSSHServer(t, func(s *execSession) {})
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(o *SSHOptions)
		want string
	}{
		{"missing key", func(o *SSHOptions) { o.KeyFile = filepath.Join(dir, "nope") }, "nope"},
		{"not a key", func(o *SSHOptions) { o.KeyFile = garbage }, "not a private key"},
		{"no known_hosts", func(o *SSHOptions) { o.KnownHostsFile = "" }, "known_hosts file"},
		{"missing known_hosts", func(o *SSHOptions) { o.KnownHostsFile = filepath.Join(dir, "kh") }, "kh"},
		{"no user", func(o *SSHOptions) { o.User = "" }, "user"},
	}
	for _, tt := range tests {
		opts := srv.options()
		tt.edit(&opts)
		_, err := NewSSHRunner(opts)
		if err == nil || runbook.ErrorKind(err) != runbook.Invalid || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an invalid error naming %q", tt.name, err, tt.want)
		}
	}
}

// The client asks the server for the key types known_hosts has for it, so
// that a host with several keys presents one we can check.
func TestSSHKnownAlgorithms(t *testing.T) {
	t.Parallel()
	srv := startSSHServer(t, func(s *execSession) {})
	r := newRunner(t, srv.options())
	if got := r.knownAlgorithms(); !slices.Equal(got, []string{"ssh-ed25519"}) {
		t.Errorf("ed25519 host: %q", got)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, err := ssh.NewPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	srv.writeKnownHosts(rsaPub, srv.HostKey.PublicKey())
	if got := r.knownAlgorithms(); !slices.Equal(got, []string{"rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ssh-ed25519"}) {
		t.Errorf("rsa and ed25519: %q", got)
	}
	// The server still connects with the ed25519 key it has.
	if err := r.Run(testCtx(t), "true", nil); err != nil {
		t.Fatal(err)
	}
	srv.writeKnownHosts()
	if got := r.knownAlgorithms(); got != nil {
		t.Errorf("unknown host: %q", got)
	}
}
