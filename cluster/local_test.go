//go:build unix

package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

func TestLocalRunnerStreamsLinesAsTheyArrive(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "go-on")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	var got lines
	r := &LocalRunner{}
	// The shell blocks on the fifo after its first line until the callback
	// has seen that line: a runner that waited for the exit would hang.
	err := r.Run(testCtx(t), "echo one; cat "+fifo+"; echo two >&2; printf three", func(stream, line string) {
		got.add(stream, line)
		if line == "one" {
			go func() {
				f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
				if err == nil {
					f.Close()
				}
			}()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	g := got.String()
	if !strings.HasPrefix(g, "stdout: one\n") || !strings.Contains(g, "stderr: two") || !strings.Contains(g, "stdout: three") {
		t.Errorf("got %q", g)
	}
}

func TestLocalRunnerExitError(t *testing.T) {
	t.Parallel()
	r := &LocalRunner{}
	err := r.Run(testCtx(t), "echo out; echo 'it broke' >&2; exit 7", nil)
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 7 || exit.Stderr != "it broke" || !strings.Contains(exit.Output, "out\n") {
		t.Fatalf("got %#v", err)
	}
}

func TestLocalRunnerCancelKillsTheProcessGroup(t *testing.T) {
	t.Parallel()
	r := &LocalRunner{}
	ctx, cancel := context.WithCancel(testCtx(t))
	// The child sleep holds stdout; killing only the shell would leave
	// Run waiting for it.
	err := r.Run(ctx, "echo started; sleep 30 & wait", func(_, line string) {
		if line == "started" {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || runbook.ErrorKind(err) != runbook.Unavailable {
		t.Fatalf("got %v", err)
	}
}

func TestLocalRunnerTimeout(t *testing.T) {
	t.Parallel()
	r := &LocalRunner{CommandTimeout: 20 * time.Millisecond}
	err := r.Run(testCtx(t), "sleep 30", nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no result within 20ms") {
		t.Fatalf("got %v", err)
	}
}

// fakeToolbox is a state directory for testdata/fake-sdb-admin and the
// SDBAdmin that calls it through a LocalRunner.
func fakeToolbox(t *testing.T, nodesFile string) (*SDBAdmin, string) {
	t.Helper()
	dir := t.TempDir()
	if nodesFile != "" {
		data, err := os.ReadFile(filepath.Join("testdata", "listnodes", nodesFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "nodes.json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script, err := filepath.Abs(filepath.Join("testdata", "fake-sdb-admin"))
	if err != nil {
		t.Fatal(err)
	}
	return &SDBAdmin{Runner: &LocalRunner{}, Command: script + " " + dir}, dir
}

func calls(t *testing.T, dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, "log"))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestSDBAdminListNodes(t *testing.T) {
	t.Parallel()
	admin, dir := fakeToolbox(t, "sdb_admin_9.x.json")
	nodes, err := admin.ListNodes(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 || nodes[0].Role != runbook.RoleMaster || nodes[2].Recovered() {
		t.Errorf("got %+v", nodes)
	}
	if got := calls(t, dir); got != "list-nodes --json\n" {
		t.Errorf("sdb-admin called with %q", got)
	}
}

func TestSDBAdminStopStartOneIDPerCall(t *testing.T) {
	t.Parallel()
	admin, dir := fakeToolbox(t, "")
	var got lines
	ctx := testCtx(t)
	if err := admin.StopNode(ctx, "DEADBEEF01", got.add); err != nil {
		t.Fatal(err)
	}
	if err := admin.StartNode(ctx, "deadbeef02", got.add); err != nil {
		t.Fatal(err)
	}
	if c := calls(t, dir); c != "stop-node --memsql-id DEADBEEF01 --yes\nstart-node --memsql-id deadbeef02 --yes\n" {
		t.Errorf("sdb-admin called with %q", c)
	}
	if !strings.Contains(got.String(), "stdout: Toolbox will perform the following actions: stop-node on DEADBEEF01") {
		t.Errorf("output %q", got.String())
	}
}

func TestSDBAdminRefusesBadIDsBeforeRunning(t *testing.T) {
	t.Parallel()
	admin, dir := fakeToolbox(t, "")
	for _, id := range []string{"", "DEADBEEF; touch x", "--all", "DEAD BEEF01", "$(id)"} {
		err := admin.StopNode(testCtx(t), id, nil)
		if runbook.ErrorKind(err) != runbook.Invalid || !strings.Contains(err.Error(), "not a memsqlId") {
			t.Errorf("StopNode(%q) = %v", id, err)
		}
	}
	if c := calls(t, dir); c != "" {
		t.Errorf("sdb-admin ran: %q", c)
	}
}

func TestSDBAdminFailuresCarryOutput(t *testing.T) {
	t.Parallel()
	admin, dir := fakeToolbox(t, "")
	if err := os.WriteFile(filepath.Join(dir, "exit"), []byte("1"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := admin.StopNode(testCtx(t), "DEADBEEF01", nil)
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 1 {
		t.Fatalf("got %v, want an *ExitError", err)
	}
	if msg := runbook.ErrorMessage(err); !strings.Contains(msg, "exited with status 1") || !strings.Contains(msg, "Error: stop-node failed for node DEADBEEF01") {
		t.Errorf("message %q", msg)
	}

	admin, _ = fakeToolbox(t, "")
	// nodes.json missing: cat fails; and garbage output
	if _, err := admin.ListNodes(testCtx(t)); err == nil {
		t.Error("list-nodes without output succeeded")
	}
	admin, _ = fakeToolbox(t, "not_json.txt")
	_, err = admin.ListNodes(testCtx(t))
	if err == nil || !strings.Contains(runbook.ErrorMessage(err), "Toolbox is not configured") || !strings.Contains(runbook.ErrorMessage(err), "not JSON") {
		t.Errorf("got %v, want an error carrying the output", err)
	}
}

func TestSDBAdminRefusesUnsafeCommand(t *testing.T) {
	t.Parallel()
	admin := &SDBAdmin{Runner: &LocalRunner{}, Command: "sdb-admin; touch /tmp/pwned"}
	if _, err := admin.ListNodes(testCtx(t)); runbook.ErrorKind(err) != runbook.Invalid {
		t.Errorf("got %v", err)
	}
}
