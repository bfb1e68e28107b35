package runbook

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Step IDs that are not per database or per node.
const (
	stepIDPreflight        = "preflight"
	stepIDPreStopCheck     = "stop/recheck"
	stepIDDetectionOff     = "stop/detection-off"
	stepIDWaitRecovered    = "start/recovered"
	stepIDWaitSQL          = "start/sql"
	stepIDRestoreDetection = "finalize/detection"
	stepIDPostCheck        = "finalize/post-check"
)

// Tiers of the stop and start phases: the only safe order.
const (
	// stopTierRecheck is the read-only re-check of the cluster's health,
	// before any node is touched. It is below the MA's tier rather than
	// shifting the others up, so that runs stored with the older tiers
	// (and planDetectionOff on them) keep their meaning.
	stopTierRecheck = -1
	stopTierMA      = 0
	stopTierCAs     = 1
	stopTierLeaves  = 2
	// stopTierMALast is where the MA's stop moves after detection-off: the
	// child aggregators and leaves stop first, the MA is tried again last.
	stopTierMALast = 3

	startTierLeaves    = 0
	startTierRecovered = 1
	startTierCAs       = 2
	startTierMA        = 3
	startTierSQL       = 4
)

// NewRun returns a new open run of cluster c, started by req.By at now, with
// its preflight about to run. The engine stores it; nothing has happened yet.
func NewRun(id string, req StartRequest, c *Cluster, now time.Time) *Run {
	r := &Run{
		ID:         id,
		Cluster:    c.Name,
		StartedBy:  req.By,
		StartedAt:  now,
		Window:     req.Window,
		WindowEnds: req.WindowEnds,
		Status:     RunActive,
		Version:    1,
		Current:    PhasePreflight,
		Settings: RunSettings{
			BackupTo:        c.BackupTo,
			AutoApprove:     slices.Clone(c.AutoApprove),
			Parallelism:     c.StopParallelism,
			RecoveryTimeout: c.RecoveryTimeout,
		},
	}
	for _, name := range Phases {
		r.Phases = append(r.Phases, &Phase{Name: name, Status: PhasePending})
	}
	pf := r.Phase(PhasePreflight)
	pf.Status = PhaseRunning
	pf.StartedAt = now
	pf.Steps = []*Step{{
		ID: stepIDPreflight, Phase: PhasePreflight, Kind: StepPreflight,
		Label: "preflight checks", Status: StepPending,
	}}
	return r
}

// planFromPreflight lays out the steps of backup, snapshot, sync-snapshot
// and stop from a passing preflight report. It fails when the report does
// not describe a cluster the runbook can take down safely.
func planFromPreflight(r *Run, rep *Report) error {
	var master []Node
	var aggs, leaves []Node
	for _, n := range rep.Nodes {
		switch n.Role {
		case RoleMaster:
			master = append(master, n)
		case RoleAggregator:
			aggs = append(aggs, n)
		case RoleLeaf:
			leaves = append(leaves, n)
		default:
			return fmt.Errorf("list-nodes reports node %s with role %q; the runbook cannot place it in the stop order", n.ID, n.Role)
		}
	}
	if len(master) != 1 {
		return fmt.Errorf("list-nodes reports %d master aggregators; the runbook needs exactly one", len(master))
	}
	byAddr := func(a, b Node) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Port, b.Port), cmp.Compare(a.ID, b.ID))
	}
	slices.SortFunc(aggs, byAddr)
	slices.SortFunc(leaves, byAddr)

	dbs := slices.Clone(rep.Databases)
	slices.Sort(dbs)
	var backup, snap, sync []*Step
	for i, db := range dbs {
		// Database steps run one after another (one tier each): they load
		// the MA, and one at a time keeps the output readable.
		backup = append(backup, &Step{ID: "backup/" + db, Phase: PhaseBackup, Kind: StepBackup, Tier: i, Target: db,
			Label: fmt.Sprintf("BACKUP DATABASE %s TO %s", displayIdent(db), strconv.Quote(r.Settings.BackupTo))})
		snap = append(snap, &Step{ID: "snapshot/" + db, Phase: PhaseSnapshot, Kind: StepSnapshot, Tier: i, Target: db,
			Label: "SNAPSHOT DATABASE " + displayIdent(db)})
		sync = append(sync, &Step{ID: "sync-snapshot/" + db, Phase: PhaseSyncSnapshot, Kind: StepSyncSnapshot, Tier: i, Target: db,
			Label: "_SYNC_SNAPSHOT " + displayIdent(db)})
	}
	r.Phase(PhaseBackup).Steps = pending(backup)
	r.Phase(PhaseSnapshot).Steps = pending(snap)
	r.Phase(PhaseSyncSnapshot).Steps = pending(sync)

	// Approvals can come hours after preflight: before the first stop
	// command the checks run again, so that a leaf or aggregator that went
	// offline, or orphaned partitions, stop the phase while every node is
	// still up.
	stop := []*Step{
		{ID: stepIDPreStopCheck, Phase: PhaseStop, Kind: StepPreStopCheck, Tier: stopTierRecheck,
			Label: "re-check cluster health before stop"},
		nodeStep(PhaseStop, StepStopNode, stopTierMA, master[0]),
	}
	for _, n := range aggs {
		stop = append(stop, nodeStep(PhaseStop, StepStopNode, stopTierCAs, n))
	}
	for _, n := range leaves {
		stop = append(stop, nodeStep(PhaseStop, StepStopNode, stopTierLeaves, n))
	}
	r.Phase(PhaseStop).Steps = pending(stop)
	// Start and finalize are laid out when they are reached: what start
	// does depends on what stop actually did.
	r.Phase(PhaseStart).Steps = nil
	r.Phase(PhaseFinalize).Steps = nil
	return nil
}

