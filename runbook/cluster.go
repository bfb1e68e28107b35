package runbook

import (
	"context"
	"time"
)

// This file declares what runbook needs from a SingleStore cluster, in
// runbook's own words. Package cluster implements these interfaces over SQL
// and sdb-admin; cluster/sim serves a simulated cluster behind the same
// adapters. runbook never imports a MySQL, SSH or Slack package.

// Role is a node's role in the cluster.
type Role string

// Node roles, as sdb-admin list-nodes reports them (normalised).
const (
	RoleMaster     Role = "master"
	RoleAggregator Role = "aggregator" // a child aggregator
	RoleLeaf       Role = "leaf"
	RoleUnknown    Role = "unknown"
)

// Node is one SingleStore node as the toolbox sees it.
type Node struct {
	ID                string // memsqlId: upper-case hex
	Role              Role
	Host              string
	Port              int
	Running           bool   // processState == Running
	Connectable       bool   // isConnectable
	RecoveryState     string // "Online" when the node's databases are fully recovered
	AvailabilityGroup int
	Version           string
}

// Recovered reports whether the node is running and its databases are fully
// recovered.
func (n Node) Recovered() bool {
	return n.Running && equalFold(n.RecoveryState, "online")
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// CheckStatus is the verdict of one preflight check.
type CheckStatus string

// Check verdicts. Fail blocks the run; Warn is advisory.
const (
	Pass CheckStatus = "pass"
	Warn CheckStatus = "warn"
	Fail CheckStatus = "fail"
)

// Preflight check names (DESIGN.md); the JSON output and the card use them.
const (
	CheckLeavesOnline          = "leaves_online"
	CheckAggregatorsOnline     = "aggregators_online"
	CheckNoOrphanPartitions    = "no_orphan_partitions"
	CheckNodesMatchToolbox     = "nodes_match_toolbox"
	CheckRestoreRedundancyPlan = "restore_redundancy_plan"
	CheckRebalancePlan         = "rebalance_plan"
	CheckRecentBackup          = "recent_backup"
	CheckPackagesVerified      = "packages_verified"
)

// Check is one preflight check's result; Detail names the evidence.
type Check struct {
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	Detail string      `json:"detail"`
}

// Report is the result of preflight: the checks plus the facts the later
// phases need, read at the same moment.
type Report struct {
	Cluster   string        `json:"cluster"`
	OK        bool          `json:"ok"` // no check failed
	Checks    []Check       `json:"checks"`
	At        time.Time     `json:"at"`
	Took      time.Duration `json:"took_ns"`
	Databases []string      `json:"databases"` // user databases, system ones excluded
	Nodes     []Node        `json:"nodes"`     // as list-nodes reported them
	// LeafFailureDetection is the value of leaf_failure_detection read at
	// preflight: the value finalize restores if the run changed it.
	LeafFailureDetection bool `json:"leaf_failure_detection"`
}

// Failed returns the checks whose status is Fail.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c)
		}
	}
	return out
}

// OutputFunc receives one line of a command's output as it arrives. stream
// is "stdout" or "stderr".
type OutputFunc func(stream, line string)

// Preflighter runs the preflight checks against one cluster.
type Preflighter interface {
	// Preflight reads the cluster concurrently and returns the report.
	// A check that fails is data in the report; the error (Unavailable or
	// Internal) means the checks could not be decided at all.
	Preflight(ctx context.Context) (*Report, error)
}

// DatabaseAdmin runs the per-database statements of the runbook on the
// master aggregator. Database names are quoted by the implementation.
type DatabaseAdmin interface {
	Snapshot(ctx context.Context, db string) error
	SyncSnapshot(ctx context.Context, db string) error
	Backup(ctx context.Context, db, to string) error
}

// FailureDetection reads and sets leaf_failure_detection on the MA.
type FailureDetection interface {
	LeafFailureDetection(ctx context.Context) (bool, error)
	SetLeafFailureDetection(ctx context.Context, on bool) error
}

// Pinger tells whether the master aggregator answers SQL.
type Pinger interface {
	Ping(ctx context.Context) error
}

// NodeController lists, stops and starts nodes through the toolbox
// (sdb-admin). Stop and Start return after the command exits; the caller
// confirms the result with ListNodes.
type NodeController interface {
	ListNodes(ctx context.Context) ([]Node, error)
	StopNode(ctx context.Context, id string, out OutputFunc) error
	StartNode(ctx context.Context, id string, out OutputFunc) error
}

// Cluster bundles everything the engine needs to run maintenance on one
// cluster: its adapters and its settings from the config.
type Cluster struct {
	Name      string
	Preflight Preflighter
	DB        DatabaseAdmin
	Detection FailureDetection
	Ping      Pinger
	Nodes     NodeController

	BackupTo        string        // BACKUP DATABASE target; "" skips the backup phase
	AutoApprove     []PhaseName   // gates that need no human
	RecoveryTimeout time.Duration // how long start waits for leaves to recover
	StopParallelism int           // leaves stopped/started at a time; 0 = all
	PollInterval    time.Duration // list-nodes polling while waiting; 0 = 1s
	// ConfirmTimeout is how long list-nodes may take to show a node stopped
	// or running after its stop-node or start-node exited; 0 = 2m.
	ConfirmTimeout time.Duration
}

// ClusterSource resolves a cluster name to its adapters. An unknown name is
// an Invalid error that lists the known names.
type ClusterSource interface {
	Cluster(ctx context.Context, name string) (*Cluster, error)
	Names() []string
}
