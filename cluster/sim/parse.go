package sim

import (
	"strconv"
	"strings"

	"github.com/dolthub/vitess/go/mysql"
)

// parseStatement turns one SQL statement into a value; it does nothing else.
// Anything it does not know is a 1064 syntax error naming the statement.

type stmtKind int

const (
	stmtSelectExprs       stmtKind = iota // SELECT without FROM
	stmtSelectTable                       // SELECT ... FROM information_schema.T
	stmtShowLeaves                        // SHOW LEAVES
	stmtShowAggregators                   // SHOW AGGREGATORS [EXTENDED]
	stmtShowClusterStatus                 // SHOW CLUSTER STATUS
	stmtShowDatabases                     // SHOW DATABASES|SCHEMAS [LIKE 'p']
	stmtShowVariables                     // SHOW [GLOBAL|SESSION] VARIABLES [LIKE 'p']
	stmtShowWarnings                      // SHOW WARNINGS|ERRORS
	stmtExplainRestore                    // EXPLAIN RESTORE REDUNDANCY ON db
	stmtExplainRebalance                  // EXPLAIN REBALANCE PARTITIONS ON db
	stmtSet                               // SET ...
	stmtUse                               // USE db
	stmtSnapshot                          // SNAPSHOT [DATABASE] db
	stmtSyncSnapshot                      // _SYNC_SNAPSHOT [DATABASE] db
	stmtBackup                            // BACKUP [DATABASE] db [WITH ...] TO 'path' [...]
	stmtTxn                               // BEGIN, COMMIT, ROLLBACK, START TRANSACTION
)

type statement struct {
	kind     stmtKind
	text     string
	db       string
	like     string // LIKE pattern; hasLike says whether one was given
	hasLike  bool
	global   bool // SHOW GLOBAL VARIABLES
	extended bool // SHOW AGGREGATORS EXTENDED
	exprs    []expr
	limit    int // -1: none
	offset   int
	table    *tableQuery
	assigns  []assignment
	path     string // BACKUP target
	backup   string // BACKUP type: FULL, INCR_INIT, INCR_DIFF, SPLIT_PARTITIONS
}

// session reports whether the statement is connection chatter, left out of
// the cluster's log.
func (s *statement) session() bool {
	switch s.kind {
	case stmtUse, stmtShowWarnings, stmtTxn:
		return true
	case stmtSet:
		for _, a := range s.assigns {
			if a.scope == "global" {
				return false
			}
		}
		return true
	case stmtSelectExprs:
		for _, e := range s.exprs {
			if e.kind == exprVar && strings.EqualFold(e.name, "leaf_failure_detection") {
				return false
			}
		}
		return true
	}
	return false
}

type exprKind int

const (
	exprLiteral exprKind = iota // 1, 'x', NULL
	exprVar                     // @@name
	exprFunc                    // NAME(arg) or NAME(*)
	exprColumn                  // name
	exprStar                    // *
	exprUserVar                 // @name
)

type expr struct {
	kind  exprKind
	text  string // as written: the default column name
	alias string
	name  string // variable, function or column name
	scope string // @@global.x -> "global"
	arg   string // function argument: a column name or "*"
	value any    // literal: nil (NULL), string, int64 or float64
}

// label is the result column name: the alias or the text as written.
func (e expr) label() string {
	if e.alias != "" {
		return e.alias
	}
	return e.text
}

type assignment struct {
	scope string // "global", "session", "names", "user"
	name  string
	value string
}

type cond struct {
	col    string
	op     string // = != < > <= >= LIKE NOT LIKE IS NULL IS NOT NULL IN
	values []any
}

type orderBy struct {
	col  string // a column, an alias or a 1-based position
	desc bool
}

type tableQuery struct {
	schema, name string
	where        []cond
	groupBy      []string
	orderBy      []orderBy
}

type parser struct {
	src  string
	toks []token
	i    int
}

func (p *parser) atEnd() bool { return p.i >= len(p.toks) }

func (p *parser) peek() token {
	if p.atEnd() {
		return token{kind: tokSym, text: "", pos: len(p.src), end: len(p.src)}
	}
	return p.toks[p.i]
}

