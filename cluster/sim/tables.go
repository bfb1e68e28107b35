package sim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
)

// The cluster's views. Each builder serves both the SHOW statement (the
// column names SHOW prints) and the information_schema table (upper-case
// names), from the same rows.

type table struct {
	cols []column
	rows [][]val
}

func (t *table) result() *sqltypes.Result { return resultSet(t.cols, t.rows) }

func cols(names string, info bool, types ...colType) []column {
	parts := strings.Split(names, ",")
	out := make([]column, len(parts))
	for i, p := range parts {
		show, upper, found := strings.Cut(strings.TrimSpace(p), "|")
		name := show
		if info {
			name = strings.ToUpper(strings.ReplaceAll(show, " ", "_"))
			if found {
				name = upper
			}
		}
		out[i] = column{name: name, typ: tText}
		if i < len(types) {
			out[i].typ = types[i]
		}
	}
	return out
}

func (c *Cluster) latency(n *node) val {
	if !n.reachable() {
		return nil
	}
	return 0.2 + float64(n.nodeID%7)/100
}

// leavesTable is SHOW LEAVES (8.1+ columns) or information_schema.LEAVES.
func (c *Cluster) leavesTable(info bool) *table {
	t := &table{cols: cols("Host,Port,Availability_Group,Pair_Host,Pair_Port,State,Opened_Connections,"+
		"Average_Roundtrip_Latency_ms|AVERAGE_ROUNDTRIP_LATENCY,NodeId|NODE_ID,Grace_Period_in_Seconds,Minimum_Pre_Prepare_Ts,Runtime_State", info,
		tText, tInt, tInt, tText, tInt, tText, tInt, tFloat, tInt, tInt, tInt, tText)}
	for _, l := range c.leaves() {
		var conns, minTs val = 0, nil
		if l.reachable() {
			conns, minTs = l.sql.openConnections(), int64(1735689600000000)+int64(l.nodeID)
		}
		t.rows = append(t.rows, []val{"127.0.0.1", l.port, l.ag, "127.0.0.1", l.pair.port, l.state(), conns,
			c.latency(l), l.nodeID, nil, minTs, l.state()})
	}
	return t
}

