package runbook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// This file carries out steps against a cluster's interfaces. Each
// function returns a StepResult; the state machine decides what it means.

const (
	defaultPoll            = time.Second
	defaultConfirmTimeout  = 2 * time.Minute
	defaultRecoveryTimeout = 30 * time.Minute
)

func pollInterval(c *Cluster) time.Duration {
	if c.PollInterval > 0 {
		return c.PollInterval
	}
	return defaultPoll
}

func (e *Engine) execute(ctx context.Context, c *Cluster, run *Run, st *Step, log *slog.Logger) StepResult {
	res := StepResult{StepID: st.ID}
	var last uint64
	var mu sync.Mutex // adapters may call out from two goroutines (stdout, stderr)
	out := func(stream, line string) {
		ch := Chunk{RunID: run.ID, StepID: st.ID, At: e.clock.Now(), Stream: stream, Line: line}
		mu.Lock()
		last = e.output.add(Event{Kind: EventOutput, At: ch.At, Run: run, Phase: st.Phase, Step: st, Line: &ch})
		mu.Unlock()
	}
	// The step's output is stored (and shown) before its result.
	defer func() {
		mu.Lock()
		seq := last
		mu.Unlock()
		e.output.wait(seq)
	}()
	var err error
	switch st.Kind {
	case StepPreflight, StepPreStopCheck, StepPostCheck:
		res.Report, err = c.Preflight.Preflight(ctx)
		if err == nil && res.Report != nil {
			res.Evidence = fmt.Sprintf("%d checks, %d failed", len(res.Report.Checks), len(res.Report.Failed()))
		}
	case StepBackup:
		err = c.DB.Backup(ctx, st.Target, run.Settings.BackupTo)
	case StepSnapshot:
		err = c.DB.Snapshot(ctx, st.Target)
	case StepSyncSnapshot:
		err = c.DB.SyncSnapshot(ctx, st.Target)
	case StepStopNode, StepStartNode:
		res.Evidence, err = e.nodeStep(ctx, c, run, st, out)
	case StepDetectionOff:
		err = c.Detection.SetLeafFailureDetection(ctx, false)
		res.Evidence = "leaf_failure_detection set OFF on the MA"
	case StepRestoreDetection:
		err = c.Detection.SetLeafFailureDetection(ctx, run.DetectionOriginal)
		res.Evidence = "leaf_failure_detection restored to " + onOff(run.DetectionOriginal)
	case StepWaitRecovered:
		res.Evidence, err = e.waitRecovered(ctx, c, run, out)
	case StepWaitSQL:
		res.Evidence, err = e.waitSQL(ctx, c, run, out)
	default:
		err = fmt.Errorf("unknown step kind %q", st.Kind)
	}
	if err != nil {
		res.Err = stepErrorText(err)
		res.Evidence = ""
		log.Debug("step error", "err", err)
	}
	return res
}

// stepErrorText is the message of err for a step's record: the safe
// message of an *Error, or the text of any other error. Step errors come
// from the cluster adapters (exit codes, SQL errors) and are what the
// operator needs to see; adapters keep secrets out of them.
//
// When the engine wrapped an *Error with context of its own ("the MA does
// not answer SQL after 30m: SELECT 1 on …: no answer"), the context stays
// and the *Error contributes its safe message, not its hidden cause.
func stepErrorText(err error) string {
	var e *Error
	if !errors.As(err, &e) || e.Kind == Internal {
		return err.Error()
	}
	if full, inner := err.Error(), e.Error(); full != inner && strings.Contains(full, inner) {
		return strings.Replace(full, inner, e.Message, 1)
	}
	return e.Message
}

