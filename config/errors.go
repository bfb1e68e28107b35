package config

import (
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem in a config file: the field's path (such as
// clusters[1].toolbox.ssh.known_hosts), the line it is on, and what is
// wrong. Messages never contain the value of a secret.
type FieldError struct {
	Path string // "" for problems with the file as a whole
	Line int    // 1-based; 0 when unknown
	Msg  string
}

// Error returns "PATH: MSG (line N)".
func (e FieldError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// Errors is every problem found in a config file, in file order. Parse and
// Load return it (as an error) when the file is not valid.
type Errors []FieldError

// Error returns one line per problem.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sorted returns es in file order; problems without a line come first and
// the note that the list was cut short stays last.
func (es Errors) sorted() Errors {
	out := append(Errors(nil), es...)
	n := min(len(out), maxErrors)
	sort.SliceStable(out[:n], func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// suggest returns the known name closest to got, or "" when none is close
// enough to be the likely intent.
func suggest(got string, known []string) string {
	best, bestDist := "", -1
	for _, k := range known {
		d := editDistance(strings.ToLower(got), k)
		if bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	// Allow about one typo per four letters, and at least two.
	limit := max(2, len(got)/4)
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		// Long keys are not typos of our short ones; skip the quadratic work.
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
