package sim

import (
	"strings"

	"github.com/dolthub/vitess/go/mysql"
)

// A small lexer for the statements the simulated nodes understand: MySQL
// words, `backtick` identifiers (doubled backticks inside), 'single' and
// "double" quoted strings with backslash escapes, numbers, @@variables and
// punctuation. Comments are skipped.

type tokKind int

const (
	tokWord    tokKind = iota // unquoted identifier or keyword
	tokIdent                  // `quoted identifier`, text unquoted
	tokString                 // 'string' or "string", text unescaped
	tokNumber                 // 12, 1.5
	tokSysVar                 // @@name, @@global.name; text is the name, scope in scope
	tokUserVar                // @name
	tokSym                    // punctuation: ( ) , . = * ; < > <= >= <> !=
)

type token struct {
	kind     tokKind
	text     string
	scope    string // for tokSysVar: "", "global", "session", "local"
	pos, end int    // byte offsets in the source
}

func syntaxError(near string) error {
	if len(near) > 80 {
		near = near[:80]
	}
	return mysql.NewSQLError(mysql.ERParseError, mysql.SSClientError,
		"You have an error in your SQL syntax; check the manual that corresponds to your SingleStore server version for the right syntax to use near '%s' at line 1", near)
}

func isWordByte(b byte) bool {
	return b == '_' || b == '$' || b >= 0x80 || ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z') || ('0' <= b && b <= '9')
}

// lex splits src into tokens.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		ch := src[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f':
			i++
		case ch == '#' || (ch == '-' && strings.HasPrefix(src[i:], "-- ")) || (ch == '-' && src[i:] == "--"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case ch == '/' && strings.HasPrefix(src[i:], "/*"):
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return nil, syntaxError(src[i:])
			}
			i += j + 4
		case ch == '`':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(src) {
					return nil, syntaxError(src[i:])
				}
				if src[j] == '`' {
					if j+1 < len(src) && src[j+1] == '`' {
						b.WriteByte('`')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(src[j])
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: b.String(), pos: i, end: j + 1})
			i = j + 1
		case ch == '\'' || ch == '"':
			s, j, ok := scanString(src, i)
			if !ok {
				return nil, syntaxError(src[i:])
			}
			toks = append(toks, token{kind: tokString, text: s, pos: i, end: j})
			i = j
		case ch == '@':
			j := i + 1
			kind := tokUserVar
			if j < len(src) && src[j] == '@' {
				kind = tokSysVar
				j++
			}
			start := j
			for j < len(src) && (isWordByte(src[j]) || src[j] == '.') {
				j++
			}
			if j == start {
				return nil, syntaxError(src[i:])
			}
			t := token{kind: kind, text: src[start:j], pos: i, end: j}
			if kind == tokSysVar {
				if scope, name, ok := strings.Cut(t.text, "."); ok {
					t.scope, t.text = strings.ToLower(scope), name
				}
			}
			toks = append(toks, t)
			i = j
		case '0' <= ch && ch <= '9':
			j := i
			for j < len(src) && (('0' <= src[j] && src[j] <= '9') || src[j] == '.') {
				j++
			}
			if j < len(src) && isWordByte(src[j]) {
				// 1abc is an identifier in MySQL
				for j < len(src) && isWordByte(src[j]) {
					j++
				}
				toks = append(toks, token{kind: tokWord, text: src[i:j], pos: i, end: j})
			} else {
				toks = append(toks, token{kind: tokNumber, text: src[i:j], pos: i, end: j})
			}
			i = j
		case isWordByte(ch):
			j := i
			for j < len(src) && isWordByte(src[j]) {
				j++
			}
			toks = append(toks, token{kind: tokWord, text: src[i:j], pos: i, end: j})
			i = j
		default:
			n := 1
			if i+1 < len(src) {
				switch src[i : i+2] {
				case "<=", ">=", "<>", "!=":
					n = 2
				}
			}
			if !strings.ContainsRune("(),.=*;<>!+-", rune(ch)) {
				return nil, syntaxError(src[i:])
			}
			toks = append(toks, token{kind: tokSym, text: src[i : i+n], pos: i, end: i + n})
			i += n
		}
	}
	return toks, nil
}

// scanString reads a quoted string starting at src[i]; it returns the
// unescaped text and the offset after the closing quote.
func scanString(src string, i int) (string, int, bool) {
	q := src[i]
	var b strings.Builder
	j := i + 1
	for j < len(src) {
		ch := src[j]
		switch {
		case ch == '\\' && j+1 < len(src):
			j++
			switch e := src[j]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case 'b':
				b.WriteByte('\b')
			case 'Z':
				b.WriteByte(26)
			case '%', '_':
				b.WriteByte('\\')
				b.WriteByte(e)
			default:
				b.WriteByte(e)
			}
			j++
		case ch == q:
			if j+1 < len(src) && src[j+1] == q {
				b.WriteByte(q)
				j += 2
				continue
			}
			return b.String(), j + 1, true
		default:
			b.WriteByte(ch)
			j++
		}
	}
	return "", 0, false
}

// splitStatements returns the first statement of a multi-statement query
// and the rest ("" when nothing but separators remains).
func splitStatements(query string) (first, rest string) {
	var quote byte
	for i := 0; i < len(query); i++ {
		ch := query[i]
		switch {
		case quote != 0:
			if ch == '\\' && quote != '`' {
				i++
			} else if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"' || ch == '`':
			quote = ch
		case ch == '#' || (ch == '-' && strings.HasPrefix(query[i:], "-- ")):
			for i < len(query) && query[i] != '\n' {
				i++
			}
		case ch == '/' && strings.HasPrefix(query[i:], "/*"):
			if j := strings.Index(query[i+2:], "*/"); j >= 0 {
				i += j + 3
			} else {
				i = len(query)
			}
		case ch == ';':
			rest = strings.TrimLeft(query[i+1:], " \t\r\n;")
			return query[:i], rest
		}
	}
	return query, ""
}
