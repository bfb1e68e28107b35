package sim

import (
	"strconv"
	"strings"
)

// The SELECT subset: literals, @@variables and functions without FROM, and
// column lists, aggregates, WHERE ... AND ..., GROUP BY, ORDER BY and LIMIT
// over information_schema tables.

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
