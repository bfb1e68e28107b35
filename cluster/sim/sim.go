// Package sim is a simulated SingleStore cluster for tests and demos.
//
// Every node (the master aggregator, the child aggregators and the leaves)
// serves the MySQL wire protocol on its own 127.0.0.1 port, and a stopped
// node's port refuses connections. A toolbox host answers `sdb-admin
// list-nodes --json`, `stop-node` and `start-node` over real SSH. The
// cluster keeps partitions with redundancy 2 across availability groups,
// fails leaves over the way the master aggregator does, records runbook-order
// violations, and takes injected faults. A control endpoint serves the state
// as JSON and takes faults over HTTP.
//
// Start one per test; it starts in a few milliseconds:
//
//	c, err := sim.Start(ctx, sim.Options{})
//	defer c.Close()
//	db, _ := sql.Open("mysql", sim.DefaultUser+":"+sim.DefaultPassword+"@tcp("+c.MySQLAddr()+")/")
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dolthub/vitess/go/mysql"
)

// Credentials the master aggregator accepts unless Options say otherwise.
const (
	DefaultUser     = "sdbmaint"
	DefaultPassword = "sim-password"
)

// Options configure a simulated cluster. Zero values take the defaults.
type Options struct {
	Aggregators int      // child aggregators; 0 means 2, negative means none (the MA always exists)
	Leaves      int      // even (availability groups 1 and 2 are paired); default 4
	Databases   []string // user databases; default ["sales", "web"]
	Partitions  int      // per database; default 8

	// How long sdb-admin takes to stop and start a node, and how long a
	// started leaf stays recovering. Defaults 20ms, 20ms, 50ms.
	StopTime, StartTime, RecoveryTime time.Duration

	Faults []string // fault SPECs applied at start, as for --fault

	User, Password string // SQL credentials; default DefaultUser / DefaultPassword

	Logger *slog.Logger // default: discard
}

func (o *Options) setDefaults() error {
	switch {
	case o.Aggregators == 0:
		o.Aggregators = 2
	case o.Aggregators < 0:
		o.Aggregators = 0
	}
	if o.Leaves == 0 {
		o.Leaves = 4
	}
	if o.Leaves < 2 || o.Leaves%2 != 0 {
		return fmt.Errorf("leaves: want an even number of at least 2 (availability groups 1 and 2 are paired), got %d", o.Leaves)
	}
	if len(o.Databases) == 0 {
		o.Databases = []string{"sales", "web"}
	}
	seen := map[string]bool{}
	for _, d := range o.Databases {
		switch {
		case d == "":
			return errors.New("databases: empty database name")
		case isSystemDatabase(d):
			return fmt.Errorf("databases: %q is a system database", d)
		case seen[d]:
			return fmt.Errorf("databases: %q listed twice", d)
		}
		seen[d] = true
	}
	if o.Partitions == 0 {
		o.Partitions = 8
	}
	if o.Partitions < 0 {
		return fmt.Errorf("partitions: want at least 1, got %d", o.Partitions)
	}
	for _, d := range []*time.Duration{&o.StopTime, &o.StartTime, &o.RecoveryTime} {
		if *d < 0 {
			return fmt.Errorf("durations must not be negative, got %v", *d)
		}
	}
	if o.StopTime == 0 {
		o.StopTime = 20 * time.Millisecond
	}
	if o.StartTime == 0 {
		o.StartTime = 20 * time.Millisecond
	}
	if o.RecoveryTime == 0 {
		o.RecoveryTime = 50 * time.Millisecond
	}
	if o.User == "" {
		o.User = DefaultUser
	}
	if o.Password == "" {
		o.Password = DefaultPassword
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Cluster is a running simulated cluster. All methods are safe for
// concurrent use.
type Cluster struct {
	opts   Options
	logger *slog.Logger
	done   chan struct{} // closed by Close: aborts sleeps

	mu         sync.Mutex
	closed     bool
	nodes      []*node // MA, child aggregators, leaves
	ma         *node
	dbs        []*database
	copies     map[copyKey]bool
	detection  bool // leaf_failure_detection
	globals    map[string]string
	backups    []backupRow
	entries    []LogEntry
	violations []Violation
	faults     faultSet
	changed    chan struct{}

	ssh       *sshServer
	control   *http.Server
	controlLn net.Listener
	wg        sync.WaitGroup // goroutines started by the cluster itself
	conns     connTracker    // MySQL connections, whose goroutines vitess starts
}

// Start builds the cluster and opens every listener. ctx bounds the start
// only; the cluster runs until Close.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	quietVitess()
	c := &Cluster{
		opts:      opts,
		logger:    opts.Logger.With("component", "sim"),
		done:      make(chan struct{}),
		copies:    map[copyKey]bool{},
		detection: true,
		globals:   map[string]string{"aggregator_failure_detection": "ON", "auto_attach": "ON"},
		changed:   make(chan struct{}),
		faults:    newFaultSet(),
	}
	c.conns.init()
	c.buildTopology(opts.Aggregators, opts.Leaves, opts.Partitions, opts.Databases)
	c.seedBackups(time.Now().UTC().Add(-time.Hour))
	if err := c.listen(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("sim: %w", err)
	}
	for _, spec := range opts.Faults {
		if err := c.Inject(spec); err != nil {
			c.Close()
			return nil, fmt.Errorf("sim: %w", err)
		}
	}
	c.logger.Info("simulated cluster ready", "mysql", c.MySQLAddr(), "ssh", c.SSHAddr(), "control", c.ControlURL(),
		"aggregators", opts.Aggregators, "leaves", opts.Leaves, "databases", opts.Databases)
	return c, nil
}

func (c *Cluster) listen(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Nodes answer as soon as they listen, so ports are assigned under the
	// lock that their statements take.
	c.mu.Lock()
	for _, n := range c.nodes {
		n.sql = newSQLNode(c, n)
		if err := n.sql.start("127.0.0.1:0"); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("listen for %s: %w", n.role, err)
		}
		n.port = n.sql.port
	}
	c.mu.Unlock()
	s, err := newSSHServer(c)
	if err != nil {
		return err
	}
	c.ssh = s
	return c.startControl()
}

