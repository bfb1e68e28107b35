package sim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// This file holds the cluster's state and the rules that change it: the
// topology, partition placement, failover and the runbook-order violations.
// Every function here expects c.mu to be held and never sleeps.

// Node roles as /state spells them.
const (
	roleMaster     = "master"
	roleAggregator = "aggregator"
	roleLeaf       = "leaf"
)

// Rules recorded as violations.
const (
	RuleLeafStoppedBeforeMaster       = "leaf stopped before master"
	RuleAggregatorStoppedBeforeMaster = "aggregator stopped before master"
	RuleAggregatorStartedEarly        = "aggregator started before leaves recovered"
	RuleMasterStartedEarly            = "master started before leaves recovered"
)

const serverVersion = "8.9.3"

// node is one SingleStore node: its identity, its process and what the MA
// knows about it.
type node struct {
	id     string // memsqlId, 40 upper-case hex characters
	nodeID int    // the MA's small integer id (NodeId / NodeID columns)
	role   string
	port   int
	ag     int   // availability group of a leaf (1 or 2); 0 for aggregators
	pair   *node // the leaf in the other availability group

	running    bool
	recovering bool // running, databases still replaying
	busy       bool // a stop-node or start-node is in progress
	recoverAt  *time.Timer

	// faults
	faultOffline bool // leaf-offline / aggregator-offline
	stuck        bool // stuck-recovering
	stopFails    bool
	startFails   bool

	sql *sqlNode // the node's MySQL listener
}

// reachable reports whether the MA can talk to the node.
func (n *node) reachable() bool { return n.running && !n.faultOffline }

// state is the node's state as the MA reports it (SHOW LEAVES/AGGREGATORS).
func (n *node) state() string {
	switch {
	case !n.reachable():
		return "offline"
	case n.recovering:
		return "recovering"
	default:
		return "online"
	}
}

// recoveryState is list-nodes' recoveryState.
func (n *node) recoveryState() string {
	switch {
	case !n.running:
		return "Offline"
	case n.recovering:
		return "Recovering"
	default:
		return "Online"
	}
}

func (n *node) process() string {
	if n.running {
		return "running"
	}
	return "stopped"
}

// adminRole is sdb-admin's spelling of the role.
func (n *node) adminRole() string {
	switch n.role {
	case roleMaster:
		return "Master"
	case roleAggregator:
		return "Aggregator"
	default:
		return "Leaf"
	}
}

func (n *node) addr() string { return fmt.Sprintf("127.0.0.1:%d", n.port) }

func (n *node) String() string {
	return fmt.Sprintf("%s %s (%s)", n.adminRole(), n.id, n.addr())
}

// partition is one ordinal of one database: where the MA's metadata puts
// its master and replica.
type partition struct {
	ordinal int
	master  *node
	replica *node // nil once redundancy is lost
	// ideal placement, what rebalance would restore
	idealMaster, idealReplica *node
}

// database is one user database.
type database struct {
	name      string
	parts     []*partition
	snapshots int // SNAPSHOT DATABASE count, moves Position along
}

func (d *database) partName(ordinal int) string { return fmt.Sprintf("%s_%d", d.name, ordinal) }

// copyRef is one physical copy of a partition database on a leaf.
type copyRef struct {
	db       *database
	ordinal  int
	leaf     *node
	injected bool // an orphan:DB fault
}

// role is the copy's role as SHOW CLUSTER STATUS reports it.
func (r copyRef) role() string {
	if r.injected {
		return "Orphan"
	}
	return partitionRole(r.db.parts[r.ordinal], r.leaf)
}