// aggregatorsTable is SHOW AGGREGATORS [EXTENDED] or
// information_schema.AGGREGATORS.
func (c *Cluster) aggregatorsTable(info, extended bool) *table {
	names := "Host,Port,State,Opened_Connections,Average_Roundtrip_Latency_ms|AVERAGE_ROUNDTRIP_LATENCY,Master_Aggregator,Role,NodeID|NODE_ID,Runtime_State"
	types := []colType{tText, tInt, tText, tInt, tFloat, tInt, tText, tInt, tText}
	if extended {
		names += ",Local_Minimum_Pre_Prepare_Ts,Minimum_Pre_Prepare_Ts,Availability_Group"
		types = append(types, tInt, tInt, tInt)
	}
	t := &table{cols: cols(names, info, types...)}
	for _, a := range append([]*node{c.ma}, c.aggregators()...) {
		master, role := 0, "follower"
		lat := c.latency(a)
		if a == c.ma {
			master, role, lat = 1, "leader", nil
		}
		conns := 0
		if a.reachable() {
			conns = a.sql.openConnections()
		}
		row := []val{"127.0.0.1", a.port, a.state(), conns, lat, master, role, a.nodeID, a.state()}
		if extended {
			row = append(row, int64(1735689600000000), int64(1735689600000000), nil)
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// clusterStatusTable is SHOW CLUSTER STATUS (the human-readable 14-column
// header) or information_schema.MV_CLUSTER_STATUS: one row per database
// instance per node.
func (c *Cluster) clusterStatusTable(info bool) *table {
	t := &table{cols: cols("Node ID,Host,Port,Database|DATABASE_NAME,Role,State,Position,Master Host,Master Port,"+
		"Metadata Master Node ID,Metadata Master Host,Metadata Master Port,Metadata Role,Details", info,
		tInt, tText, tInt, tText, tText, tText, tText, tText, tInt, tInt, tText, tInt, tText, tText)}
	ma := c.ma
	add := func(n *node, db, role, state string, pos int, master *node, details string) {
		var mh, mp val
		if master != nil {
			mh, mp = "127.0.0.1", master.port
		}
		t.rows = append(t.rows, []val{n.nodeID, "127.0.0.1", n.port, db, role, state, fmt.Sprintf("0:%d", pos),
			mh, mp, ma.nodeID, "127.0.0.1", ma.port, role, details})
	}
	const streaming = "stage: packet wait, state: x_streaming, err: no"
	for _, n := range c.nodes {
		for _, d := range c.dbs {
			pos := 57 + d.snapshots*4096
			switch {
			case n == ma:
				add(n, d.name, "Master", "online", pos, nil, "")
			case !n.reachable():
				add(n, d.name, "Reference", "offline", pos, ma, "")
			case n.recovering:
				add(n, d.name, "Reference", "recovering", pos, ma, "")
			default:
				add(n, d.name, "Reference", "replicating", pos, ma, streaming)
			}
		}
		if n.role != roleLeaf {
			continue
		}
		if !n.reachable() {
			// The MA cannot list an unreachable leaf's databases; it
			// reports what its metadata places there.
			for _, d := range c.dbs {
				for _, p := range d.parts {
					if role := partitionRole(p, n); role != "Orphan" {
						add(n, d.partName(p.ordinal), role, "offline", 10+d.snapshots*4096, nil, "")
					}
				}
			}
			continue
		}
		for _, r := range c.physicalCopies() {
			if r.leaf != n {
				continue
			}
			p := r.db.parts[r.ordinal]
			role := r.role()
			state, master, details := "online", (*node)(nil), ""
			if role == "Replica" {
				state, master, details = "replicating", p.master, streaming
			}
			if n.recovering {
				state = "recovering"
			}
			add(n, r.db.partName(r.ordinal), role, state, 10+r.db.snapshots*4096, master, details)
		}
	}
	return t
}

// backupTable is information_schema.MV_BACKUP_HISTORY.
func (c *Cluster) backupTable() *table {
	t := &table{cols: cols("BACKUP_ID,CLUSTER_NAME,CLUSTER_ID,DATABASE_NAME,START_TIMESTAMP,END_TIMESTAMP,NUM_PARTITIONS,"+
		"BACKUP_PATH,CHECKSUM,STATUS,SIZE,INCR_BACKUP_ID,TYPE,TAGS,SERVER_VERSION,MEMORY_USAGE,IMPLEMENTATION,"+
		"LOCKFREE_TIMESTAMP,ERROR_CODE,ERROR_MESSAGE", true,
		tInt, tText, tInt, tText, tTime, tTime, tInt, tText, tText, tText, tInt, tInt, tText, tText, tText, tInt, tText, tInt, tInt, tText)}
	for _, b := range c.backups {
		switch b.status {
		case "Hidden": // behind a stale-backup fault
			continue
		case "Stale":
			b.status = "Success"
		}
		var checksum, size val
		if b.status == "Success" {
			checksum, size = fmt.Sprintf("%08x", 0x9e3779b1*uint32(b.id)), b.size
		}
		t.rows = append(t.rows, []val{b.id, "memsql_cluster", 1, b.db, b.start.Format(timeLayout), b.end.Format(timeLayout),
			b.partitions, b.path, checksum, b.status, size, nil, b.typ, nil, serverVersion, 0, "Lockfree",
			b.end.UnixMicro(), b.errCode, b.errMessage})
	}
	return t
}

// infoTable resolves an information_schema table by name.
func (c *Cluster) infoTable(n *node, name string) (*table, error) {
	switch strings.ToUpper(name) {
	case "MV_BACKUP_HISTORY":
		return c.backupTable(), nil
	case "MV_CLUSTER_STATUS":
		if n.role == roleLeaf {
			return nil, masterOnly(n, "MV_CLUSTER_STATUS")
		}
		return c.clusterStatusTable(true), nil
	case "LEAVES":
		if err := masterOnly(n, "information_schema.LEAVES"); err != nil {
			return nil, err
		}
		return c.leavesTable(true), nil
	case "AGGREGATORS":
		if err := masterOnly(n, "information_schema.AGGREGATORS"); err != nil {
			return nil, err
		}
		return c.aggregatorsTable(true, false), nil
	}
	return nil, mysql.NewSQLError(mysql.ERUnknownTable, mysql.SSUnknownTable, "Unknown table '%s' in information_schema", name)
}

// selectTable runs SELECT ... FROM information_schema.T [WHERE] [GROUP BY]
// [ORDER BY] [LIMIT]: enough SQL for the queries clients send.
func (c *Cluster) selectTable(n *node, s *session, st *statement) (*sqltypes.Result, error) {
	q := st.table
	schema := q.schema
	if schema == "" {
		schema = s.db
	}
	if !strings.EqualFold(schema, "information_schema") {
		if schema == "" {
			return nil, mysql.NewSQLError(1046, "3D000", "No database selected")
		}
		if c.checkDatabase(n, schema) != nil {
			return nil, errUnknownDB(schema)
		}
		return nil, mysql.NewSQLError(1146, "42S02", "Table '%s.%s' doesn't exist", schema, q.name)
	}
	t, err := c.infoTable(n, q.name)
	if err != nil {
		return nil, err
	}
	colIndex := func(name, clause string) (int, error) {
		for i, col := range t.cols {
			if strings.EqualFold(col.name, name) {
				return i, nil
			}
		}
		return -1, mysql.NewSQLError(mysql.ERBadFieldError, mysql.SSBadFieldError, "Unknown column '%s' in '%s'", name, clause)
	}

	// WHERE
	var rows [][]val
	idx := make([]int, len(q.where))
	for i, w := range q.where {
		if idx[i], err = colIndex(w.col, "where clause"); err != nil {
			return nil, err
		}
	}
	for _, r := range t.rows {
		ok := true
		for i, w := range q.where {
			if !w.match(r[idx[i]]) {
				ok = false
				break
			}
		}
		if ok {
			rows = append(rows, r)
		}
	}

	// the select list
	type item struct {
		e   expr
		col int // source column, -1 for COUNT(*) and literals
	}
	var items []item
	var out []column
	aggregate := len(q.groupBy) > 0
	for _, e := range st.exprs {
		switch e.kind {
		case exprStar:
			for i, col := range t.cols {
				items = append(items, item{expr{kind: exprColumn, name: col.name, text: col.name}, i})
				out = append(out, col)
			}
		case exprColumn:
			i, err := colIndex(e.name, "field list")
			if err != nil {
				return nil, err
			}
			items = append(items, item{e, i})
			out = append(out, column{e.label(), t.cols[i].typ})
		case exprFunc:
			aggregate = true
			it := item{e, -1}
			typ := tInt
			switch e.name {
			case "COUNT":
				if e.arg != "*" && e.arg != "" {
					if it.col, err = colIndex(e.arg, "field list"); err != nil {
						return nil, err
					}
				}
			case "MAX", "MIN", "SUM":
				if e.arg == "" || e.arg == "*" {
					return nil, syntaxError(e.text)
				}
				if it.col, err = colIndex(e.arg, "field list"); err != nil {
					return nil, err
				}
				if e.name != "SUM" {
					typ = t.cols[it.col].typ
				}
			default:
				return nil, mysql.NewSQLError(1305, mysql.SSClientError, "FUNCTION %s does not exist", e.name)
			}
			items = append(items, it)
			out = append(out, column{e.label(), typ})
		case exprLiteral:
			items = append(items, item{e, -1})
			typ := tText
			if _, isInt := e.value.(int64); isInt {
				typ = tInt
			}
			out = append(out, column{e.label(), typ})
		default:
			return nil, syntaxError(e.text)
		}
	}

	// GROUP BY and aggregates
	type group struct {
		first []val
		rows  [][]val
	}
	var groups []*group
	if aggregate {
		gidx := make([]int, len(q.groupBy))
		for i, g := range q.groupBy {
			if gidx[i], err = colIndex(g, "group statement"); err != nil {
				return nil, err
			}
		}
		byKey := map[string]*group{}
		for _, r := range rows {
			var key strings.Builder
			for _, i := range gidx {
				fmt.Fprintf(&key, "%T:%v\x00", r[i], r[i])
			}
			g := byKey[key.String()]
			if g == nil {
				g = &group{first: r}
				byKey[key.String()] = g
				groups = append(groups, g)
			}
			g.rows = append(g.rows, r)
		}
		if len(q.groupBy) == 0 && len(groups) == 0 {
			groups = []*group{{}}
		}
	} else {
		for _, r := range rows {
			groups = append(groups, &group{first: r, rows: [][]val{r}})
		}
	}
	type outRow struct {
		cells []val
		src   []val
	}
	var result []outRow
	for _, g := range groups {
		cells := make([]val, len(items))
		for i, it := range items {
			switch {
			case it.e.kind == exprLiteral:
				cells[i] = it.e.value
			case it.e.kind == exprFunc:
				cells[i] = aggregateOf(it.e.name, it.col, g.rows)
			case g.first != nil:
				cells[i] = g.first[it.col]
			}
		}
		result = append(result, outRow{cells, g.first})
	}

	// ORDER BY
	type key struct {
		out  int // index in the output, or -1
		src  int // index in the source row
		desc bool
	}
	var keys []key
	for _, o := range q.orderBy {
		k := key{out: -1, src: -1, desc: o.desc}
		if pos, err := strconv.Atoi(o.col); err == nil {
			if pos < 1 || pos > len(out) {
				return nil, mysql.NewSQLError(mysql.ERBadFieldError, mysql.SSBadFieldError, "Unknown column '%d' in 'order clause'", pos)
			}
			k.out = pos - 1
		} else {
			for i, col := range out {
				if strings.EqualFold(col.name, o.col) {
					k.out = i
					break
				}
			}
			if k.out < 0 {
				if k.src, err = colIndex(o.col, "order clause"); err != nil {
					return nil, err
				}
			}
		}
		keys = append(keys, k)
	}
	sort.SliceStable(result, func(i, j int) bool {
		for _, k := range keys {
			var a, b val
			if k.out >= 0 {
				a, b = result[i].cells[k.out], result[j].cells[k.out]
			} else if result[i].src != nil && result[j].src != nil {
				a, b = result[i].src[k.src], result[j].src[k.src]
			}
			if d := compare(a, b); d != 0 {
				return (d < 0) != k.desc
			}
		}
		return false
	})

	// LIMIT
	var cells [][]val
	for i, r := range result {
		if i < st.offset || (st.limit >= 0 && len(cells) >= st.limit) {
			continue
		}
		cells = append(cells, r.cells)
	}
	return resultSet(out, cells), nil
}

func aggregateOf(fn string, col int, rows [][]val) val {
	if fn == "COUNT" {
		n := 0
		for _, r := range rows {
			if col < 0 || r[col] != nil {
				n++
			}
		}
		return n
	}
	var acc val
	sum := 0.0
	for _, r := range rows {
		v := r[col]
		if v == nil {
			continue
		}
		switch fn {
		case "MAX":
			if acc == nil || compare(v, acc) > 0 {
				acc = v
			}
		case "MIN":
			if acc == nil || compare(v, acc) < 0 {
				acc = v
			}
		case "SUM":
			f, _ := number(v)
			sum += f
			acc = sum
		}
	}
	if fn == "SUM" && acc != nil {
		if sum == float64(int64(sum)) {
			return int64(sum)
		}
		return sum
	}
	return acc
}

// number converts a cell or literal to a float when it is numeric.
func number(v val) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// compare orders values like MySQL: NULL first, numbers numerically,
// strings case-insensitively (the default collation).
func compare(a, b val) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	fa, na := number(a)
	fb, nb := number(b)
	if na != nb {
		// compare a number with a string as MySQL does: the string as a number
		if s, ok := a.(string); ok {
			fa, na = parseFloat(s)
		}
		if s, ok := b.(string); ok {
			fb, nb = parseFloat(s)
		}
	}
	if na && nb {
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	}
	return strings.Compare(strings.ToLower(fmt.Sprint(a)), strings.ToLower(fmt.Sprint(b)))
}

func parseFloat(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil
}

// match applies a WHERE condition to a cell.
func (w cond) match(v val) bool {
	switch w.op {
	case "IS NULL":
		return v == nil
	case "IS NOT NULL":
		return v != nil
	}
	if v == nil {
		return false
	}
	switch w.op {
	case "IN":
		for _, x := range w.values {
			if x != nil && compare(v, x) == 0 {
				return true
			}
		}
		return false
	case "LIKE", "NOT LIKE":
		m := likeMatch(fmt.Sprint(w.values[0]), fmt.Sprint(v))
		return m == (w.op == "LIKE")
	}
	x := w.values[0]
	if x == nil {
		return false
	}
	d := compare(v, x)
	switch w.op {
	case "=":
		return d == 0
	case "!=":
		return d != 0
	case "<":
		return d < 0
	case ">":
		return d > 0
	case "<=":
		return d <= 0
	case ">=":
		return d >= 0
	}
	return false
}