// Close stops every listener and connection and waits for the cluster's
// goroutines. It is safe to call more than once.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	for _, n := range c.nodes {
		if n.recoverAt != nil {
			n.recoverAt.Stop()
		}
		if n.sql != nil {
			n.sql.stop(false)
			n.sql.release()
		}
	}
	c.mu.Unlock()
	if c.ssh != nil {
		c.ssh.close()
	}
	if c.control != nil {
		c.control.Close()
	}
	c.wg.Wait()
	c.conns.wait()
	return nil
}

// MySQLAddr is the master aggregator's SQL address, "127.0.0.1:P".
func (c *Cluster) MySQLAddr() string { return c.ma.addr() }

// SSHAddr is the toolbox host's SSH address, "127.0.0.1:P".
func (c *Cluster) SSHAddr() string { return c.ssh.addr() }

// ControlURL is the control endpoint's base URL, "http://127.0.0.1:P".
func (c *Cluster) ControlURL() string { return "http://" + c.controlLn.Addr().String() }

// Master returns the master aggregator's node id.
func (c *Cluster) Master() string { return c.ma.id }

// Aggregators returns the child aggregators' node ids.
func (c *Cluster) Aggregators() []string { return ids(c.aggregators()) }

// Leaves returns the leaves' node ids, pairs adjacent (availability group 1
// then 2).
func (c *Cluster) Leaves() []string { return ids(c.leaves()) }

// Databases returns the user databases.
func (c *Cluster) Databases() []string {
	var out []string
	for _, d := range c.dbs {
		out = append(out, d.name)
	}
	return out
}

func ids(ns []*node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.id)
	}
	return out
}

// State is what GET /state serves.
type State struct {
	Nodes                []NodeState     `json:"nodes"`
	LeafFailureDetection bool            `json:"leaf_failure_detection"`
	Partitions           PartitionCounts `json:"partitions"`
	Log                  []LogEntry      `json:"log"`
	Violations           []Violation     `json:"violations"`
	Faults               []string        `json:"faults"` // active fault SPECs
}