// planStart lays out the start phase from the stop phase: every node whose
// stop command may have been sent is started again, leaves first, then
// (once the leaves are recovered) the child aggregators, then the MA; then
// the MA must answer SQL.
func planStart(r *Run) {
	stop := r.Phase(PhaseStop)
	var steps []*Step
	leaves := 0
	for _, s := range stop.Steps {
		if s.Kind != StepStopNode || s.Attempts == 0 {
			continue
		}
		tier := startTierMA
		switch s.Role {
		case RoleLeaf:
			tier = startTierLeaves
			leaves++
		case RoleAggregator:
			tier = startTierCAs
		}
		n := Node{ID: s.Target, Role: s.Role}
		st := nodeStep(PhaseStart, StepStartNode, tier, n)
		st.Label = "start " + strings.TrimPrefix(s.Label, "stop ")
		steps = append(steps, st)
	}
	if leaves > 0 {
		steps = append(steps, &Step{ID: stepIDWaitRecovered, Phase: PhaseStart, Kind: StepWaitRecovered, Tier: startTierRecovered,
			Label: fmt.Sprintf("wait until %d %s recovered", leaves, plural(leaves, "leaf is", "leaves are"))})
	}
	steps = append(steps, &Step{ID: stepIDWaitSQL, Phase: PhaseStart, Kind: StepWaitSQL, Tier: startTierSQL,
		Label: "wait until the MA answers SQL"})
	slices.SortStableFunc(steps, func(a, b *Step) int { return cmp.Compare(a.Tier, b.Tier) })
	r.Phase(PhaseStart).Steps = pending(steps)
}

// planFinalize lays out finalize: restore leaf_failure_detection if the run
// changed it, then the post-checks.
func planFinalize(r *Run) {
	var steps []*Step
	if r.DetectionChanged {
		steps = append(steps, &Step{ID: stepIDRestoreDetection, Phase: PhaseFinalize, Kind: StepRestoreDetection, Tier: 0,
			Label: "SET GLOBAL leaf_failure_detection = " + onOff(r.DetectionOriginal)})
	}
	steps = append(steps, &Step{ID: stepIDPostCheck, Phase: PhaseFinalize, Kind: StepPostCheck, Tier: 1,
		Label: "post-checks (the preflight checks again)"})
	r.Phase(PhaseFinalize).Steps = pending(steps)
}

// planDetectionOff changes the stop plan after the MA would not stop: turn
// leaf_failure_detection off on the MA first, then stop the child
// aggregators and the leaves, and try the MA once more, last. Trying it last
// (rather than leaving it running) keeps the goal of the runbook, a cluster
// that is entirely down for maintenance, and a second failure can still be
// skipped with a reason now that no leaf can fail over.
func planDetectionOff(r *Run) {
	stop := r.Phase(PhaseStop)
	for _, s := range stop.Steps {
		if s.Kind == StepStopNode && s.Role == RoleMaster {
			s.Tier = stopTierMALast
			s.Status = StepPending
			s.Label = s.Label + " (again, last)"
		}
	}
	stop.Steps = append([]*Step{{ID: stepIDDetectionOff, Phase: PhaseStop, Kind: StepDetectionOff, Tier: stopTierMA,
		Label: "SET GLOBAL leaf_failure_detection = OFF", Status: StepPending}}, stop.Steps...)
	slices.SortStableFunc(stop.Steps, func(a, b *Step) int { return cmp.Compare(a.Tier, b.Tier) })
}

func nodeStep(phase PhaseName, kind StepKind, tier int, n Node) *Step {
	verb := "stop"
	if kind == StepStartNode {
		verb = "start"
	}
	label := fmt.Sprintf("%s %s %s", verb, roleShort(n.Role), ShortID(n.ID))
	if n.Host != "" {
		label += " (" + net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) + ")"
	}
	return &Step{ID: string(verb) + "/" + n.ID, Phase: phase, Kind: kind, Tier: tier, Role: n.Role, Target: n.ID, Label: label}
}

func pending(steps []*Step) []*Step {
	for _, s := range steps {
		s.Status = StepPending
	}
	return steps
}

// ShortID shortens a node ID for people: its first 8 characters and an
// ellipsis.
func ShortID(id string) string {
	if len(id) <= 10 {
		return id
	}
	return id[:8] + "…"
}

func roleShort(r Role) string {
	switch r {
	case RoleMaster:
		return "MA"
	case RoleAggregator:
		return "CA"
	case RoleLeaf:
		return "leaf"
	}
	return string(r)
}

// displayIdent quotes a database name the way the statements do, for
// showing them to people. The statements themselves are built by the
// cluster package.
func displayIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

func onOff(on bool) string {
	if on {
		return "ON"
	}
	return "OFF"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