// nodeStep stops or starts one node with sdb-admin and then polls
// list-nodes until it shows the node stopped (or running). When the node
// may already be in that state (a retry, a recovery, a start whose stop was
// not confirmed) list-nodes is read first and no command is sent to a node
// that needs none.
func (e *Engine) nodeStep(ctx context.Context, c *Cluster, run *Run, st *Step, out OutputFunc) (string, error) {
	want := st.Kind == StepStartNode
	state := map[bool]string{true: "running", false: "stopped"}[want]
	if mayAlreadyBe(run, st) {
		n, err := e.findNode(ctx, c, st.Target)
		if err != nil {
			return "", err
		}
		if n.Running == want {
			return fmt.Sprintf("list-nodes already showed it %s; no command sent", state), nil
		}
	}
	var err error
	if want {
		err = c.Nodes.StartNode(ctx, st.Target, out)
	} else {
		err = c.Nodes.StopNode(ctx, st.Target, out)
	}
	if err != nil {
		return "", err // the adapter's error names the command and its exit
	}
	timeout := c.ConfirmTimeout
	if timeout <= 0 {
		timeout = defaultConfirmTimeout
	}
	deadline := e.clock.Now().Add(timeout)
	for {
		n, err := e.findNode(ctx, c, st.Target)
		if err == nil && n.Running == want {
			return "list-nodes shows it " + state, nil
		}
		if !e.clock.Now().Before(deadline) {
			if err != nil {
				return "", fmt.Errorf("confirm node %s %s: %w", st.Target, state, err)
			}
			return "", fmt.Errorf("the command exited 0 but list-nodes does not show node %s %s after %s", st.Target, state, timeout)
		}
		if err := e.sleep(ctx, pollInterval(c)); err != nil {
			return "", err
		}
	}
}

// mayAlreadyBe reports whether a node step's node may already be in the
// state the step wants, so that list-nodes is worth reading first.
func mayAlreadyBe(run *Run, st *Step) bool {
	if st.Attempts > 1 || run.Recovering {
		return true
	}
	if st.Kind == StepStartNode {
		stop := run.Step("stop/" + st.Target)
		return stop == nil || stop.Status != StepDone
	}
	return false
}

func (e *Engine) findNode(ctx context.Context, c *Cluster, id string) (Node, error) {
	nodes, err := e.listerFor(c).list(ctx)
	if err != nil {
		return Node{}, fmt.Errorf("list-nodes: %w", err)
	}
	for _, n := range nodes {
		if n.ID == id {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("list-nodes does not list node %s", id)
}

func (e *Engine) sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-e.clock.After(d):
		return nil
	}
}

func recoveryTimeout(run *Run) time.Duration {
	if run.Settings.RecoveryTimeout > 0 {
		return run.Settings.RecoveryTimeout
	}
	return defaultRecoveryTimeout
}

// waitRecovered polls list-nodes until every leaf the start phase started
// is running and fully recovered, up to the recovery timeout. It reports
// progress when it changes. A failing list-nodes is retried until the
// deadline: the toolbox may be briefly unreachable while nodes come up.
func (e *Engine) waitRecovered(ctx context.Context, c *Cluster, run *Run, out OutputFunc) (string, error) {
	var leaves []string
	for _, s := range run.Phase(PhaseStart).Steps {
		if s.Kind == StepStartNode && s.Role == RoleLeaf && s.Status == StepDone {
			leaves = append(leaves, s.Target)
		}
	}
	timeout := recoveryTimeout(run)
	deadline := e.clock.Now().Add(timeout)
	last := -1
	var lastErr error
	var waiting []string
	for {
		nodes, err := e.listerFor(c).list(ctx)
		if err == nil {
			lastErr = nil
			waiting = waiting[:0]
			for _, id := range leaves {
				i := slices.IndexFunc(nodes, func(n Node) bool { return n.ID == id })
				if i < 0 || !nodes[i].Recovered() {
					waiting = append(waiting, id)
				}
			}
			if done := len(leaves) - len(waiting); done != last {
				last = done
				line := fmt.Sprintf("%d/%d leaves recovered", done, len(leaves))
				if len(waiting) > 0 && len(waiting) <= 8 {
					short := make([]string, len(waiting))
					for i, id := range waiting {
						short[i] = ShortID(id)
					}
					line += "; waiting for " + strings.Join(short, ", ")
				}
				out("stdout", line)
			}
			if len(waiting) == 0 {
				return fmt.Sprintf("list-nodes shows all %d leaves running and recovered", len(leaves)), nil
			}
		} else {
			lastErr = err
			out("stderr", "list-nodes: "+err.Error())
		}
		if !e.clock.Now().Before(deadline) {
			if lastErr != nil {
				return "", fmt.Errorf("leaves not confirmed recovered after %s: list-nodes: %w", timeout, lastErr)
			}
			return "", fmt.Errorf("after %s, %d leaves are still recovering: %s", timeout, len(waiting), strings.Join(waiting, ", "))
		}
		if err := e.sleep(ctx, pollInterval(c)); err != nil {
			return "", err
		}
	}
}

