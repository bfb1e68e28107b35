package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds how many YAML nodes one file may make us visit, so that
// aliases of aliases cannot turn a small file into billions of steps.
const maxNodes = 100_000

// decoder walks a YAML node tree and collects every problem it finds
// instead of stopping at the first.
type decoder struct {
	getenv func(string) string
	dir    string // relative paths are resolved against it; "" means the working directory
	errs   Errors
	visits int
	// checkedRoots holds the trusted roots set in the file, which were
	// checked where they were set.
	checkedRoots map[string]bool
	// exhausted is set once maxNodes values were visited; it is then the
	// only problem worth reporting.
	exhausted *FieldError
}

// maxErrors bounds the report: past a hundred problems a person fixes the
// first ones and runs the check again, and the walk stays linear.
const maxErrors = 100

func (d *decoder) errorf(path string, line int, format string, args ...any) {
	switch {
	case len(d.errs) < maxErrors:
		d.errs = append(d.errs, FieldError{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
	case len(d.errs) == maxErrors:
		d.errs = append(d.errs, FieldError{Line: line, Msg: fmt.Sprintf("more than %d problems; fix these and check again", maxErrors)})
	}
}

// resolve follows aliases and counts the visit against maxNodes. It
// returns nil for nil, for null values and once the budget is spent.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 100 {
			return nil
		}
		n = n.Alias
	}
	if n == nil {
		return nil
	}
	d.visits++
	if d.visits == maxNodes {
		d.exhausted = &FieldError{Line: n.Line, Msg: fmt.Sprintf("the file expands to more than %d values (aliases of aliases?)", maxNodes)}
	}
	if d.visits >= maxNodes {
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	return n
}

func child(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	default:
		return "something else"
	}
}

// fields is one YAML mapping with a known set of keys.
type fields struct {
	d    *decoder
	path string
	line int
	vals map[string]*yaml.Node // value nodes, unresolved
	keys map[string]int        // key -> line of the key
	bad  bool                  // not a mapping: already reported, so nothing is "required" in it
	// suggested holds the keys an unknown key was taken for; their
	// absence is not reported again as "required".
	suggested map[string]bool
}

// mapping checks that n is a mapping whose keys are all in known and
// returns its fields. A nil n gives empty fields, so callers read defaults
// without checking; a mapping of the wrong kind is reported once.
func (d *decoder) mapping(path string, n *yaml.Node, line int, known ...string) *fields {
	f := &fields{d: d, path: path, line: line, vals: map[string]*yaml.Node{}, keys: map[string]int{}, suggested: map[string]bool{}}
	n = d.resolve(n)
	if n == nil {
		return f
	}
	f.line = n.Line
	if n.Kind != yaml.MappingNode {
		d.errorf(path, n.Line, "expected a mapping of %s, got %s", strings.Join(known, ", "), kindName(n))
		f.bad = true
		return f
	}
	f.add(n, known, false)
	return f
}

// add takes the pairs of mapping n. Pairs that come from a merge key (<<)
// only fill keys the mapping does not set itself, as YAML specifies, so
// merges are applied after the mapping's own pairs.
func (f *fields) add(n *yaml.Node, known []string, merged bool) {
	d := f.d
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		kr := d.resolve(k)
		if kr == nil || kr.Kind != yaml.ScalarNode {
			d.errorf(f.path, k.Line, "keys must be plain names")
			continue
		}
		name := kr.Value
		if first, dup := f.keys[name]; dup {
			if !merged {
				d.errorf(child(f.path, name), k.Line, "set twice (first on line %d)", first)
			}
			continue
		}
		if !contains(known, name) {
			msg := "unknown key"
			if s := suggest(name, known); s != "" {
				msg += " (did you mean " + s + "?)"
				f.suggested[s] = true
			} else {
				msg += " (known keys: " + strings.Join(known, ", ") + ")"
			}
			d.errorf(child(f.path, name), k.Line, "%s", msg)
			continue
		}
		f.keys[name] = k.Line
		f.vals[name] = v
	}
	for _, v := range merges {
		f.merge(v, known)
	}
}

func (f *fields) merge(v *yaml.Node, known []string) {
	v = f.d.resolve(v)
	if v == nil {
		return
	}
	var sources []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		sources = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, s := range v.Content {
			sources = append(sources, f.d.resolve(s))
		}
	}
	for _, s := range sources {
		if s == nil || s.Kind != yaml.MappingNode {
			f.d.errorf(f.path, v.Line, "<< must name a mapping or a list of mappings")
			return
		}
		f.add(s, known, true)
	}
}

func contains(list []string, s string) bool {
	for _, k := range list {
		if k == s {
			return true
		}
	}
	return false
}

