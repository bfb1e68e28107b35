package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
)

// TestCrashAndResume runs `sdbmaint run --yes` as a process against
// `sdbmaint sim` as another, kills it with SIGKILL at several points (found
// by reading its output, not by sleeping), and resumes with --resume: the
// run completes, the cluster ends online with no ordering violation, and
// the sim's command log shows no completed step sent twice.
func TestCrashAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "sdbmaint")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name   string
		simArg []string
		// killAt are lines of run's output, in order: the process is
		// killed right after the last one.
		killAt []string
		// inFlight: node commands were running at the kill; the resumed
		// run must find them done and send nothing.
		inFlight bool
	}{
		{"DuringSnapshots", []string{"--fault", "slow:150ms"}, []string{"▶ SNAPSHOT DATABASE `web`"}, false},
		{"BetweenStopTiers", nil, []string{"1/1 MA stopped"}, false},
		{"DuringAggregatorStops", nil, []string{"1/1 MA stopped", "waiting for the memsqld process to exit"}, true},
		{"DuringLeafStops", nil, []string{"2/2 child aggregators stopped", "waiting for the memsqld process to exit"}, true},
		{"WhileLeavesRecover", nil, []string{"▶ wait until 4 leaves are recovered"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := filepath.Join(dir, "sdbmaint.yaml")
			ready := startSimProcess(t, bin, append([]string{"--write-config", cfg, "--stop-time", "200ms",
				"--start-time", "200ms", "--recovery-time", "1500ms"}, tc.simArg...)...)

			// The first run, killed at the chosen point.
			run := exec.Command(bin, "run", "--config", cfg, "--cluster", "sim", "--yes")
			run.Env = append(os.Environ(), "USER=tester")
			stdout, err := run.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			run.Stderr = io.Discard
			if err := run.Start(); err != nil {
				t.Fatal(err)
			}
			var seen []string
			sc := bufio.NewScanner(stdout)
			killed := false
			next := 0
			for sc.Scan() {
				seen = append(seen, sc.Text())
				if strings.Contains(sc.Text(), tc.killAt[next]) {
					if next++; next == len(tc.killAt) {
						run.Process.Kill() // SIGKILL: no cleanup of any kind
						killed = true
						break
					}
				}
			}
			go io.Copy(io.Discard, stdout)
			run.Wait()
			if !killed {
				t.Fatalf("the run ended before %q:\n%s", tc.killAt, strings.Join(seen, "\n"))
			}

			// The toolbox finishes what it had started (as a real one does)
			// before the operator resumes.
			waitNodeCommandsSettled(t, ready.Control)

			// The second run resumes and finishes.
			resume := exec.Command(bin, "run", "--config", cfg, "--cluster", "sim", "--resume", "--yes")
			resume.Env = append(os.Environ(), "USER=tester")
			out, err := resume.CombinedOutput()
			if err != nil {
				t.Fatalf("resume: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "Resuming run") || !strings.Contains(string(out), "SUCCEEDED") {
				t.Fatalf("resume output:\n%s", out)
			}

			st := simState(t, ready.Control)
			for _, n := range st.Nodes {
				if n.Process != "running" || n.State != "online" {
					t.Errorf("node %s (%s) ended %s/%s", n.ID, n.Role, n.Process, n.State)
				}
			}
			if len(st.Violations) > 0 {
				t.Errorf("violations: %+v", st.Violations)
			}
			reread := noCompletedStepSentTwice(t, filepath.Join(dir, "sdbmaint.db"), st.Log)
			if tc.inFlight && reread == 0 {
				t.Errorf("no step was found done by its re-read after the kill")
			}
		})
	}
}

// startSimProcess runs `sdbmaint sim` until the test ends and returns its
// ready line.
func startSimProcess(t *testing.T, bin string, args ...string) simReady {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"sim"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("sim ready line: %v", err)
	}
	go io.Copy(io.Discard, stdout)
	var ready simReady
	if err := json.Unmarshal([]byte(line), &ready); err != nil {
		t.Fatalf("sim ready line %q: %v", line, err)
	}
	return ready
}

func simState(t *testing.T, control string) sim.State {
	t.Helper()
	resp, err := http.Get(control + "/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st sim.State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// noCompletedStepSentTwice compares the sim's command log with the steps
// the store recorded: no step's command went out more often than the step
// was attempted (an attempt is recorded before its command is sent), a
// step attempted once was sent at most once, and every node was stopped
// and started successfully exactly once.
// It returns how many node steps were recorded done without a command.
func noCompletedStepSentTwice(t *testing.T, storePath string, log []sim.LogEntry) int {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, storePath)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	runs, err := store.History(ctx, "sim", 0)
	if err != nil || len(runs) != 1 {
		t.Fatalf("history: %d runs, %v", len(runs), err)
	}
	sent := func(st *runbook.Step) (all, ok int) {
		for _, e := range log {
			var match bool
			switch st.Kind {
			case runbook.StepSnapshot:
				match = e.Via == "sql" && e.Text == "SNAPSHOT DATABASE `"+st.Target+"`"
			case runbook.StepSyncSnapshot:
				match = e.Via == "sql" && e.Text == "_SYNC_SNAPSHOT `"+st.Target+"`"
			case runbook.StepBackup:
				match = e.Via == "sql" && strings.HasPrefix(e.Text, "BACKUP DATABASE `"+st.Target+"`")
			case runbook.StepStopNode:
				match = e.Via == "ssh" && e.Node == st.Target && strings.Contains(e.Text, " stop-node ")
			case runbook.StepStartNode:
				match = e.Via == "ssh" && e.Node == st.Target && strings.Contains(e.Text, " start-node ")
			default:
				continue
			}
			if match {
				all++
				if e.Error == "" {
					ok++
				}
			}
		}
		return all, ok
	}
	reread := 0
	for _, p := range runs[0].Phases {
		for _, st := range p.Steps {
			all, ok := sent(st)
			if all > st.Attempts {
				t.Errorf("step %s: %d commands sent in %d attempts", st.ID, all, st.Attempts)
			}
			if st.Kind == runbook.StepStopNode || st.Kind == runbook.StepStartNode {
				if ok != 1 {
					t.Errorf("step %s: %d successful commands, want exactly 1", st.ID, ok)
				}
				if strings.Contains(st.Evidence, "no command sent") {
					reread++
				}
			}
			if st.Attempts > 1 || strings.Contains(st.Evidence, "no command sent") {
				t.Logf("step %s: attempts %d, commands %d, evidence %q", st.ID, st.Attempts, all, st.Evidence)
			}
		}
	}
	return reread
}

// waitNodeCommandsSettled polls the sim until every node is in the state
// its last stop-node or start-node asked for.
func waitNodeCommandsSettled(t *testing.T, control string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st := simState(t, control)
		want := map[string]string{}
		for _, e := range st.Log {
			switch {
			case e.Via == "ssh" && strings.Contains(e.Text, " stop-node "):
				want[e.Node] = "stopped"
			case e.Via == "ssh" && strings.Contains(e.Text, " start-node "):
				want[e.Node] = "running"
			}
		}
		settled := true
		for _, n := range st.Nodes {
			if w, ok := want[n.ID]; ok && n.Process != w {
				settled = false
			}
		}
		if settled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node commands never settled: %+v", st.Nodes)
		}
		<-tick.C
	}
}
