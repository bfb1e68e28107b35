package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

// watched is an output stream a test can read while a command writes it,
// and wait on for a line.
type watched struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newWatched() *watched { return &watched{changed: make(chan struct{})} }

func (w *watched) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return len(p), nil
}

func (w *watched) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the output contains substr.
func (w *watched) waitFor(t *testing.T, substr string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		w.mu.Lock()
		ok := strings.Contains(w.buf.String(), substr)
		ch := w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("output never contained %q:\n%s", substr, w.String())
		}
	}
}

// startRunSim starts a simulated cluster and writes its config (with the store
// beside it) into a temp dir; it returns the cluster and the config path.
func startRunSim(t *testing.T, opts sim.Options) (*sim.Cluster, string) {
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

type cmdResult struct {
	code           int
	stdout, stderr string
}

// runCmd runs sdbmaint in-process as user "tester".
func runCmd(t *testing.T, stdin string, interrupts <-chan os.Signal, stdout *watched, args ...string) cmdResult {
	t.Helper()
	if stdout == nil {
		stdout = newWatched()
	}
	var stderr bytes.Buffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: stdout, Stderr: &stderr, Interrupts: interrupts,
		Getenv: func(k string) string {
			if k == "USER" {
				return "tester"
			}
			return ""
		}}
	code := Main(context.Background(), env, args)
	return cmdResult{code, stdout.String(), stderr.String()}
}

func wantContains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

