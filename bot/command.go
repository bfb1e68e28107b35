package bot

import (
	"fmt"
	"html"
	"sort"
	"strings"
	"unicode"
)

// ClusterArg says whether a verb takes a cluster name as its first argument.
type ClusterArg int

// How a verb uses its first argument.
const (
	NoCluster       ClusterArg = iota // the verb takes no cluster
	OptionalCluster                   // "status [CLUSTER]"
	RequiredCluster                   // "start CLUSTER"
)

// Verb describes one /sdbmaint verb to the parser: its name, how its
// arguments look, and a line for the help text. Other packages add verbs
// (schedule, windows, verify...) with Bot.AddVerb.
type Verb struct {
	Name    string
	Args    string // usage after the verb, e.g. "CLUSTER", "[CLUSTER]", `CLUSTER "CRON" [duration=3h]`
	Summary string // one line for help
	Cluster ClusterArg
	// MinArgs and MaxArgs bound the arguments after the cluster (if any).
	// MaxArgs < 0 means any number.
	MinArgs, MaxArgs int
}

// Usage is the verb as it is typed: "/sdbmaint start CLUSTER".
func (v Verb) Usage() string {
	if v.Args == "" {
		return "/sdbmaint " + v.Name
	}
	return "/sdbmaint " + v.Name + " " + v.Args
}

// Built-in verb names.
const (
	VerbHelp      = "help"
	VerbClusters  = "clusters"
	VerbPreflight = "preflight"
	VerbStart     = "start"
	VerbStatus    = "status"
	VerbAbort     = "abort"
	VerbHistory   = "history"
)

// BuiltinVerbs returns the verbs the bot itself implements, in help order.
func BuiltinVerbs() []Verb {
	return []Verb{
		{Name: VerbHelp, Summary: "this help"},
		{Name: VerbClusters, Summary: "the clusters this bot manages and whether a run is open"},
		{Name: VerbPreflight, Args: "CLUSTER", Cluster: RequiredCluster, Summary: "read-only checks, with a button to start maintenance"},
		{Name: VerbStart, Args: "CLUSTER", Cluster: RequiredCluster, Summary: "run preflight and open a maintenance run (each phase waits for approval)"},
		{Name: VerbStatus, Args: "[CLUSTER]", Cluster: OptionalCluster, Summary: "where the open runs stand"},
		{Name: VerbAbort, Args: "CLUSTER", Cluster: RequiredCluster, Summary: "says what aborting the open run does now (recovery once nodes may be down), with a button to confirm"},
		{Name: VerbHistory, Args: "[CLUSTER]", Cluster: OptionalCluster, Summary: "recent runs, with who approved what"},
	}
}

// Command is a parsed /sdbmaint invocation.
type Command struct {
	Verb    string
	Cluster string   // "" when the verb takes none or it was left out
	Args    []string // the arguments after the cluster, quotes removed
}

// Parsed is what Parse returns: either a Command to carry out, or a Reply
// to show the person who typed it (an error with help and suggestions).
type Parsed struct {
	Command *Command
	Reply   string
}

// Parse turns the text after /sdbmaint into a command, or into a reply that
// says what was wrong. It does nothing else: no I/O, no state.
func Parse(text string, verbs []Verb, clusters []string) Parsed {
	words, err := splitWords(text)
	if err != nil {
		return Parsed{Reply: err.Error() + "\n\n" + HelpText(verbs)}
	}
	if len(words) == 0 {
		return Parsed{Command: &Command{Verb: VerbHelp}}
	}
	name := strings.ToLower(words[0])
	var verb *Verb
	for i := range verbs {
		if verbs[i].Name == name {
			verb = &verbs[i]
			break
		}
	}
	if verb == nil {
		names := make([]string, len(verbs))
		for i, v := range verbs {
			names[i] = v.Name
		}
		msg := fmt.Sprintf("I don't know the command `%s`.", echo(words[0], 40))
		if s := suggest(name, names); s != "" {
			msg += fmt.Sprintf(" Did you mean `/sdbmaint %s`?", s)
		}
		return Parsed{Reply: msg + "\n\n" + HelpText(verbs)}
	}
	cmd := &Command{Verb: verb.Name}
	args := words[1:]
	switch verb.Cluster {
	case RequiredCluster:
		if len(args) == 0 {
			return Parsed{Reply: fmt.Sprintf("`%s` needs a cluster: `%s`. %s", verb.Name, verb.Usage(), knownClusters(clusters))}
		}
		fallthrough
	case OptionalCluster:
		if len(args) > 0 {
			c, reply := matchCluster(args[0], clusters)
			if reply != "" {
				return Parsed{Reply: reply}
			}
			cmd.Cluster, args = c, args[1:]
		}
	}
	if len(args) < verb.MinArgs || (verb.MaxArgs >= 0 && len(args) > verb.MaxArgs) {
		return Parsed{Reply: fmt.Sprintf("`%s` takes %s. Usage: `%s`", verb.Name, argCount(*verb), verb.Usage())}
	}
	if len(args) > 0 {
		cmd.Args = args
	}
	return Parsed{Command: cmd}
}