// isKw reports whether the next token is the keyword w.
func (p *parser) isKw(w string) bool {
	t := p.peek()
	return !p.atEnd() && t.kind == tokWord && strings.EqualFold(t.text, w)
}

// kw consumes the keywords ws in order, or nothing.
func (p *parser) kw(ws ...string) bool {
	save := p.i
	for _, w := range ws {
		if !p.isKw(w) {
			p.i = save
			return false
		}
		p.i++
	}
	return true
}

func (p *parser) sym(s string) bool {
	t := p.peek()
	if !p.atEnd() && t.kind == tokSym && t.text == s {
		p.i++
		return true
	}
	return false
}

// ident reads an identifier, quoted or not.
func (p *parser) ident() (string, bool) {
	t := p.peek()
	if p.atEnd() || (t.kind != tokWord && t.kind != tokIdent) {
		return "", false
	}
	p.i++
	return t.text, true
}

func (p *parser) str() (string, bool) {
	t := p.peek()
	if p.atEnd() || t.kind != tokString {
		return "", false
	}
	p.i++
	return t.text, true
}

func (p *parser) number() (int, bool) {
	t := p.peek()
	if p.atEnd() || t.kind != tokNumber {
		return 0, false
	}
	n, err := strconv.Atoi(t.text)
	if err != nil {
		return 0, false
	}
	p.i++
	return n, true
}

// fail is a syntax error near the current token; at the end of the
// statement it names the whole statement.
func (p *parser) fail() error {
	if p.atEnd() {
		return syntaxError(p.src)
	}
	return syntaxError(p.src[p.peek().pos:])
}

func (p *parser) end() error {
	if !p.atEnd() {
		return p.fail()
	}
	return nil
}

