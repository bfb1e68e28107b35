package cluster

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Leaf is one row of SHOW LEAVES.
type Leaf struct {
	Host              string
	Port              int
	AvailabilityGroup int
	PairHost          string // "" when the leaf has no pair
	PairPort          int
	State             string // lower case: online, offline, recovering, detached, attaching
	NodeID            string // "" on versions before 7.x
	RuntimeState      string // lower case; "" when the server does not report it
}

// Addr is the leaf's host:port.
func (l Leaf) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// Online reports whether the leaf's state is online.
func (l Leaf) Online() bool { return l.State == "online" }

// Aggregator is one row of SHOW AGGREGATORS.
type Aggregator struct {
	Host         string
	Port         int
	State        string // lower case
	Master       bool   // the master aggregator
	Role         string // lower case: leader (MA) or follower; "" on versions without Role
	NodeID       string
	RuntimeState string
}

// Addr is the aggregator's host:port.
func (a Aggregator) Addr() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// Online reports whether the aggregator's state is online.
func (a Aggregator) Online() bool { return a.State == "online" }

// Roles of a database instance in SHOW CLUSTER STATUS, normalised to lower
// case; Slave (6.x and older) is read as replica.
const (
	InstanceMaster    = "master"
	InstanceReplica   = "replica"
	InstanceReference = "reference"
	InstanceOrphan    = "orphan"
)

// DatabaseInstance is one row of SHOW CLUSTER STATUS: one copy of a
// partition database (db_N) or of a reference database on one node.
type DatabaseInstance struct {
	NodeID   string
	Host     string
	Port     int
	Database string // as the server names it: "sales_3" or "sales"
	Role     string // InstanceMaster, InstanceReplica, InstanceReference, InstanceOrphan or another, lower case
	State    string // lower case: online, replicating, offline, ...
	Position string
	Details  string
}

// Addr is the host:port of the node that holds the instance.
func (d DatabaseInstance) Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// PlanStep is one row of EXPLAIN REBALANCE PARTITIONS or EXPLAIN RESTORE
// REDUNDANCY: an action the real command would take.
type PlanStep struct {
	Action     string // COPY PARTITION, PROMOTE PARTITION WITH DROP, ...
	Ordinal    int
	TargetHost string
	TargetPort int
	Phase      int
}

func parseLeaves(t *table) ([]Leaf, error) {
	cols, err := t.needEach("Host", "Port", "State")
	if err != nil {
		return nil, err
	}
	host, port, state := cols[0], cols[1], cols[2]
	ag := t.find("Availability_Group")
	pairHost := t.find("Pair_Host")
	pairPort := t.find("Pair_Port")
	nodeID := t.find("NodeId")
	runtime := t.find("Runtime_State")
	out := make([]Leaf, 0, len(t.rows))
	for r := range t.rows {
		l := Leaf{
			Host:         t.at(r, host).str(),
			PairHost:     t.at(r, pairHost).str(),
			State:        strings.ToLower(t.at(r, state).str()),
			NodeID:       t.at(r, nodeID).str(),
			RuntimeState: strings.ToLower(t.at(r, runtime).str()),
		}
		if l.Port, err = t.at(r, port).port(); err != nil {
			return nil, err
		}
		if l.AvailabilityGroup, err = t.at(r, ag).int(); err != nil {
			return nil, err
		}
		if l.PairPort, err = t.at(r, pairPort).int(); err != nil {
			return nil, err
		}
		if l.PairHost == "" || strings.EqualFold(l.PairHost, "null") {
			l.PairHost, l.PairPort = "", 0
		}
		out = append(out, l)
	}
	return out, nil
}

func parseAggregators(t *table) ([]Aggregator, error) {
	cols, err := t.needEach("Host", "Port", "State")
	if err != nil {
		return nil, err
	}
	host, port, state := cols[0], cols[1], cols[2]
	master := t.find("Master_Aggregator", "Is_Master")
	role := t.find("Role")
	nodeID := t.find("NodeID")
	runtime := t.find("Runtime_State")
	out := make([]Aggregator, 0, len(t.rows))
	for r := range t.rows {
		a := Aggregator{
			Host:         t.at(r, host).str(),
			State:        strings.ToLower(t.at(r, state).str()),
			Role:         strings.ToLower(t.at(r, role).str()),
			NodeID:       t.at(r, nodeID).str(),
			RuntimeState: strings.ToLower(t.at(r, runtime).str()),
		}
		if a.Port, err = t.at(r, port).port(); err != nil {
			return nil, err
		}
		if a.Master, err = t.at(r, master).bool(); err != nil {
			return nil, err
		}
		if a.Role == "leader" || a.Role == "master" {
			a.Master = true
		}
		out = append(out, a)
	}
	return out, nil
}

