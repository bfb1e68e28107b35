package sim

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dolthub/vitess/go/mysql"
)

// FaultForms lists the fault SPECs Inject, --fault and POST /faults accept.
// NODE is a node id as State shows it; DB is a user database.
const FaultForms = `  leaf-offline:NODE         the MA sees the leaf offline (and fails it over when leaf_failure_detection is ON)
  aggregator-offline:NODE   the MA sees the child aggregator offline
  orphan:DB                 an orphaned copy of DB's partition 0 on a leaf
  rebalance-pending:DB      EXPLAIN REBALANCE PARTITIONS ON DB returns a plan
  redundancy-pending:DB     EXPLAIN RESTORE REDUNDANCY ON DB returns a plan
  stale-backup:DB           DB's newest successful backup is 30 days old
  stop-fails:NODE           sdb-admin stop-node fails for NODE (exit 1)
  start-fails:NODE          sdb-admin start-node fails for NODE (exit 1)
  stuck-recovering:NODE     the leaf stays recovering
  sql-error:PREFIX          statements starting with PREFIX (any case) fail with a MySQL error
  ssh-drop                  the next SSH command's session drops mid-output, without an exit status
  slow:DURATION             every SQL statement is delayed by DURATION (e.g. 200ms)
  clear                     clear every fault
  clear:SPEC                clear one fault`

// fault is one parsed SPEC.
type fault struct {
	kind string // the part before the colon
	arg  string // NODE, DB, PREFIX or DURATION
	d    time.Duration
}

func (f fault) String() string {
	if f.arg == "" {
		return f.kind
	}
	return f.kind + ":" + f.arg
}

// ErrBadFault is wrapped by every refused SPEC.
var ErrBadFault = errors.New("bad fault spec")

func badFault(spec, why string) error {
	return fmt.Errorf("%w %q: %s; valid forms:\n%s", ErrBadFault, spec, why, FaultForms)
}

// parseFault reads a SPEC; it does not check that NODE or DB exist.
func parseFault(spec string) (fault, error) {
	spec = strings.TrimSpace(spec)
	kind, arg, hasArg := strings.Cut(spec, ":")
	f := fault{kind: strings.ToLower(kind), arg: arg}
	switch f.kind {
	case "ssh-drop":
		if hasArg {
			return f, badFault(spec, "ssh-drop takes no argument")
		}
		return f, nil
	case "clear":
		if !hasArg {
			return f, nil
		}
		inner, err := parseFault(arg)
		if err != nil {
			return f, err
		}
		if inner.kind == "clear" {
			return f, badFault(spec, "clear:clear is not a fault")
		}
		f.arg = inner.String()
		return f, nil
	case "leaf-offline", "aggregator-offline", "stop-fails", "start-fails", "stuck-recovering",
		"orphan", "rebalance-pending", "redundancy-pending", "stale-backup", "sql-error":
		if strings.TrimSpace(arg) == "" {
			return f, badFault(spec, kind+" needs an argument")
		}
		if f.kind != "sql-error" && f.kind != "orphan" && !strings.HasSuffix(f.kind, "-pending") && f.kind != "stale-backup" {
			f.arg = strings.ToUpper(strings.TrimSpace(arg))
		}
		return f, nil
	case "slow":
		d, err := time.ParseDuration(strings.TrimSpace(arg))
		if err != nil || d < 0 {
			return f, badFault(spec, "slow needs a non-negative Go duration such as 200ms")
		}
		f.d = d
		return f, nil
	}
	return f, badFault(spec, "unknown fault")
}

// faultSet is the active faults.
type faultSet struct {
	active            []fault
	sqlPrefixes       []string
	sshDrops          int
	slow              time.Duration
	orphans           []copyKey
	rebalancePending  map[*database]bool
	redundancyPending map[*database]bool
}

func newFaultSet() faultSet {
	return faultSet{rebalancePending: map[*database]bool{}, redundancyPending: map[*database]bool{}}
}

func (fs *faultSet) specs() []string {
	out := make([]string, 0, len(fs.active))
	for _, f := range fs.active {
		out = append(out, f.String())
	}
	return out
}

// sqlError returns the injected error for a statement, or nil.
func (fs *faultSet) sqlError(n *node, text string) error {
	norm := strings.ToUpper(strings.Join(strings.Fields(text), " "))
	for _, p := range fs.sqlPrefixes {
		if strings.HasPrefix(norm, strings.ToUpper(strings.Join(strings.Fields(p), " "))) {
			return mysql.NewSQLError(mysql.ERUnknownError, mysql.SSUnknownSQLState,
				"Leaf Error (%s): injected failure for statements starting with '%s'", n.addr(), p)
		}
	}
	return nil
}

// Inject applies a fault SPEC (see FaultForms). A SPEC that does not parse,
// or names a node or database that does not exist, is refused with an error
// wrapping ErrBadFault that lists the valid forms.
func (c *Cluster) Inject(spec string) error {
	f, err := parseFault(spec)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("sim: cluster closed")
	}
	if err := c.apply(spec, f, true); err != nil {
		return err
	}
	c.logger.Info("fault", "spec", f.String())
	c.reconcile()
	c.notify()
	return nil
}

func (c *Cluster) faultNode(spec string, f fault, role string) (*node, error) {
	n := c.nodeByID(f.arg)
	if n == nil {
		return nil, badFault(spec, fmt.Sprintf("no node %s (node ids are in GET /state)", f.arg))
	}
	if role != "" && n.role != role {
		return nil, badFault(spec, fmt.Sprintf("node %s is the %s, not a %s", n.id, n.role, role))
	}
	return n, nil
}