// waitSQL polls the MA until it answers SQL, up to the recovery timeout.
func (e *Engine) waitSQL(ctx context.Context, c *Cluster, run *Run, out OutputFunc) (string, error) {
	timeout := recoveryTimeout(run)
	deadline := e.clock.Now().Add(timeout)
	reported := false
	for {
		err := c.Ping.Ping(ctx)
		if err == nil {
			return "the MA answers SQL", nil
		}
		if !reported {
			out("stdout", "waiting for the MA to answer SQL: "+stepErrorText(err))
			reported = true
		}
		if !e.clock.Now().Before(deadline) {
			return "", fmt.Errorf("the MA does not answer SQL after %s: %w", timeout, err)
		}
		if err := e.sleep(ctx, pollInterval(c)); err != nil {
			return "", err
		}
	}
}

// recheck re-reads the target of every step that was started and not
// finished when the program stopped.
func (e *Engine) recheck(ctx context.Context, rs *runState) map[string]Recheck {
	out := map[string]Recheck{}
	var nodes []Node
	var nodesErr error
	listed := false
	c := rs.cluster
	for _, p := range rs.run.Phases {
		for _, s := range p.Steps {
			if s.Status != StepRunning || s.Kind.ReadOnly() {
				continue
			}
			switch s.Kind {
			case StepStopNode, StepStartNode:
				if !listed {
					nodes, nodesErr = e.listerFor(c).list(ctx)
					listed = true
				}
				want := s.Kind == StepStartNode
				state := map[bool]string{true: "running", false: "stopped"}[want]
				if nodesErr != nil {
					out[s.ID] = Recheck{Evidence: "could not re-read: list-nodes: " + nodesErr.Error()}
					continue
				}
				i := slices.IndexFunc(nodes, func(n Node) bool { return n.ID == s.Target })
				switch {
				case i < 0:
					out[s.ID] = Recheck{Evidence: "list-nodes does not list the node"}
				case nodes[i].Running == want:
					out[s.ID] = Recheck{Reached: true, Evidence: "list-nodes shows the node " + state}
				default:
					out[s.ID] = Recheck{Evidence: "list-nodes shows the node not " + state}
				}
			case StepDetectionOff, StepRestoreDetection:
				want := s.Kind == StepRestoreDetection && rs.run.DetectionOriginal
				on, err := c.Detection.LeafFailureDetection(ctx)
				switch {
				case err != nil:
					out[s.ID] = Recheck{Evidence: "could not re-read leaf_failure_detection: " + err.Error()}
				case on == want:
					out[s.ID] = Recheck{Reached: true, Evidence: "leaf_failure_detection is " + onOff(on)}
				default:
					out[s.ID] = Recheck{Evidence: "leaf_failure_detection is " + onOff(on)}
				}
			default:
				// A statement on a database leaves nothing to re-read: it
				// waits for a person's Retry.
				out[s.ID] = Recheck{}
			}
		}
	}
	return out
}