// nodeCommandsOnce checks that every node got at most one successful
// stop-node and one successful start-node.
func nodeCommandsOnce(t *testing.T, log []sim.LogEntry) {
	t.Helper()
	seen := map[string]int{}
	for _, e := range log {
		if e.Via != "ssh" || e.Error != "" {
			continue
		}
		for _, verb := range []string{"stop-node", "start-node"} {
			if strings.Contains(e.Text, " "+verb+" ") {
				seen[verb+" "+e.Node]++
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no node commands in the sim's log")
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}
}

func simClean(t *testing.T, c *sim.Cluster) {
	t.Helper()
	st := c.State()
	for _, n := range st.Nodes {
		if n.Process != "running" || n.State != "online" {
			t.Errorf("node %s (%s) is %s/%s", n.ID, n.Role, n.Process, n.State)
		}
	}
	if len(st.Violations) > 0 {
		t.Errorf("violations: %+v", st.Violations)
	}
}

func TestRunAsksAtEveryGate(t *testing.T) {
	t.Parallel()
	c, cfg := startRunSim(t, sim.Options{})
	// backup, snapshot, sync-snapshot, stop, maintenance, start
	r := runCmd(t, strings.Repeat("y\n", 6), nil, nil, "run", "--config", cfg, "--cluster", "sim")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	wantContains(t, "stdout", r.stdout,
		"Preflight of sim (7 nodes",
		"✓ leaves_online",
		"Approve backup? [y/N, s=skip phase, a=abort]",
		"Runs SNAPSHOT DATABASE on the MA for `sales`, `web`",
		"Approve stop?",
		"Re-checks that every node is online and nothing is orphaned, then stops the MA ",
		"✓ re-check cluster health before stop",
		"The cluster is DOWN",
		"1/1 MA stopped", "2/2 child aggregators stopped", "4/4 leaves stopped",
		"Is the maintenance done?",
		"4/4 leaves recovered",
		"approve by terminal:tester",
		"SUCCEEDED",
		"downtime",
	)
	simClean(t, c)
	nodeCommandsOnce(t, c.Log())
}

func TestRunLeftOpenThenResumed(t *testing.T) {
	t.Parallel()
	c, cfg := startRunSim(t, sim.Options{})
	// No answer at the first gate: the run stays open.
	r := runCmd(t, "", nil, nil, "run", "--config", cfg, "--cluster", "sim")
	if r.code != 1 || !strings.Contains(r.stdout, "left open at backup") {
		t.Fatalf("exit %d, want 1 with the run left open:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// A second run without --resume says who has the open run.
	r = runCmd(t, "", nil, nil, "run", "--config", cfg, "--cluster", "sim", "--yes")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	wantContains(t, "stderr", r.stderr, "has an open run", "started by terminal:tester", "--resume")
	// --resume --yes finishes it.
	r = runCmd(t, "", nil, nil, "run", "--config", cfg, "--cluster", "sim", "--resume", "--yes")
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantContains(t, "stdout", r.stdout, "Resuming run", "→ approve (--yes)", "SUCCEEDED")
	simClean(t, c)

	// history shows it, with phases, timings and approvers.
	h := runCmd(t, "", nil, nil, "history", "--config", cfg)
	if h.code != 0 {
		t.Fatalf("history: exit %d: %s", h.code, h.stderr)
	}
	wantContains(t, "history", h.stdout, "SUCCEEDED", "started", "by terminal:tester", "stop", "approve by terminal:tester", "downtime")
	h = runCmd(t, "", nil, nil, "history", "--config", cfg, "--cluster", "sim", "--json")
	if h.code != 0 {
		t.Fatalf("history --json: exit %d: %s", h.code, h.stderr)
	}
	var runs []historyRun
	if err := json.Unmarshal([]byte(h.stdout), &runs); err != nil {
		t.Fatalf("history --json: %v\n%s", err, h.stdout)
	}
	if len(runs) != 1 || runs[0].Status != "succeeded" || runs[0].DowntimeSeconds <= 0 || len(runs[0].Phases) != 8 {
		t.Fatalf("history --json: %+v", runs)
	}
	approvals := 0
	for _, a := range runs[0].Audit {
		if a.Who == "terminal:tester" && (a.What == "approve" || a.What == "maintenance-done") {
			approvals++
			if a.At.IsZero() || a.Phase == "" {
				t.Errorf("audit line without when or where: %+v", a)
			}
		}
	}
	if approvals != 6 {
		t.Errorf("audit has %d approvals by terminal:tester, want 6: %+v", approvals, runs[0].Audit)
	}
	if p := runs[0].Phases[4]; p.Name != "stop" || p.Approval == nil || p.Approval.By != "terminal:tester" || p.TookSeconds <= 0 {
		t.Errorf("stop phase in history: %+v", p)
	}
}

func TestRunFailedStepAsksEvenWithYes(t *testing.T) {
	t.Parallel()
	c, cfg := startRunSim(t, sim.Options{Faults: []string{"sql-error:SNAPSHOT"}})
	// --yes approves the gates; the failed snapshot is a person's call.
	r := runCmd(t, "s\nsnapshot taken by hand\ns\nsnapshot taken by hand\n", nil, nil, "run", "--config", cfg, "--cluster", "sim", "--yes")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantContains(t, "stdout", r.stdout, "✗ SNAPSHOT DATABASE `sales` failed", "injected failure",
		"Choose: r=retry, s=skip, a=abort, q=quit", "Reason (recorded in the audit log)")
	simClean(t, c)
	h := runCmd(t, "", nil, nil, "history", "--config", cfg, "--json")
	var runs []historyRun
	if err := json.Unmarshal([]byte(h.stdout), &runs); err != nil {
		t.Fatal(err)
	}
	skips := 0
	for _, a := range runs[0].Audit {
		if a.What == "skip" && strings.Contains(a.Result, "snapshot taken by hand") {
			skips++
		}
	}
	if skips != 2 {
		t.Errorf("audit has %d skips with the reason, want 2: %+v", skips, runs[0].Audit)
	}
}

func TestRunCtrlCStopsAtStepBoundary(t *testing.T) {
	t.Parallel()
	c, cfg := startRunSim(t, sim.Options{StopTime: 300 * time.Millisecond})
	ints := make(chan os.Signal, 2)
	out := newWatched()
	done := make(chan cmdResult, 1)
	go func() { done <- runCmd(t, "", ints, out, "run", "--config", cfg, "--cluster", "sim", "--yes") }()
	out.waitFor(t, "▶ stop CA")
	ints <- os.Interrupt
	r := <-done
	if r.code != exitInterrupted {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitInterrupted, r.stdout, r.stderr)
	}
	wantContains(t, "stdout", r.stdout, "Stopping at the next step boundary", "is saved at stop (running): 1/1 MA stopped, 2/2 child aggregators stopped, 0/4 leaves stopped")
	if strings.Contains(r.stdout, "▶ stop leaf") {
		t.Fatalf("a step started after Ctrl-C:\n%s", r.stdout)
	}
	r = runCmd(t, "", nil, nil, "run", "--config", cfg, "--cluster", "sim", "--resume", "--yes")
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	simClean(t, c)
	nodeCommandsOnce(t, c.Log())
}

func TestRunCtrlCTwiceExitsAtOnce(t *testing.T) {
	t.Parallel()
	c, cfg := startRunSim(t, sim.Options{StopTime: 2 * time.Second})
	ints := make(chan os.Signal, 2)
	out := newWatched()
	done := make(chan cmdResult, 1)
	go func() { done <- runCmd(t, "", ints, out, "run", "--config", cfg, "--cluster", "sim", "--yes") }()
	out.waitFor(t, "Stopping Master node") // the MA's stop-node is running
	ints <- os.Interrupt
	out.waitFor(t, "Ctrl-C again to exit now")
	ints <- os.Interrupt
	r := <-done
	if r.code != exitInterrupted {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantContains(t, "stdout", r.stdout, "exiting now", "Exited with steps in flight")
	// The toolbox finishes the stop it had started; resume re-reads it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Wait(ctx, func(st sim.State) bool { return st.Nodes[0].Process == "stopped" }); err != nil {
		t.Fatal(err)
	}
	r = runCmd(t, "", nil, nil, "run", "--config", cfg, "--cluster", "sim", "--resume", "--yes")
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantContains(t, "stdout", r.stdout, "after a restart, no command sent")
	simClean(t, c)
	nodeCommandsOnce(t, c.Log())
}

func TestRunAndHistoryUsage(t *testing.T) {
	t.Parallel()
	_, cfg := startRunSim(t, sim.Options{})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--cluster", "sim"}, "--config is required"},
		{[]string{"run", "--config", cfg}, "--cluster is required"},
		{[]string{"run", "--config", cfg, "--cluster", "prod"}, `no cluster "prod"`},
		{[]string{"run", "--config", filepath.Join(t.TempDir(), "nope.yaml"), "--cluster", "sim"}, "nope.yaml"},
		{[]string{"run", "--config", cfg, "--cluster", "sim", "extra"}, "unexpected argument"},
		{[]string{"history"}, "--config is required"},
		{[]string{"history", "--config", cfg, "--cluster", "prod"}, `no cluster "prod"`},
		{[]string{"history", "--config", cfg, "--limit", "-1"}, "--limit"},
		{[]string{"demo", "extra"}, "takes no arguments"},
	} {
		r := runCmd(t, "", nil, nil, tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if r := runCmd(t, "", nil, nil, "history", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "No runs yet") {
		t.Errorf("history of an empty store: %+v", r)
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	r := runCmd(t, "", nil, nil, "demo", "--speed", "20")
	if r.code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantContains(t, "demo output", r.stdout, "Simulated cluster \"sim\": 7 nodes", "4/4 leaves stopped", "4/4 leaves recovered",
		"SUCCEEDED", "7/7 nodes online, 0 ordering violations", "Done: the cluster is fully online")
}