// NodeState is one node in State.
type NodeState struct {
	ID                string `json:"id"`
	Role              string `json:"role"` // master | aggregator | leaf
	Host              string `json:"host"`
	Port              int    `json:"port"`
	Process           string `json:"process"`  // running | stopped
	State             string `json:"state"`    // online | offline | recovering
	Recovery          string `json:"recovery"` // Online | Recovering | Offline (stopped)
	AvailabilityGroup int    `json:"availability_group,omitempty"`
}

// PartitionCounts counts partition instances: partitions with a master, with
// a replica, and orphaned copies.
type PartitionCounts struct {
	Master  int `json:"master"`
	Replica int `json:"replica"`
	Orphan  int `json:"orphan"`
}

// LogEntry is one SQL statement a node received or one command the toolbox
// host ran.
type LogEntry struct {
	At    time.Time `json:"at"`
	Via   string    `json:"via"`  // sql | ssh
	Node  string    `json:"node"` // the node id (for ssh: the --memsql-id, or "toolbox")
	Text  string    `json:"text"`
	Error string    `json:"error,omitempty"` // the error returned, if any
}

// Violation is a runbook-order rule the operator broke.
type Violation struct {
	At     time.Time `json:"at"`
	Rule   string    `json:"rule"`
	Detail string    `json:"detail"`
}

// State returns a snapshot of the cluster.
func (c *Cluster) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := State{
		LeafFailureDetection: c.detection,
		Partitions:           c.counts(),
		Log:                  slices.Clone(c.entries),
		Violations:           slices.Clone(c.violations),
		Faults:               c.faults.specs(),
	}
	for _, n := range c.nodes {
		s.Nodes = append(s.Nodes, NodeState{
			ID: n.id, Role: n.role, Host: "127.0.0.1", Port: n.port,
			Process: n.process(), State: n.state(), Recovery: n.recoveryState(), AvailabilityGroup: n.ag,
		})
	}
	if s.Log == nil {
		s.Log = []LogEntry{}
	}
	if s.Violations == nil {
		s.Violations = []Violation{}
	}
	if s.Faults == nil {
		s.Faults = []string{}
	}
	return s
}

// Log returns every SQL statement and SSH command received so far, oldest
// first. Session chatter (SET NAMES, SELECT @@version_comment, USE ...) is
// left out.
func (c *Cluster) Log() []LogEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.entries)
}

// Violations returns the runbook-order violations recorded so far.
func (c *Cluster) Violations() []Violation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.violations)
}

// Changed returns a channel that is closed at the next change of state (a
// node, a partition, the log, a fault). Take the channel, check the
// condition, then wait on it.
func (c *Cluster) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Wait blocks until cond holds for the state, or ctx ends.
func (c *Cluster) Wait(ctx context.Context, cond func(State) bool) (State, error) {
	for {
		ch := c.Changed()
		s := c.State()
		if cond(s) {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s, fmt.Errorf("sim: wait: %w", ctx.Err())
		case <-c.done:
			return s, errors.New("sim: wait: cluster closed")
		}
	}
}

// notify wakes Changed waiters; c.mu must be held.
func (c *Cluster) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// record appends to the log; c.mu must be held.
func (c *Cluster) record(via, nodeID, text string, err error) {
	e := LogEntry{At: time.Now().UTC(), Via: via, Node: nodeID, Text: text}
	if se, ok := err.(*mysql.SQLError); ok {
		e.Error = fmt.Sprintf("Error %d (%s): %s", se.Num, se.State, se.Message)
	} else if err != nil {
		e.Error = err.Error()
	}
	c.entries = append(c.entries, e)
	if e.Error != "" {
		c.logger.Info("received", "via", via, "node", nodeID, "text", text, "error", e.Error)
	} else {
		c.logger.Info("received", "via", via, "node", nodeID, "text", text)
	}
	c.notify()
}

// sleep waits d or until the cluster closes; false means closed.
func (c *Cluster) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.done:
		return false
	}
}

// isSystemDatabase reports the names SingleStore reserves.
func isSystemDatabase(name string) bool {
	switch name {
	case "information_schema", "memsql", "cluster", "sharding":
		return true
	}
	if rest, ok := strings.CutPrefix(name, "sharding_"); ok && rest != "" {
		return true
	}
	if rest, ok := strings.CutPrefix(name, "cluster_"); ok && rest != "" {
		return strings.Trim(rest, "0123456789") == ""
	}
	return false
}