func (c *Cluster) faultDB(spec string, f fault) (*database, error) {
	d := c.database(f.arg)
	if d == nil {
		return nil, badFault(spec, fmt.Sprintf("no user database %q (have %s)", f.arg, strings.Join(c.Databases(), ", ")))
	}
	return d, nil
}

// apply sets (on) or clears (!on) one fault; c.mu is held.
func (c *Cluster) apply(spec string, f fault, on bool) error {
	var err error
	var n *node
	var d *database
	switch f.kind {
	case "clear":
		if f.arg == "" {
			for _, a := range append([]fault(nil), c.faults.active...) {
				if err := c.apply(a.String(), a, false); err != nil {
					return err
				}
			}
			return nil
		}
		inner, _ := parseFault(f.arg)
		return c.apply(f.arg, inner, false)
	case "leaf-offline", "stuck-recovering":
		n, err = c.faultNode(spec, f, roleLeaf)
	case "aggregator-offline":
		n, err = c.faultNode(spec, f, roleAggregator)
	case "stop-fails", "start-fails":
		n, err = c.faultNode(spec, f, "")
	case "orphan", "rebalance-pending", "redundancy-pending", "stale-backup":
		d, err = c.faultDB(spec, f)
	}
	if err != nil {
		return err
	}
	if on {
		for i, a := range c.faults.active {
			if a.String() == f.String() && f.kind != "ssh-drop" {
				return nil // already active
			}
			if a.kind == "slow" && f.kind == "slow" {
				c.faults.active = append(c.faults.active[:i], c.faults.active[i+1:]...)
				break // one delay at a time: the new one replaces it
			}
		}
		c.faults.active = append(c.faults.active, f)
	} else {
		found := false
		for i, a := range c.faults.active {
			if a.String() == f.String() {
				c.faults.active = append(c.faults.active[:i], c.faults.active[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			return badFault(spec, "that fault is not active")
		}
	}
	switch f.kind {
	case "leaf-offline", "aggregator-offline":
		n.faultOffline = on
	case "stuck-recovering":
		n.stuck = on
		switch {
		case on && n.running:
			n.recovering = true
		case !on && n.running && n.recovering:
			c.scheduleRecovery(n)
		}
	case "stop-fails":
		n.stopFails = on
	case "start-fails":
		n.startFails = on
	case "orphan":
		if on {
			c.faults.orphans = append(c.faults.orphans, copyKey{d, 0, c.orphanLeaf(d)})
		} else {
			for i, k := range c.faults.orphans {
				if k.db == d {
					c.faults.orphans = append(c.faults.orphans[:i], c.faults.orphans[i+1:]...)
					break
				}
			}
		}
	case "rebalance-pending":
		c.faults.rebalancePending[d] = on
	case "redundancy-pending":
		c.faults.redundancyPending[d] = on
	case "stale-backup":
		c.staleBackup(d, on)
	case "sql-error":
		if on {
			c.faults.sqlPrefixes = append(c.faults.sqlPrefixes, f.arg)
		} else {
			for i, p := range c.faults.sqlPrefixes {
				if p == f.arg {
					c.faults.sqlPrefixes = append(c.faults.sqlPrefixes[:i], c.faults.sqlPrefixes[i+1:]...)
					break
				}
			}
		}
	case "ssh-drop":
		if on {
			c.faults.sshDrops++
		} else if c.faults.sshDrops > 0 {
			c.faults.sshDrops--
		}
	case "slow":
		if on {
			c.faults.slow = f.d
		} else {
			c.faults.slow = 0
		}
	}
	return nil
}

// orphanLeaf picks a leaf for an injected orphan: one that holds no copy of
// the partition, else the first leaf.
func (c *Cluster) orphanLeaf(d *database) *node {
	p := d.parts[0]
	for _, l := range c.leaves() {
		if l != p.master && l != p.replica && !c.copies[copyKey{d, 0, l}] {
			return l
		}
	}
	return p.idealReplica
}

// takeSSHDrop consumes one pending ssh-drop; c.mu is held.
func (c *Cluster) takeSSHDrop() bool {
	if c.faults.sshDrops == 0 {
		return false
	}
	c.faults.sshDrops--
	for i, a := range c.faults.active {
		if a.kind == "ssh-drop" {
			c.faults.active = append(c.faults.active[:i], c.faults.active[i+1:]...)
			break
		}
	}
	return true
}

// staleBackup hides DB's recent successful backups behind one 30 days old,
// or brings them back.
func (c *Cluster) staleBackup(d *database, on bool) {
	if !on {
		kept := c.backups[:0]
		for _, b := range c.backups {
			if !(b.db == d.name && b.status == "Stale") {
				if b.db == d.name && b.status == "Hidden" {
					b.status = "Success"
				}
				kept = append(kept, b)
			}
		}
		c.backups = kept
		return
	}
	for i := range c.backups {
		if c.backups[i].db == d.name && c.backups[i].status == "Success" {
			c.backups[i].status = "Hidden"
		}
	}
	end := time.Now().UTC().Add(-30 * 24 * time.Hour)
	c.addBackup(backupRow{db: d.name, start: end.Add(-2 * time.Minute), end: end, partitions: len(d.parts),
		path: "/backups/" + d.name + ".backup", status: "Stale", typ: "FULL", size: 512})
}