func newNodeID() string {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// buildTopology creates the nodes and places partitions: leaves are paired
// across availability groups, every ordinal has its master on one leaf of a
// pair and its replica on the other, masters alternating within the pair.
func (c *Cluster) buildTopology(aggregators, leaves, partitions int, dbs []string) {
	next := 1
	add := func(role string, ag int) *node {
		n := &node{id: newNodeID(), nodeID: next, role: role, ag: ag, running: true}
		next++
		c.nodes = append(c.nodes, n)
		return n
	}
	c.ma = add(roleMaster, 0)
	for i := 0; i < aggregators; i++ {
		add(roleAggregator, 0)
	}
	var pairs [][2]*node
	for i := 0; i < leaves/2; i++ {
		a, b := add(roleLeaf, 1), add(roleLeaf, 2)
		a.pair, b.pair = b, a
		pairs = append(pairs, [2]*node{a, b})
	}
	for _, name := range dbs {
		d := &database{name: name}
		for o := 0; o < partitions; o++ {
			p := pairs[o%len(pairs)]
			m, r := p[0], p[1]
			if (o/len(pairs))%2 == 1 {
				m, r = r, m
			}
			d.parts = append(d.parts, &partition{ordinal: o, master: m, replica: r, idealMaster: m, idealReplica: r})
			c.copies[copyKey{d, o, m}] = true
			c.copies[copyKey{d, o, r}] = true
		}
		c.dbs = append(c.dbs, d)
	}
}

// copyKey identifies a physical partition copy on a leaf.
type copyKey struct {
	db      *database
	ordinal int
	leaf    *node
}

func (c *Cluster) leaves() []*node { return c.byRole(roleLeaf) }

func (c *Cluster) aggregators() []*node { return c.byRole(roleAggregator) }

func (c *Cluster) byRole(role string) []*node {
	var out []*node
	for _, n := range c.nodes {
		if n.role == role {
			out = append(out, n)
		}
	}
	return out
}

func (c *Cluster) nodeByID(id string) *node {
	for _, n := range c.nodes {
		if strings.EqualFold(n.id, id) {
			return n
		}
	}
	return nil
}

func (c *Cluster) database(name string) *database {
	for _, d := range c.dbs {
		if d.name == name {
			return d
		}
	}
	return nil
}

// partitionRole is the role of a physical copy as SHOW CLUSTER STATUS
// reports it: a copy the metadata does not name is an orphan.
func partitionRole(p *partition, leaf *node) string {
	switch leaf {
	case p.master:
		return "Master"
	case p.replica:
		return "Replica"
	default:
		return "Orphan"
	}
}

// physicalCopies lists every partition copy on the leaves, failover orphans
// and injected orphans alike, in a stable order.
func (c *Cluster) physicalCopies() []copyRef {
	var out []copyRef
	for _, leaf := range c.leaves() {
		for _, d := range c.dbs {
			for _, p := range d.parts {
				if c.copies[copyKey{d, p.ordinal, leaf}] {
					out = append(out, copyRef{db: d, ordinal: p.ordinal, leaf: leaf})
				}
			}
			for _, k := range c.faults.orphans {
				if k.db == d && k.leaf == leaf {
					out = append(out, copyRef{db: d, ordinal: k.ordinal, leaf: leaf, injected: true})
				}
			}
		}
	}
	return out
}

// counts returns partition counts for /state.
func (c *Cluster) counts() PartitionCounts {
	var pc PartitionCounts
	for _, d := range c.dbs {
		for _, p := range d.parts {
			if p.master != nil {
				pc.Master++
			}
			if p.replica != nil {
				pc.Replica++
			}
		}
	}
	for k := range c.copies {
		if partitionRole(k.db.parts[k.ordinal], k.leaf) == "Orphan" {
			pc.Orphan++
		}
	}
	pc.Orphan += len(c.faults.orphans)
	return pc
}

// reconcile applies the MA's failure detection: while the MA runs with
// leaf_failure_detection ON, every unreachable leaf is failed over. It is
// idempotent and called after every change.
func (c *Cluster) reconcile() {
	if !c.ma.running || !c.detection {
		return
	}
	for _, leaf := range c.leaves() {
		if !leaf.reachable() {
			c.failover(leaf)
		}
	}
}

// failover takes an unreachable leaf out of the metadata: its masters are
// promoted on the pair (when the pair is reachable) and its replicas are
// dropped. Its copies stay on disk and show as orphans when it returns.
func (c *Cluster) failover(leaf *node) {
	moved := 0
	for _, d := range c.dbs {
		for _, p := range d.parts {
			if p.master == leaf && p.replica != nil && p.replica.reachable() {
				p.master, p.replica = p.replica, nil
				moved++
			}
			if p.replica == leaf {
				p.replica = nil
			}
		}
	}
	if moved > 0 {
		c.logger.Info("leaf failed over", "node", leaf.id, "partitions", moved)
	}
}

// unrecoveredLeaves lists leaves that are not running and fully recovered.
func (c *Cluster) unrecoveredLeaves() []string {
	var out []string
	for _, l := range c.leaves() {
		if !l.running || l.recovering {
			out = append(out, fmt.Sprintf("%s (%s)", l.id, l.state()))
		}
	}
	return out
}

func (c *Cluster) violate(rule, detail string) {
	v := Violation{At: time.Now().UTC(), Rule: rule, Detail: detail}
	c.violations = append(c.violations, v)
	c.logger.Warn("runbook violation", "rule", rule, "detail", detail)
}

// stopped records that a node's process has exited: its listener closes, the
// order rules are checked and the MA reacts.
func (c *Cluster) stopped(n *node) {
	maUp := c.ma.running && n != c.ma
	if maUp && c.detection {
		switch n.role {
		case roleLeaf:
			c.violate(RuleLeafStoppedBeforeMaster, fmt.Sprintf(
				"%s stopped while the master aggregator ran with leaf_failure_detection ON; its partitions failed over to %s", n, n.pair.id))
		case roleAggregator:
			c.violate(RuleAggregatorStoppedBeforeMaster, fmt.Sprintf(
				"%s stopped while the master aggregator ran with leaf_failure_detection ON", n))
		}
	}
	n.running = false
	n.recovering = false
	if n.recoverAt != nil {
		n.recoverAt.Stop()
		n.recoverAt = nil
	}
	n.sql.stop(true)
	c.reconcile()
}

// started records that a node's process is up again: leaves recover first,
// aggregators check that every leaf has recovered.
func (c *Cluster) started(n *node) {
	if n.role != roleLeaf {
		if un := c.unrecoveredLeaves(); len(un) > 0 {
			rule := RuleAggregatorStartedEarly
			if n.role == roleMaster {
				rule = RuleMasterStartedEarly
			}
			c.violate(rule, fmt.Sprintf("%s started while leaves were not recovered: %s", n, strings.Join(un, ", ")))
		}
	}
	n.running = true
	if n.role == roleLeaf {
		n.recovering = true
		c.scheduleRecovery(n)
	}
	c.reconcile()
}

// scheduleRecovery brings a recovering leaf online after RecoveryTime unless
// it is stuck.
func (c *Cluster) scheduleRecovery(n *node) {
	if n.recoverAt != nil {
		n.recoverAt.Stop()
	}
	n.recoverAt = time.AfterFunc(c.opts.RecoveryTime, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || !n.running || !n.recovering || n.stuck {
			return
		}
		n.recovering = false
		n.recoverAt = nil
		c.logger.Info("leaf recovered", "node", n.id)
		c.notify()
	})
}