func parseClusterStatus(t *table) ([]DatabaseInstance, error) {
	cols, err := t.needEach("Host", "Port", "Database|Database_Name", "Role")
	if err != nil {
		return nil, err
	}
	host, port, db, role := cols[0], cols[1], cols[2], cols[3]
	nodeID := t.find("Node_ID")
	state := t.find("State")
	pos := t.find("Position")
	details := t.find("Details")
	out := make([]DatabaseInstance, 0, len(t.rows))
	for r := range t.rows {
		d := DatabaseInstance{
			NodeID:   t.at(r, nodeID).str(),
			Host:     t.at(r, host).str(),
			Database: t.at(r, db).str(),
			Role:     normInstanceRole(t.at(r, role).str()),
			State:    strings.ToLower(t.at(r, state).str()),
			Position: t.at(r, pos).str(),
			Details:  t.at(r, details).str(),
		}
		if d.Port, err = t.at(r, port).port(); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func normInstanceRole(s string) string {
	r := strings.ToLower(s)
	if r == "slave" {
		return InstanceReplica
	}
	return r
}

func parsePlan(t *table) ([]PlanStep, error) {
	action, err := t.need("Action")
	if err != nil {
		return nil, err
	}
	ord := t.find("Ordinal")
	host := t.find("Target_Host")
	port := t.find("Target_Port")
	phase := t.find("Phase")
	out := make([]PlanStep, 0, len(t.rows))
	for r := range t.rows {
		s := PlanStep{Action: t.at(r, action).str(), TargetHost: t.at(r, host).str()}
		if s.Ordinal, err = t.at(r, ord).int(); err != nil {
			return nil, err
		}
		if s.TargetPort, err = t.at(r, port).int(); err != nil {
			return nil, err
		}
		if s.Phase, err = t.at(r, phase).int(); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// parseDatabases returns the user databases of SHOW DATABASES, in the
// server's order, system databases left out.
func parseDatabases(t *table) ([]string, error) {
	col, err := t.need("Database", "Database_Name", "Schema")
	if err != nil {
		return nil, err
	}
	var out []string
	for r := range t.rows {
		c := t.at(r, col)
		if c.null() {
			return nil, fmt.Errorf("%s: column %s, row %d is NULL", t.stmt, t.cols[col], r+1)
		}
		// Not str(): a name may really end in a space.
		name := t.rows[r][col].String
		if !IsSystemDatabase(name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// parseVariable reads a boolean server variable from either
// SELECT @@GLOBAL.name (one row, one column) or SHOW VARIABLES LIKE
// (columns Variable_name and Value).
func parseVariable(t *table, name string) (bool, error) {
	col := 0
	if len(t.cols) > 1 {
		var err error
		if col, err = t.need("Value"); err != nil {
			return false, err
		}
	}
	if len(t.cols) == 0 || len(t.rows) == 0 {
		return false, fmt.Errorf("%s: the server does not know %s", t.stmt, name)
	}
	c := t.at(0, col)
	if c.null() {
		return false, fmt.Errorf("%s: %s is NULL", t.stmt, name)
	}
	v, ok := parseBool(c.str())
	if !ok {
		return false, fmt.Errorf("%s: %s is %q, not ON/OFF/1/0/true/false", t.stmt, name, c.str())
	}
	return v, nil
}

// timestampLayout reads DATETIME text with or without fractional seconds.
const timestampLayout = "2006-01-02 15:04:05.999999999"

// parseLatestBackups returns the END_TIMESTAMP of the newest successful
// backup of each database in MV_BACKUP_HISTORY, read in loc. Failed and
// unfinished backups (END_TIMESTAMP NULL) do not count; system databases
// are left out.
func parseLatestBackups(t *table, loc *time.Location) (map[string]time.Time, error) {
	cols, err := t.needEach("DATABASE_NAME", "END_TIMESTAMP", "STATUS")
	if err != nil {
		return nil, err
	}
	db, end, status := cols[0], cols[1], cols[2]
	out := map[string]time.Time{}
	for r := range t.rows {
		if !strings.EqualFold(t.at(r, status).str(), "success") || t.at(r, end).null() {
			continue
		}
		name := t.rows[r][db].String
		if IsSystemDatabase(name) {
			continue
		}
		s := t.at(r, end).str()
		at, err := time.ParseInLocation(timestampLayout, s, loc)
		if err != nil {
			if at, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return nil, fmt.Errorf("%s: column %s, row %d: %q is not a timestamp", t.stmt, t.cols[end], r+1, s)
			}
		}
		if prev, ok := out[name]; !ok || at.After(prev) {
			out[name] = at
		}
	}
	return out, nil
}