func parseStatement(src string) (*statement, error) {
	text := strings.TrimSpace(src)
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	for len(toks) > 0 && toks[len(toks)-1].kind == tokSym && toks[len(toks)-1].text == ";" {
		toks = toks[:len(toks)-1]
	}
	if len(toks) == 0 {
		return nil, mysql.NewSQLError(mysql.EREmptyQuery, mysql.SSClientError, "Query was empty")
	}
	text = strings.TrimSpace(text[:toks[len(toks)-1].end])
	p := &parser{src: text, toks: toks}
	st := &statement{text: text, limit: -1}
	unknown := syntaxError(text)
	first := p.peek()
	if first.kind != tokWord {
		return nil, unknown
	}
	p.i++
	switch strings.ToUpper(first.text) {
	case "SELECT":
		err = p.parseSelect(st)
	case "SHOW":
		err = p.parseShow(st)
	case "EXPLAIN":
		switch {
		case p.kw("RESTORE", "REDUNDANCY", "ON"):
			st.kind = stmtExplainRestore
		case p.kw("REBALANCE", "PARTITIONS", "ON"):
			st.kind = stmtExplainRebalance
		default:
			return nil, unknown
		}
		err = p.dbThenEnd(st)
	case "SET":
		err = p.parseSet(st)
	case "USE":
		st.kind = stmtUse
		err = p.dbThenEnd(st)
	case "SNAPSHOT":
		st.kind = stmtSnapshot
		err = p.optDatabaseThenDB(st)
		if err == nil {
			err = p.end()
		}
	case "_SYNC_SNAPSHOT":
		st.kind = stmtSyncSnapshot
		err = p.optDatabaseThenDB(st)
		if err == nil {
			err = p.end()
		}
	case "BACKUP":
		err = p.parseBackup(st)
	case "BEGIN", "COMMIT", "ROLLBACK":
		st.kind = stmtTxn
		p.kw("WORK")
		err = p.end()
	case "START":
		st.kind = stmtTxn
		if !p.kw("TRANSACTION") {
			return nil, unknown
		}
		err = p.end()
	default:
		return nil, unknown
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (p *parser) dbThenEnd(st *statement) error {
	db, ok := p.ident()
	if !ok {
		return p.fail()
	}
	st.db = db
	return p.end()
}

// optDatabaseThenDB reads "[DATABASE] db". A database literally named
// DATABASE must be quoted.
func (p *parser) optDatabaseThenDB(st *statement) error {
	p.kw("DATABASE")
	db, ok := p.ident()
	if !ok {
		return p.fail()
	}
	st.db = db
	return nil
}

func (p *parser) parseShow(st *statement) error {
	switch {
	case p.kw("LEAVES"):
		st.kind = stmtShowLeaves
	case p.kw("AGGREGATORS"):
		st.kind = stmtShowAggregators
		st.extended = p.kw("EXTENDED")
	case p.kw("CLUSTER", "STATUS"):
		st.kind = stmtShowClusterStatus
	case p.kw("DATABASES"), p.kw("SCHEMAS"):
		st.kind = stmtShowDatabases
		if err := p.optLike(st); err != nil {
			return err
		}
	case p.kw("WARNINGS"), p.kw("ERRORS"):
		st.kind = stmtShowWarnings
		if p.kw("LIMIT") {
			if _, ok := p.number(); !ok {
				return p.fail()
			}
		}
	default:
		switch {
		case p.kw("GLOBAL"):
			st.global = true
		case p.kw("SESSION"), p.kw("LOCAL"):
		}
		if !p.kw("VARIABLES") {
			return syntaxError(st.text)
		}
		st.kind = stmtShowVariables
		if err := p.optLike(st); err != nil {
			return err
		}
	}
	return p.end()
}

func (p *parser) optLike(st *statement) error {
	if !p.kw("LIKE") {
		return nil
	}
	s, ok := p.str()
	if !ok {
		return p.fail()
	}
	st.like, st.hasLike = s, true
	return nil
}

// parseSet reads SET assignments. Session assignments are accepted as the
// driver and the CLI send them; GLOBAL ones are checked when executed.
func (p *parser) parseSet(st *statement) error {
	st.kind = stmtSet
	for {
		a := assignment{scope: "session"}
		switch {
		case p.kw("GLOBAL"), p.kw("PERSIST"), p.kw("PERSIST_ONLY"):
			a.scope = "global"
		case p.kw("SESSION"), p.kw("LOCAL"):
		}
		switch {
		case p.kw("NAMES"), p.kw("CHARACTER", "SET"), p.kw("CHARSET"):
			a.scope, a.name = "names", "names"
		case p.kw("TRANSACTION"):
			a.scope, a.name = "names", "transaction"
		}
		if a.name == "" {
			t := p.peek()
			switch {
			case p.atEnd():
				return p.fail()
			case t.kind == tokSysVar:
				p.i++
				a.name = t.text
				if t.scope == "global" {
					a.scope = "global"
				}
			case t.kind == tokUserVar:
				p.i++
				a.scope, a.name = "user", t.text
			case t.kind == tokWord || t.kind == tokIdent:
				p.i++
				a.name = t.text
			default:
				return p.fail()
			}
			if !p.sym("=") {
				return p.fail()
			}
		}
		// the value: everything up to the next top-level comma
		start := p.i
		depth := 0
		for !p.atEnd() {
			t := p.peek()
			if t.kind == tokSym {
				if t.text == "(" {
					depth++
				} else if t.text == ")" {
					depth--
				} else if t.text == "," && depth == 0 {
					break
				}
			}
			p.i++
		}
		if p.i == start {
			return p.fail()
		}
		if p.i-start == 1 && p.toks[start].kind != tokSym {
			a.value = p.toks[start].text
		} else {
			a.value = p.src[p.toks[start].pos:p.toks[p.i-1].end]
		}
		a.name = strings.ToLower(a.name)
		st.assigns = append(st.assigns, a)
		if !p.sym(",") {
			return p.end()
		}
	}
}

func (p *parser) parseBackup(st *statement) error {
	st.kind = stmtBackup
	st.backup = "FULL"
	if err := p.optDatabaseThenDB(st); err != nil {
		return err
	}
	if p.kw("WITH") {
		switch {
		case p.kw("INIT"):
			st.backup = "INCR_INIT"
		case p.kw("DIFFERENTIAL"):
			st.backup = "INCR_DIFF"
		case p.kw("SPLIT", "PARTITIONS"):
			st.backup = "SPLIT_PARTITIONS"
			if p.kw("BY") {
				if _, ok := p.number(); !ok {
					return p.fail()
				}
			}
		default:
			return p.fail()
		}
	}
	if !p.kw("TO") {
		return p.fail()
	}
	prefix := ""
	for _, k := range []string{"S3", "AZURE", "GCS"} {
		if p.kw(k) {
			prefix = strings.ToLower(k) + "://"
		}
	}
	path, ok := p.str()
	if !ok {
		return p.fail()
	}
	st.path = prefix + path
	for !p.atEnd() {
		switch {
		case p.kw("TIMEOUT"):
			if _, ok := p.number(); !ok {
				return p.fail()
			}
		case p.kw("CONFIG"), p.kw("CREDENTIALS"):
			if _, ok := p.str(); !ok {
				return p.fail()
			}
		case p.kw("TAGS"):
			if !p.sym("(") {
				return p.fail()
			}
			for {
				if _, ok := p.str(); !ok {
					return p.fail()
				}
				if !p.sym(",") {
					break
				}
			}
			if !p.sym(")") {
				return p.fail()
			}
		default:
			return p.fail()
		}
	}
	return nil
}

// parseSelect reads "SELECT items [FROM t [WHERE ...] [GROUP BY ...]
// [ORDER BY ...]] [LIMIT n]".
func (p *parser) parseSelect(st *statement) error {
	for {
		e, err := p.parseExpr()
		if err != nil {
			return err
		}
		st.exprs = append(st.exprs, e)
		if !p.sym(",") {
			break
		}
	}
	st.kind = stmtSelectExprs
	if p.kw("FROM") {
		st.kind = stmtSelectTable
		q := &tableQuery{}
		name, ok := p.ident()
		if !ok {
			return p.fail()
		}
		if p.sym(".") {
			q.schema = name
			if name, ok = p.ident(); !ok {
				return p.fail()
			}
		}
		q.name = name
		if err := p.parseClauses(q); err != nil {
			return err
		}
		st.table = q
	}
	if p.kw("LIMIT") {
		n, ok := p.number()
		if !ok {
			return p.fail()
		}
		st.limit = n
		switch {
		case p.sym(","):
			m, ok := p.number()
			if !ok {
				return p.fail()
			}
			st.offset, st.limit = n, m
		case p.kw("OFFSET"):
			m, ok := p.number()
			if !ok {
				return p.fail()
			}
			st.offset = m
		}
	}
	return p.end()
}

func (p *parser) parseClauses(q *tableQuery) error {
	if p.kw("WHERE") {
		for {
			c, err := p.parseCond()
			if err != nil {
				return err
			}
			q.where = append(q.where, c)
			if !p.kw("AND") {
				break
			}
		}
	}
	if p.kw("GROUP", "BY") {
		for {
			col, err := p.columnName()
			if err != nil {
				return err
			}
			q.groupBy = append(q.groupBy, col)
			if !p.sym(",") {
				break
			}
		}
	}
	if p.kw("ORDER", "BY") {
		for {
			var o orderBy
			if n, ok := p.number(); ok {
				o.col = strconv.Itoa(n)
			} else {
				col, err := p.columnName()
				if err != nil {
					return err
				}
				o.col = col
			}
			if p.kw("DESC") {
				o.desc = true
			} else {
				p.kw("ASC")
			}
			q.orderBy = append(q.orderBy, o)
			if !p.sym(",") {
				break
			}
		}
	}
	return nil
}

// columnName reads a possibly qualified column and returns its last part.
func (p *parser) columnName() (string, error) {
	name, ok := p.ident()
	if !ok {
		return "", p.fail()
	}
	for p.sym(".") {
		if name, ok = p.ident(); !ok {
			return "", p.fail()
		}
	}
	return name, nil
}

func (p *parser) parseCond() (cond, error) {
	var c cond
	col, err := p.columnName()
	if err != nil {
		return c, err
	}
	c.col = col
	switch {
	case p.kw("IS", "NOT", "NULL"):
		c.op = "IS NOT NULL"
		return c, nil
	case p.kw("IS", "NULL"):
		c.op = "IS NULL"
		return c, nil
	case p.kw("NOT", "LIKE"):
		c.op = "NOT LIKE"
	case p.kw("LIKE"):
		c.op = "LIKE"
	case p.kw("IN"):
		c.op = "IN"
		if !p.sym("(") {
			return c, p.fail()
		}
		for {
			v, ok := p.literal()
			if !ok {
				return c, p.fail()
			}
			c.values = append(c.values, v)
			if !p.sym(",") {
				break
			}
		}
		if !p.sym(")") {
			return c, p.fail()
		}
		return c, nil
	default:
		t := p.peek()
		if p.atEnd() || t.kind != tokSym {
			return c, p.fail()
		}
		switch t.text {
		case "=", "!=", "<>", "<", ">", "<=", ">=":
			c.op = t.text
			if c.op == "<>" {
				c.op = "!="
			}
			p.i++
		default:
			return c, p.fail()
		}
	}
	v, ok := p.literal()
	if !ok {
		return c, p.fail()
	}
	c.values = []any{v}
	return c, nil
}

// literal reads a string, a number or NULL.
func (p *parser) literal() (any, bool) {
	t := p.peek()
	if p.atEnd() {
		return nil, false
	}
	neg := false
	if t.kind == tokSym && t.text == "-" && p.i+1 < len(p.toks) && p.toks[p.i+1].kind == tokNumber {
		neg = true
		p.i++
		t = p.peek()
	}
	switch {
	case t.kind == tokString:
		p.i++
		return t.text, true
	case t.kind == tokNumber:
		p.i++
		if n, err := strconv.ParseInt(t.text, 10, 64); err == nil {
			if neg {
				n = -n
			}
			return n, true
		}
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, false
		}
		if neg {
			f = -f
		}
		return f, true
	case t.kind == tokWord && strings.EqualFold(t.text, "NULL"):
		p.i++
		return nil, true
	case t.kind == tokWord && strings.EqualFold(t.text, "TRUE"):
		p.i++
		return int64(1), true
	case t.kind == tokWord && strings.EqualFold(t.text, "FALSE"):
		p.i++
		return int64(0), true
	}
	return nil, false
}

// parseExpr reads one select item with its optional alias.
func (p *parser) parseExpr() (expr, error) {
	var e expr
	if p.atEnd() {
		return e, p.fail()
	}
	start := p.peek()
	switch t := start; {
	case t.kind == tokSym && t.text == "*":
		p.i++
		e.kind = exprStar
	case t.kind == tokSysVar:
		p.i++
		e.kind, e.name, e.scope = exprVar, strings.ToLower(t.text), t.scope
	case t.kind == tokUserVar:
		p.i++
		e.kind, e.name = exprUserVar, t.text
	case t.kind == tokWord && p.i+1 < len(p.toks) && p.toks[p.i+1].kind == tokSym && p.toks[p.i+1].text == "(":
		p.i += 2
		e.kind, e.name = exprFunc, strings.ToUpper(t.text)
		switch {
		case p.sym("*"):
			e.arg = "*"
		case p.peek().kind == tokWord || p.peek().kind == tokIdent:
			col, err := p.columnName()
			if err != nil {
				return e, err
			}
			e.arg = col
		}
		if !p.sym(")") {
			return e, p.fail()
		}
	default:
		if v, ok := p.literal(); ok {
			e.kind, e.value = exprLiteral, v
			break
		}
		col, err := p.columnName()
		if err != nil {
			return e, err
		}
		e.kind, e.name = exprColumn, col
	}
	e.text = p.src[start.pos:p.toks[p.i-1].end]
	if e.kind == exprLiteral {
		if s, ok := e.value.(string); ok {
			e.text = s // MySQL names a string literal's column by its value
		}
	}
	if p.kw("AS") {
		a, ok := p.ident()
		if !ok {
			if a, ok = p.str(); !ok {
				return e, p.fail()
			}
		}
		e.alias = a
	} else if t := p.peek(); !p.atEnd() && (t.kind == tokIdent || t.kind == tokString ||
		(t.kind == tokWord && !isReserved(t.text))) {
		p.i++
		e.alias = t.text
	}
	return e, nil
}

func isReserved(w string) bool {
	switch strings.ToUpper(w) {
	case "FROM", "WHERE", "GROUP", "ORDER", "LIMIT", "AND", "OR", "AS", "BY", "HAVING", "OFFSET", "ASC", "DESC":
		return true
	}
	return false
}