// has reports whether key is set to something other than null.
func (f *fields) has(key string) bool {
	v, ok := f.vals[key]
	if !ok {
		return false
	}
	return !(v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null")
}

func (f *fields) at(key string) string { return child(f.path, key) }

// lineOf is the line of key, or of the mapping when the key is absent.
func (f *fields) lineOf(key string) int {
	if l, ok := f.keys[key]; ok {
		return l
	}
	return f.line
}

func (f *fields) node(key string) *yaml.Node {
	if !f.has(key) {
		return nil
	}
	return f.d.resolve(f.vals[key])
}

// required reports a missing key and returns false.
func (f *fields) required(key string) bool {
	if f.has(key) {
		return true
	}
	if f.bad || f.suggested[key] {
		return false
	}
	f.d.errorf(f.at(key), f.lineOf(key), "required")
	return false
}

// str returns the string value of key with ${VAR} expanded, "" when unset.
func (f *fields) str(key string) string {
	s, _ := f.d.scalar(f.at(key), f.node(key), false)
	return s
}

// secret is str for values that must never be echoed.
func (f *fields) secret(key string) Secret {
	s, _ := f.d.scalar(f.at(key), f.node(key), true)
	return Secret(s)
}

func (f *fields) boolean(key string, def bool) bool {
	n := f.node(key)
	s, ok := f.d.scalar(f.at(key), n, false)
	if !ok {
		return def
	}
	switch s {
	case "true", "True", "TRUE":
		return true
	case "false", "False", "FALSE":
		return false
	}
	f.d.errorf(f.at(key), n.Line, "expected true or false, got %q", s)
	return def
}

func (f *fields) integer(key string, def int) int {
	n := f.node(key)
	s, ok := f.d.scalar(f.at(key), n, false)
	if !ok {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		f.d.errorf(f.at(key), n.Line, "expected a whole number, got %q", s)
		return def
	}
	return v
}

func (f *fields) duration(key string, def time.Duration) time.Duration {
	v, ok := f.d.duration(f.at(key), f.node(key))
	if !ok {
		return def
	}
	return v
}

// duration reads a positive Go duration such as 30m or 24h.
func (d *decoder) duration(path string, n *yaml.Node) (time.Duration, bool) {
	s, ok := d.scalar(path, n, false)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		hint := ""
		if strings.HasSuffix(s, "d") || strings.HasSuffix(s, "w") {
			hint = "; days and weeks are not units: write 24h or 168h"
		}
		d.errorf(path, n.Line, "expected a duration such as 10m, 3h or 24h, got %q%s", s, hint)
		return 0, false
	}
	if v <= 0 {
		d.errorf(path, n.Line, "must be longer than zero, got %s", s)
		return 0, false
	}
	return v, true
}

// list returns the items of the sequence at key, resolved. Null entries
// are reported here and stay nil, so the other items keep their index.
func (f *fields) list(key string) ([]*yaml.Node, bool) {
	n := f.node(key)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		f.d.errorf(f.at(key), n.Line, "expected a list, got %s", kindName(n))
		return nil, false
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		items[i] = f.d.resolve(c)
		if items[i] == nil && f.d.visits < maxNodes {
			f.d.errorf(index(f.at(key), i), c.Line, "empty entry")
		}
	}
	return items, true
}

// scalar returns the text of a scalar with ${VAR} expanded. It reports
// mappings and lists where one value belongs, and unset variables. For a
// secret it never puts the value in a message.
func (d *decoder) scalar(path string, n *yaml.Node, secret bool) (string, bool) {
	return d.scalarEnv(path, n, secret, false)
}

// scalarEnv is scalar that, with unsetOK, treats a value naming an unset
// variable as absent rather than wrong: the DESIGN example lists the tokens
// of both Slack modes, and only the mode in use needs its variables.
func (d *decoder) scalarEnv(path string, n *yaml.Node, secret, unsetOK bool) (string, bool) {
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(path, n.Line, "expected a single value, got %s", kindName(n))
		return "", false
	}
	s, err := expand(n.Value, d.getenv)
	var unset *unsetError
	if unsetOK && errors.As(err, &unset) {
		return "", false
	}
	if err != nil {
		d.errorf(path, n.Line, "%v", err)
		return "", false
	}
	if strings.ContainsAny(s, "\x00\r\n") {
		if secret {
			d.errorf(path, n.Line, "contains a line break or NUL byte")
		} else {
			d.errorf(path, n.Line, "contains a line break or NUL byte: %q", s)
		}
		return "", false
	}
	return s, true
}

// expand replaces ${VAR} with the variable's value, ${VAR:-default} with the
// default when the variable is empty, and $$ with $. A $ before anything
// else stays as it is. A variable that is empty or unset is an error naming
// it: a secret that silently became "" would fail much later and far away.
func expand(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	var missing []string
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ (write $$ for a literal $)")
		}
		ref := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s} is not a valid environment variable reference (use ${NAME} or ${NAME:-default}; $$ for a literal $)", truncate(name, 40))
		}
		v := getenv(name)
		switch {
		case v != "":
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			missing = append(missing, name)
		}
		i += 2 + end
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", &unsetError{names: missing}
	}
	return b.String(), nil
}

// unsetError names the variables a value refers to that are empty or unset.
type unsetError struct{ names []string }

func (e *unsetError) Error() string {
	if len(e.names) == 1 {
		return "environment variable " + e.names[0] + " is not set (or empty)"
	}
	return "environment variables " + strings.Join(e.names, ", ") + " are not set (or empty)"
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