// plan rows -----------------------------------------------------------------

type planRow struct {
	action  string
	ordinal int
	target  *node
	phase   int
	eta     int // Estimated_Time_Remaining_Ms; <0 is NULL
}

// restoreRedundancyPlan lists the copies RESTORE REDUNDANCY would make: one
// per partition that lost its replica.
func (c *Cluster) restoreRedundancyPlan(d *database) []planRow {
	var rows []planRow
	for _, p := range d.parts {
		if p.master == nil || p.replica != nil {
			continue
		}
		rows = append(rows, planRow{action: "COPY PARTITION FORCE", ordinal: p.ordinal, target: p.master.pair, phase: 2, eta: -1})
	}
	if c.faults.redundancyPending[d] {
		target := d.parts[0].idealReplica
		rows = append(rows, planRow{action: "COPY PARTITION FORCE", ordinal: 0, target: target, phase: 2, eta: -1})
	}
	return rows
}

// rebalancePlan compares the placement with the balanced one: orphans are
// dropped, lost replicas copied back, masters moved home.
func (c *Cluster) rebalancePlan(d *database) []planRow {
	var drops, copies, promotes []planRow
	for _, r := range c.physicalCopies() {
		if r.db == d && r.leaf.reachable() && r.role() == "Orphan" {
			drops = append(drops, planRow{action: "DROP PARTITION", ordinal: r.ordinal, target: r.leaf, phase: 1, eta: 100})
		}
	}
	for _, p := range d.parts {
		if p.master == nil {
			continue
		}
		if p.replica == nil {
			target := p.master.pair
			copies = append(copies, planRow{action: "COPY PARTITION", ordinal: p.ordinal, target: target, phase: 2, eta: 2000})
		}
		if p.master != p.idealMaster && p.idealMaster.reachable() {
			promotes = append(promotes, planRow{action: "PROMOTE PARTITION WITH DROP", ordinal: p.ordinal, target: p.idealMaster, phase: 3, eta: 500})
		}
	}
	rows := append(append(drops, copies...), promotes...)
	if c.faults.rebalancePending[d] {
		p := d.parts[len(d.parts)-1]
		rows = append(rows,
			planRow{action: "COPY PARTITION", ordinal: p.ordinal, target: p.idealReplica, phase: 1, eta: 1500},
			planRow{action: "PROMOTE PARTITION WITH DROP", ordinal: p.ordinal, target: p.idealReplica, phase: 2, eta: 300})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].phase < rows[j].phase })
	return rows
}

// unavailablePartition names the first partition of d whose master (or, with
// replicas, whose replica) the MA cannot reach; "" when all are available.
func (c *Cluster) unavailablePartition(d *database, replicas bool) (string, *node) {
	for _, p := range d.parts {
		if p.master == nil {
			return d.partName(p.ordinal), nil
		}
		if !p.master.reachable() || p.master.recovering {
			return d.partName(p.ordinal), p.master
		}
		if replicas && p.replica != nil && (!p.replica.reachable() || p.replica.recovering) {
			return d.partName(p.ordinal), p.replica
		}
	}
	return "", nil
}