// HelpText is the reply to /sdbmaint help: every verb with its usage.
func HelpText(verbs []Verb) string {
	var b strings.Builder
	b.WriteString("*sdbmaint* takes a SingleStore cluster through offline maintenance, one approved phase at a time.\n")
	for _, v := range verbs {
		fmt.Fprintf(&b, "• `%s` — %s\n", v.Usage(), v.Summary)
	}
	b.WriteString("Type commands in the channel: Slack does not run slash commands inside threads.")
	return b.String()
}

func argCount(v Verb) string {
	what := "arguments"
	if v.Cluster != NoCluster {
		what = "arguments after the cluster"
	}
	switch {
	case v.MaxArgs == 0 && v.Cluster == NoCluster:
		return "no arguments"
	case v.MaxArgs == 0:
		return "nothing after the cluster"
	case v.MaxArgs < 0:
		return fmt.Sprintf("at least %d %s", v.MinArgs, what)
	case v.MinArgs == v.MaxArgs:
		return fmt.Sprintf("exactly %d %s", v.MinArgs, what)
	default:
		return fmt.Sprintf("%d to %d %s", v.MinArgs, v.MaxArgs, what)
	}
}

func knownClusters(clusters []string) string {
	if len(clusters) == 0 {
		return "No clusters are configured."
	}
	return "Clusters: " + codeList(clusters) + "."
}

func codeList(names []string) string {
	s := append([]string(nil), names...)
	sort.Strings(s)
	for i := range s {
		s[i] = "`" + s[i] + "`"
	}
	return strings.Join(s, ", ")
}

// matchCluster finds name among clusters: exactly, else case-insensitively
// when that is unambiguous. Otherwise it returns the reply.
func matchCluster(name string, clusters []string) (string, string) {
	var folded []string
	for _, c := range clusters {
		if c == name {
			return c, ""
		}
		if strings.EqualFold(c, name) {
			folded = append(folded, c)
		}
	}
	if len(folded) == 1 {
		return folded[0], ""
	}
	msg := fmt.Sprintf("There is no cluster named `%s`.", echo(name, 60))
	if s := suggest(strings.ToLower(name), clusters); s != "" {
		msg += fmt.Sprintf(" Did you mean `%s`?", s)
	}
	return "", msg + " " + knownClusters(clusters)
}

// suggest returns the candidate closest to word by edit distance, if it is
// close enough to be a plausible typo.
func suggest(word string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(word, strings.ToLower(c))
		if bestD < 0 || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	limit := 3
	switch n := len([]rune(word)); {
	case n <= 3:
		limit = 1
	case n <= 5:
		limit = 2
	}
	if bestD < 0 || bestD > limit {
		// A prefix is a good guess too: "pre" for "preflight".
		for _, c := range candidates {
			if len(word) >= 2 && strings.HasPrefix(strings.ToLower(c), word) {
				return c
			}
		}
		return ""
	}
	return best
}

// editDistance is the Damerau-Levenshtein (optimal string alignment)
// distance, so a swapped pair of letters ("strat") counts as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 30 // nobody typos a 64-letter word; don't spend time on it
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// splitWords splits a command line into words. Double and single quotes
// (including the curly ones Slack clients type) group words; Slack's HTML
// escapes (&amp; &lt; &gt;) are undone first.
func splitWords(text string) ([]string, error) {
	text = html.UnescapeString(text)
	var (
		words []string
		cur   strings.Builder
		quote rune // the closing quote we wait for, 0 outside quotes
		in    bool // inside a word (a quoted empty string is a word)
	)
	for _, r := range text {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == '“' || r == '”' || r == '„':
			quote, in = '”', true
		case r == '‘' || r == '’':
			quote, in = '’', true
		case unicode.IsSpace(r):
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("a quote is not closed in `%s`", echo(text, 80))
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// echo makes text a person typed safe to quote back inside a code span:
// shortened, without backticks, with Slack's control characters escaped so
// that "<!channel>" never pings anyone.
func echo(s string, n int) string {
	return escapeMrkdwn(strings.ReplaceAll(clip(s, n), "`", "'"))
}

// clip shortens s to at most n runes for quoting it back to a person.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
