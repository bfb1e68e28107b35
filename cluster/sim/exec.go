package sim

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
)

// This file executes parsed statements against the cluster's state.

// SingleStore error numbers the simulator uses beyond MySQL's.
const (
	erFeatureNotSupported = 1706 // "Feature '...' is not supported by SingleStore"
	erLeafError           = 1777 // a leaf could not do its part
)

const timeLayout = "2006-01-02 15:04:05"

func errUnknownDB(db string) error {
	return mysql.NewSQLError(mysql.ERBadDb, mysql.SSClientError, "Unknown database '%s'", db)
}

func errShutdown() error {
	return mysql.NewSQLError(mysql.ERServerShutdown, "08S01", "Server shutdown in progress")
}

// execute runs one statement received by node n.
func (c *Cluster) execute(_ context.Context, n *node, s *session, conn *mysql.Conn, query string) (*sqltypes.Result, error) {
	st, perr := parseStatement(query)
	text := strings.TrimSpace(query)
	if st != nil {
		text = st.text
	}
	c.mu.Lock()
	if c.closed || !n.running {
		c.mu.Unlock()
		return nil, errShutdown()
	}
	delay := c.faults.slow
	injected := c.faults.sqlError(n, text)
	c.mu.Unlock()

	if !c.sleep(delay) {
		return nil, errShutdown()
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !n.running {
		return nil, errShutdown()
	}
	var res *sqltypes.Result
	var err error
	switch {
	case perr != nil:
		err = perr
	case injected != nil:
		err = injected
	default:
		res, err = c.run(n, s, conn, st)
	}
	if text != "" && (st == nil || !st.session()) {
		c.record("sql", n.id, text, err)
	}
	return res, err
}

// masterOnly refuses a cluster statement on a node that is not the MA.
func masterOnly(n *node, what string) error {
	if n.role == roleMaster {
		return nil
	}
	kind := "child aggregator"
	if n.role == roleLeaf {
		kind = "leaf"
	}
	return mysql.NewSQLError(erFeatureNotSupported, mysql.SSUnknownSQLState,
		"Feature '%s on a %s' is not supported by SingleStore. Run it on the master aggregator.", what, kind)
}

// userDB resolves a database that a cluster statement names.
func (c *Cluster) userDB(name, what string) (*database, error) {
	if isSystemDatabase(name) {
		return nil, mysql.NewSQLError(erFeatureNotSupported, mysql.SSUnknownSQLState,
			"Feature '%s on system database %s' is not supported by SingleStore.", what, name)
	}
	d := c.database(name)
	if d == nil {
		return nil, errUnknownDB(name)
	}
	return d, nil
}

func (c *Cluster) run(n *node, s *session, conn *mysql.Conn, st *statement) (*sqltypes.Result, error) {
	switch st.kind {
	case stmtSelectExprs:
		return c.selectExprs(n, s, conn, st)
	case stmtSelectTable:
		return c.selectTable(n, s, st)
	case stmtShowLeaves:
		if err := masterOnly(n, "SHOW LEAVES"); err != nil {
			return nil, err
		}
		return c.leavesTable(false).result(), nil
	case stmtShowAggregators:
		if err := masterOnly(n, "SHOW AGGREGATORS"); err != nil {
			return nil, err
		}
		return c.aggregatorsTable(false, st.extended).result(), nil
	case stmtShowClusterStatus:
		if n.role == roleLeaf {
			return nil, masterOnly(n, "SHOW CLUSTER STATUS")
		}
		return c.clusterStatusTable(false).result(), nil
	case stmtShowDatabases:
		return c.showDatabases(n, st), nil
	case stmtShowVariables:
		return c.showVariables(n, s, st), nil
	case stmtShowWarnings:
		return resultSet([]column{{"Level", tText}, {"Code", tInt}, {"Message", tText}}, nil), nil
	case stmtExplainRestore, stmtExplainRebalance:
		return c.explain(n, st)
	case stmtSet:
		return c.set(n, s, st)
	case stmtUse:
		if err := c.checkDatabase(n, st.db); err != nil {
			return nil, err
		}
		s.db = st.db
		return okResult(0), nil
	case stmtSnapshot, stmtSyncSnapshot:
		return c.snapshot(n, st)
	case stmtBackup:
		return c.backup(n, st)
	case stmtTxn:
		return okResult(0), nil
	}
	return nil, syntaxError(st.text)
}

// Databases -----------------------------------------------------------------

// databasesOn lists the databases a node holds: system databases, the
// reference databases, and on a leaf its partition databases.
func (c *Cluster) databasesOn(n *node) []string {
	names := []string{"cluster", "information_schema", "memsql"}
	for _, d := range c.dbs {
		names = append(names, d.name)
	}
	if n.role == roleLeaf {
		for _, r := range c.physicalCopies() {
			if r.leaf == n {
				names = append(names, r.db.partName(r.ordinal))
			}
		}
	}
	sort.Strings(names)
	return dedupe(names)
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

func (c *Cluster) checkDatabase(n *node, db string) error {
	for _, name := range c.databasesOn(n) {
		if name == db {
			return nil
		}
	}
	return errUnknownDB(db)
}

// useDatabase validates COM_INIT_DB (a DSN's database).
func (c *Cluster) useDatabase(n *node, db string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkDatabase(n, db)
}

func (c *Cluster) showDatabases(n *node, st *statement) *sqltypes.Result {
	name := "Database"
	if st.hasLike {
		name = fmt.Sprintf("Database (%s)", st.like)
	}
	var rows [][]val
	for _, db := range c.databasesOn(n) {
		if !st.hasLike || likeMatch(st.like, db) {
			rows = append(rows, []val{db})
		}
	}
	return resultSet([]column{{name, tText}}, rows)
}

// likeMatch is SQL LIKE, case-insensitive, with % _ and backslash escapes.
func likeMatch(pattern, s string) bool {
	p, t := []rune(strings.ToLower(pattern)), []rune(strings.ToLower(s))
	var match func(i, j int) bool
	match = func(i, j int) bool {
		for i < len(p) {
			switch p[i] {
			case '%':
				for k := j; k <= len(t); k++ {
					if match(i+1, k) {
						return true
					}
				}
				return false
			case '_':
				if j >= len(t) {
					return false
				}
			case '\\':
				if i+1 < len(p) {
					i++
				}
				fallthrough
			default:
				if j >= len(t) || t[j] != p[i] {
					return false
				}
			}
			i++
			j++
		}
		return j == len(t)
	}
	return match(0, 0)
}

// Variables -----------------------------------------------------------------

func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

// variables lists the system variables a node reports, in SHOW VARIABLES
// order, with session overrides applied.
func (c *Cluster) variables(n *node, s *session, global bool) [][2]string {
	vars := map[string]string{
		"aggregator_failure_detection": c.globals["aggregator_failure_detection"],
		"auto_attach":                  c.globals["auto_attach"],
		"autocommit":                   "ON",
		"character_set_client":         "utf8mb4",
		"character_set_connection":     "utf8mb4",
		"character_set_results":        "utf8mb4",
		"character_set_server":         "utf8mb4",
		"collation_connection":         "utf8mb4_general_ci",
		"collation_server":             "utf8mb4_general_ci",
		"hostname":                     "127.0.0.1",
		"interactive_timeout":          "28800",
		"leaf_failure_detection":       onOff(c.detection),
		"lower_case_table_names":       "0",
		"max_allowed_packet":           "104857600",
		"memsql_version":               serverVersion,
		"net_read_timeout":             "3600",
		"net_write_timeout":            "3600",
		"port":                         strconv.Itoa(n.port),
		"sql_mode":                     "STRICT_ALL_TABLES",
		"system_time_zone":             "UTC",
		"time_zone":                    "SYSTEM",
		"transaction_isolation":        "READ-COMMITTED",
		"tx_isolation":                 "READ-COMMITTED",
		"version":                      "5.7.32",
		"version_comment":              "SingleStoreDB source distribution (simulated by sdbmaint)",
		"wait_timeout":                 "28800",
	}
	if !global && s != nil {
		for k, v := range s.vars {
			if _, known := vars[k]; known {
				vars[k] = v
			}
		}
	}
	out := make([][2]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

func (c *Cluster) variable(n *node, s *session, name string, global bool) (string, bool) {
	for _, kv := range c.variables(n, s, global) {
		if kv[0] == name {
			return kv[1], true
		}
	}
	return "", false
}

func (c *Cluster) showVariables(n *node, s *session, st *statement) *sqltypes.Result {
	var rows [][]val
	for _, kv := range c.variables(n, s, st.global) {
		if !st.hasLike || likeMatch(st.like, kv[0]) {
			rows = append(rows, []val{kv[0], kv[1]})
		}
	}
	return resultSet([]column{{"Variable_name", tText}, {"Value", tText}}, rows)
}

// parseSwitch reads an ON/OFF variable value.
func parseSwitch(v string) (bool, bool) {
	switch strings.ToUpper(strings.Trim(v, "'\"")) {
	case "ON", "1", "TRUE", "DEFAULT":
		return true, true
	case "OFF", "0", "FALSE":
		return false, true
	}
	return false, false
}

func (c *Cluster) set(n *node, s *session, st *statement) (*sqltypes.Result, error) {
	for _, a := range st.assigns {
		switch a.scope {
		case "names", "user":
			continue
		case "session":
			if _, global := c.globals[a.name]; global || a.name == "leaf_failure_detection" {
				return nil, mysql.NewSQLError(mysql.ERGlobalVariable, mysql.SSUnknownSQLState,
					"Variable '%s' is a GLOBAL variable and should be set with SET GLOBAL", a.name)
			}
			s.vars[a.name] = strings.Trim(a.value, "'\"")
			continue
		}
		// SET GLOBAL
		_, known := c.variable(n, s, a.name, true)
		_, settable := c.globals[a.name]
		switch {
		case a.name == "leaf_failure_detection" || settable:
			if err := masterOnly(n, "SET GLOBAL "+a.name); err != nil {
				return nil, err
			}
			on, ok := parseSwitch(a.value)
			if !ok {
				return nil, mysql.NewSQLError(mysql.ERWrongValueForVar, mysql.SSClientError,
					"Variable '%s' can't be set to the value of '%s'", a.name, a.value)
			}
			if a.name == "leaf_failure_detection" {
				c.detection = on
				c.logger.Info("leaf_failure_detection set", "value", onOff(on))
				c.reconcile()
			} else {
				c.globals[a.name] = onOff(on)
			}
			c.notify()
		case known:
			return nil, mysql.NewSQLError(1238, mysql.SSUnknownSQLState, "Variable '%s' is a read only variable", a.name)
		default:
			return nil, mysql.NewSQLError(mysql.ERUnknownSystemVariable, mysql.SSUnknownSQLState, "Unknown system variable '%s'", a.name)
		}
	}
	return okResult(0), nil
}

// selectExprs answers SELECT without FROM: literals, @@variables and a few
// functions.
func (c *Cluster) selectExprs(n *node, s *session, conn *mysql.Conn, st *statement) (*sqltypes.Result, error) {
	var cols []column
	var row []val
	for _, e := range st.exprs {
		var v val
		typ := tText
		switch e.kind {
		case exprLiteral:
			v = e.value
			switch e.value.(type) {
			case int64:
				typ = tInt
			case float64:
				typ = tFloat
			}
		case exprVar:
			value, ok := c.variable(n, s, e.name, e.scope == "global")
			if !ok {
				return nil, mysql.NewSQLError(mysql.ERUnknownSystemVariable, mysql.SSUnknownSQLState, "Unknown system variable '%s'", e.name)
			}
			v = value
			if b, isSwitch := parseSwitch(value); isSwitch && (value == "ON" || value == "OFF") {
				// SELECT @@ returns booleans as 1/0, SHOW VARIABLES as ON/OFF.
				v, typ = b, tInt
			} else if i, err := strconv.ParseInt(value, 10, 64); err == nil {
				v, typ = i, tInt
			}
		case exprUserVar:
			v = nil
		case exprFunc:
			switch e.name {
			case "DATABASE", "SCHEMA":
				if s.db != "" {
					v = s.db
				}
			case "VERSION":
				v = "5.7.32"
			case "USER", "CURRENT_USER", "SESSION_USER", "SYSTEM_USER":
				v = conn.User + "@127.0.0.1"
			case "CONNECTION_ID":
				v, typ = int64(conn.ConnectionID), tInt
			case "NOW", "CURRENT_TIMESTAMP", "SYSDATE", "UTC_TIMESTAMP":
				v, typ = time.Now().UTC().Format(timeLayout), tTime
			default:
				return nil, mysql.NewSQLError(1305, mysql.SSClientError, "FUNCTION %s does not exist", e.name)
			}
		case exprColumn:
			return nil, mysql.NewSQLError(mysql.ERBadFieldError, mysql.SSBadFieldError, "Unknown column '%s' in 'field list'", e.name)
		case exprStar:
			return nil, mysql.NewSQLError(1096, mysql.SSUnknownSQLState, "No tables used")
		}
		cols = append(cols, column{e.label(), typ})
		row = append(row, v)
	}
	rows := [][]val{row}
	if st.limit == 0 || st.offset > 0 {
		rows = nil
	}
	return resultSet(cols, rows), nil
}

// Cluster operations --------------------------------------------------------

func (c *Cluster) explain(n *node, st *statement) (*sqltypes.Result, error) {
	what := "EXPLAIN RESTORE REDUNDANCY"
	if st.kind == stmtExplainRebalance {
		what = "EXPLAIN REBALANCE PARTITIONS"
	}
	if err := masterOnly(n, what); err != nil {
		return nil, err
	}
	d, err := c.userDB(st.db, what)
	if err != nil {
		return nil, err
	}
	cols := []column{{"Action", tText}, {"Ordinal", tInt}, {"Target_Host", tText}, {"Target_Port", tInt}, {"Phase", tInt}}
	var plan []planRow
	if st.kind == stmtExplainRebalance {
		cols = append(cols, column{"Estimated_Time_Remaining_Ms", tInt})
		plan = c.rebalancePlan(d)
	} else {
		plan = c.restoreRedundancyPlan(d)
	}
	var rows [][]val
	for _, p := range plan {
		row := []val{p.action, p.ordinal, "127.0.0.1", p.target.port, p.phase}
		if st.kind == stmtExplainRebalance {
			if p.eta < 0 {
				row = append(row, nil)
			} else {
				row = append(row, p.eta)
			}
		}
		rows = append(rows, row)
	}
	return resultSet(cols, rows), nil
}

// partitionError is what the MA says when a partition is not available.
func (c *Cluster) partitionError(d *database, replicas bool) error {
	part, holder := c.unavailablePartition(d, replicas)
	if part == "" {
		return nil
	}
	if holder == nil {
		return mysql.NewSQLError(erLeafError, mysql.SSUnknownSQLState,
			"Partition database `%s` has no master instance: the cluster is not in a consistent state", part)
	}
	return mysql.NewSQLError(erLeafError, mysql.SSUnknownSQLState,
		"Leaf Error (%s): Partition database `%s` is not available (leaf %s)", holder.addr(), part, holder.state())
}

func (c *Cluster) snapshot(n *node, st *statement) (*sqltypes.Result, error) {
	what := "SNAPSHOT DATABASE"
	if st.kind == stmtSyncSnapshot {
		what = "_SYNC_SNAPSHOT"
	}
	if err := masterOnly(n, what); err != nil {
		return nil, err
	}
	d, err := c.userDB(st.db, what)
	if err != nil {
		return nil, err
	}
	if err := c.partitionError(d, st.kind == stmtSyncSnapshot); err != nil {
		return nil, err
	}
	d.snapshots++
	c.notify()
	return okResult(0), nil
}

// backupRow is one row of information_schema.MV_BACKUP_HISTORY.
type backupRow struct {
	id         int
	db         string
	start, end time.Time
	partitions int
	path       string
	status     string // Success | Failure
	typ        string
	size       int
	errCode    int
	errMessage string
}

func (c *Cluster) seedBackups(end time.Time) {
	for _, d := range c.dbs {
		c.addBackup(backupRow{db: d.name, start: end.Add(-2 * time.Minute), end: end,
			partitions: len(d.parts), path: path.Join("/backups", d.name+".backup"), status: "Success", typ: "FULL", size: 512})
	}
}

func (c *Cluster) addBackup(r backupRow) {
	r.id = 1
	for _, b := range c.backups {
		r.id = max(r.id, b.id+1)
	}
	c.backups = append(c.backups, r)
}

func (c *Cluster) backup(n *node, st *statement) (*sqltypes.Result, error) {
	if err := masterOnly(n, "BACKUP DATABASE"); err != nil {
		return nil, err
	}
	d, err := c.userDB(st.db, "BACKUP DATABASE")
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	r := backupRow{db: d.name, start: now, end: now, partitions: len(d.parts),
		path: strings.TrimSuffix(st.path, "/") + "/" + d.name + ".backup", status: "Success", typ: st.backup, size: 512}
	if err := c.partitionError(d, false); err != nil {
		r.status = "Failure"
		if se, ok := err.(*mysql.SQLError); ok {
			r.errCode, r.errMessage = se.Num, se.Message
		}
		c.addBackup(r)
		c.notify()
		return nil, err
	}
	c.addBackup(r)
	c.notify()
	return okResult(0), nil
}
