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

type assignment struct {
	scope string // "global", "session", "names", "user"
	name  string
	value string
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
