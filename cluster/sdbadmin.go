package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// SDBAdmin controls nodes with sdb-admin on the toolbox host: list-nodes,
// and stop-node/start-node with one --memsql-id per call.
type SDBAdmin struct {
	Runner  Runner
	Command string // the sdb-admin command on the toolbox host; default "sdb-admin"
	// ListTimeout bounds list-nodes, which only reads; 0 leaves it to the
	// context. Stop and start are bounded by their context alone: a node
	// may take long to stop.
	ListTimeout time.Duration
}

var _ runbook.NodeController = (*SDBAdmin)(nil)

// command returns the validated sdb-admin command.
func (a *SDBAdmin) command() (string, error) {
	if a.Runner == nil {
		return "", runbook.Errorf(runbook.Internal, "sdb-admin: no runner configured")
	}
	cmd := a.Command
	if cmd == "" {
		cmd = "sdb-admin"
	}
	if err := validCommand(cmd); err != nil {
		return "", runbook.Wrap(runbook.Invalid, err, "sdb-admin: %v", err)
	}
	return cmd, nil
}

// ListNodes runs `sdb-admin list-nodes --json` and returns the nodes.
// A non-zero exit or output that is not the expected JSON is an
// Unavailable error that carries the output.
func (a *SDBAdmin) ListNodes(ctx context.Context) ([]runbook.Node, error) {
	base, err := a.command()
	if err != nil {
		return nil, err
	}
	cmd := base + " list-nodes --json"
	if a.ListTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.ListTimeout)
		defer cancel()
	}
	var stdout bytes.Buffer
	err = a.Runner.Run(ctx, cmd, func(stream, line string) {
		if stream == "stdout" {
			stdout.WriteString(line)
			stdout.WriteByte('\n')
		}
	})
	if err != nil {
		return nil, commandError(cmd, err)
	}
	nodes, err := parseListNodes(stdout.Bytes())
	if err != nil {
		return nil, runbook.Wrap(runbook.Unavailable, err, "%s: %v; output: %s", cmd, err, clip(stdout.String(), 2000))
	}
	return nodes, nil
}

// StopNode runs `sdb-admin stop-node --memsql-id ID --yes`. id must be a
// memsqlId (hex); anything else is an Invalid error and nothing runs.
func (a *SDBAdmin) StopNode(ctx context.Context, id string, out runbook.OutputFunc) error {
	return a.nodeCommand(ctx, "stop-node", id, out)
}

// StartNode runs `sdb-admin start-node --memsql-id ID --yes`, with the same
// rules as StopNode.
func (a *SDBAdmin) StartNode(ctx context.Context, id string, out runbook.OutputFunc) error {
	return a.nodeCommand(ctx, "start-node", id, out)
}

func (a *SDBAdmin) nodeCommand(ctx context.Context, verb, id string, out runbook.OutputFunc) error {
	if !ValidNodeID(id) {
		return runbook.Errorf(runbook.Invalid, "%s: node ID %q is not a memsqlId (8 to 64 hex digits)", verb, id)
	}
	base, err := a.command()
	if err != nil {
		return err
	}
	cmd := fmt.Sprintf("%s %s --memsql-id %s --yes", base, verb, id)
	if err := a.Runner.Run(ctx, cmd, out); err != nil {
		return commandError(cmd, err)
	}
	return nil
}

// commandError keeps runbook errors (unreachable host, dropped session)
// and turns a non-zero exit into an Unavailable error that still unwraps
// to the *ExitError with the full output.
func commandError(cmd string, err error) error {
	var exit *ExitError
	if errors.As(err, &exit) {
		return runbook.Wrap(runbook.Unavailable, exit, "%s exited with status %d: %s", cmd, exit.Code, clip(strings.TrimSpace(exit.Output), 2000))
	}
	if runbook.ErrorKind(err) != runbook.Internal {
		return err
	}
	return runbook.Wrap(runbook.Unavailable, err, "%s: %v", cmd, err)
}

// clip keeps the last n bytes of s.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// listNodesJSON is the shape of `sdb-admin list-nodes --json`. Fields not
// listed here are ignored; numbers may arrive as numbers or strings.
type listNodesJSON struct {
	Nodes *[]struct {
		MemsqlID          string    `json:"memsqlId"`
		Role              string    `json:"role"`
		Host              string    `json:"host"`
		BindAddress       string    `json:"bindAddress"`
		Port              flexInt   `json:"port"`
		ProcessState      string    `json:"processState"`
		IsConnectable     flexBool  `json:"isConnectable"`
		Version           string    `json:"version"`
		RecoveryState     string    `json:"recoveryState"`
		AvailabilityGroup flexInt   `json:"availabilityGroup"`
		NodeID            flexIDStr `json:"nodeID"`
	} `json:"nodes"`
}

// parseListNodes reads list-nodes --json output into nodes. Every node
// needs a valid memsqlId and a port.
func parseListNodes(data []byte) ([]runbook.Node, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("list-nodes printed nothing")
	}
	var doc listNodesJSON
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("list-nodes output is not JSON: %w", err)
	}
	if doc.Nodes == nil {
		return nil, fmt.Errorf(`list-nodes JSON has no "nodes" list`)
	}
	out := make([]runbook.Node, 0, len(*doc.Nodes))
	seen := map[string]bool{}
	for i, n := range *doc.Nodes {
		if !ValidNodeID(n.MemsqlID) {
			return nil, fmt.Errorf("list-nodes node %d: memsqlId %q is not 8 to 64 hex digits", i+1, n.MemsqlID)
		}
		// One node listed twice would be stopped twice and could stand in
		// for a node that is missing.
		id := strings.ToUpper(n.MemsqlID)
		if seen[id] {
			return nil, fmt.Errorf("list-nodes lists node %s twice", id)
		}
		seen[id] = true
		if n.Port <= 0 || n.Port > 65535 {
			return nil, fmt.Errorf("list-nodes node %s: port %d is not a port", n.MemsqlID, n.Port)
		}
		host := n.Host
		if host == "" {
			host = n.BindAddress
		}
		out = append(out, runbook.Node{
			ID:                id,
			Role:              nodeRole(n.Role),
			Host:              host,
			Port:              int(n.Port),
			Running:           strings.EqualFold(n.ProcessState, "running"),
			Connectable:       bool(n.IsConnectable),
			RecoveryState:     n.RecoveryState,
			AvailabilityGroup: int(n.AvailabilityGroup),
			Version:           n.Version,
		})
	}
	return out, nil
}

func nodeRole(s string) runbook.Role {
	switch strings.ToLower(s) {
	case "master", "master aggregator", "ma":
		return runbook.RoleMaster
	case "aggregator", "child aggregator", "child", "ca":
		return runbook.RoleAggregator
	case "leaf":
		return runbook.RoleLeaf
	}
	return runbook.RoleUnknown
}

// flexInt reads a JSON number, a numeric string, or null (0).
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		*f = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%s is not an integer", b)
	}
	*f = flexInt(n)
	return nil
}

// flexBool reads a JSON boolean, "true"/"false", 1/0, or null (false).
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		*f = false
		return nil
	}
	v, ok := parseBool(s)
	if !ok {
		return fmt.Errorf("%s is not a boolean", b)
	}
	*f = flexBool(v)
	return nil
}

// flexIDStr reads an ID that some versions print as a number and others
// as a string.
type flexIDStr string

func (f *flexIDStr) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexIDStr(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*f = flexIDStr(n.String())
		return nil
	}
	if string(b) == "null" {
		*f = ""
		return nil
	}
	return fmt.Errorf("%s is neither a string nor a number", b)
}
