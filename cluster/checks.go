package cluster

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// evaluate turns what preflight read into the checks of DESIGN.md, in
// their order. It reads nothing and decides everything, so every verdict
// and detail can be tested from facts alone.
func evaluate(f *facts) []runbook.Check {
	return []runbook.Check{
		checkLeaves(f.leaves),
		checkAggregators(f.aggs),
		checkOrphans(f.status, f.dbs),
		checkNodesMatch(f.leaves, f.aggs, f.nodes),
		checkPlans(runbook.CheckRestoreRedundancyPlan, "restore redundancy", f.restore, f.dbs),
		checkPlans(runbook.CheckRebalancePlan, "rebalance", f.rebalance, f.dbs),
		checkBackups(f.backups, f.dbs, f.now, f.backupRecent),
	}
}

func pass(name, format string, args ...any) runbook.Check {
	return runbook.Check{Name: name, Status: runbook.Pass, Detail: fmt.Sprintf(format, args...)}
}

func fail(name, format string, args ...any) runbook.Check {
	return runbook.Check{Name: name, Status: runbook.Fail, Detail: fmt.Sprintf(format, args...)}
}

func warn(name, format string, args ...any) runbook.Check {
	return runbook.Check{Name: name, Status: runbook.Warn, Detail: fmt.Sprintf(format, args...)}
}

func checkLeaves(leaves []Leaf) runbook.Check {
	const name = runbook.CheckLeavesOnline
	if len(leaves) == 0 {
		return fail(name, "SHOW LEAVES lists no leaves")
	}
	var bad []string
	for _, l := range leaves {
		if !l.Online() {
			state := l.State
			if state == "" {
				state = "in no state"
			}
			bad = append(bad, fmt.Sprintf("%s (availability group %d) is %s", l.Addr(), l.AvailabilityGroup, state))
		}
	}
	if len(bad) > 0 {
		return fail(name, "%d of %d leaves not online: %s", len(bad), len(leaves), strings.Join(bad, "; "))
	}
	return pass(name, "%d/%d leaves online", len(leaves), len(leaves))
}

func checkAggregators(aggs []Aggregator) runbook.Check {
	const name = runbook.CheckAggregatorsOnline
	if len(aggs) == 0 {
		return fail(name, "SHOW AGGREGATORS lists no aggregators")
	}
	var bad []string
	for _, a := range aggs {
		if !a.Online() {
			state := a.State
			if state == "" {
				state = "in no state"
			}
			bad = append(bad, fmt.Sprintf("%s %s is %s", aggKind(a), a.Addr(), state))
		}
	}
	if len(bad) > 0 {
		return fail(name, "%d of %d aggregators not online: %s", len(bad), len(aggs), strings.Join(bad, "; "))
	}
	return pass(name, "%d/%d aggregators online", len(aggs), len(aggs))
}

func aggKind(a Aggregator) string {
	if a.Master {
		return "master aggregator"
	}
	return "child aggregator"
}

// partitionSuffix matches the _N that names a partition of a database.
var partitionSuffix = regexp.MustCompile(`_[0-9]+$`)

// userDatabase maps an instance name ("sales_3" or "sales") to the user
// database it belongs to, or returns it unchanged.
func userDatabase(instance string, dbs map[string]bool) string {
	if dbs[instance] {
		return instance
	}
	if loc := partitionSuffix.FindStringIndex(instance); loc != nil && dbs[instance[:loc[0]]] {
		return instance[:loc[0]]
	}
	return instance
}

func checkOrphans(status []DatabaseInstance, dbs []string) runbook.Check {
	const name = runbook.CheckNoOrphanPartitions
	known := map[string]bool{}
	for _, db := range dbs {
		known[db] = true
	}
	byDB := map[string][]string{}
	n := 0
	for _, d := range status {
		if d.Role != InstanceOrphan {
			continue
		}
		db := userDatabase(d.Database, known)
		byDB[db] = append(byDB[db], fmt.Sprintf("%s on %s", d.Database, d.Addr()))
		n++
	}
	if n == 0 {
		return pass(name, "no orphan partitions among %d database instances", len(status))
	}
	var parts []string
	for _, db := range sortedKeys(byDB) {
		parts = append(parts, fmt.Sprintf("%s: %s", QuoteIdent(db), strings.Join(byDB[db], ", ")))
	}
	return fail(name, "%d orphan partition(s): %s", n, strings.Join(parts, "; "))
}

// sqlNode is a node as SHOW LEAVES / SHOW AGGREGATORS report it.
type sqlNode struct {
	host string
	port int
	role runbook.Role
}

// canonHost folds the spellings of one host that the two sides may use.
func canonHost(h string) string {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if h == "localhost" || h == "::1" {
		return "127.0.0.1"
	}
	return h
}

func isLoopback(h string) bool {
	ip := net.ParseIP(canonHost(h))
	return ip != nil && ip.IsLoopback()
}

func addr(host string, port int) string { return net.JoinHostPort(canonHost(host), strconv.Itoa(port)) }

func checkNodesMatch(leaves []Leaf, aggs []Aggregator, nodes []runbook.Node) runbook.Check {
	const name = runbook.CheckNodesMatchToolbox
	var fromSQL []sqlNode
	for _, a := range aggs {
		r := runbook.RoleAggregator
		if a.Master {
			r = runbook.RoleMaster
		}
		fromSQL = append(fromSQL, sqlNode{host: a.Host, port: a.Port, role: r})
	}
	for _, l := range leaves {
		fromSQL = append(fromSQL, sqlNode{host: l.Host, port: l.Port, role: runbook.RoleLeaf})
	}
	tool := map[string]runbook.Node{}
	for _, n := range nodes {
		tool[addr(n.Host, n.Port)] = n
	}
	matched := map[string]sqlNode{} // toolbox address -> SQL node
	var unmatched []sqlNode
	for _, s := range fromSQL {
		a := addr(s.host, s.port)
		if _, ok := tool[a]; ok {
			matched[a] = s
			continue
		}
		unmatched = append(unmatched, s)
	}
	// The MA often lists itself as 127.0.0.1 in SHOW AGGREGATORS while the
	// toolbox knows it by its real address, and list-nodes may leave out
	// the host: such nodes match on port and role when that is unambiguous.
	var missing []string
	for _, s := range unmatched {
		var cands []string
		for a, n := range tool {
			if _, taken := matched[a]; taken || n.Port != s.port {
				continue
			}
			if (isLoopback(s.host) || n.Host == "") && (n.Role == s.role || n.Role == runbook.RoleUnknown) {
				cands = append(cands, a)
			}
		}
		if len(cands) == 1 {
			matched[cands[0]] = s
			continue
		}
		missing = append(missing, fmt.Sprintf("%s (%s)", addr(s.host, s.port), s.role))
	}
	var extra, roles []string
	for _, a := range sortedKeys(tool) {
		n := tool[a]
		s, ok := matched[a]
		switch {
		case !ok:
			extra = append(extra, fmt.Sprintf("%s (%s %s)", a, n.Role, n.ID))
		case n.Role != runbook.RoleUnknown && n.Role != s.role:
			roles = append(roles, fmt.Sprintf("%s: SQL reports it as %s, list-nodes as %s", a, s.role, n.Role))
		}
	}
	sort.Strings(missing)
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "SQL reports "+strings.Join(missing, ", ")+" but sdb-admin list-nodes does not")
	}
	if len(extra) > 0 {
		problems = append(problems, "sdb-admin list-nodes shows "+strings.Join(extra, ", ")+" but SQL does not")
	}
	problems = append(problems, roles...)
	if len(problems) > 0 {
		return fail(name, "%s", strings.Join(problems, "; "))
	}
	var ma, ca, lf int
	for _, s := range fromSQL {
		switch s.role {
		case runbook.RoleMaster:
			ma++
		case runbook.RoleAggregator:
			ca++
		default:
			lf++
		}
	}
	return pass(name, "toolbox sees the same %d nodes (%d master, %d child aggregators, %d leaves)", len(fromSQL), ma, ca, lf)
}

func checkPlans(name, what string, plans map[string][]PlanStep, dbs []string) runbook.Check {
	if len(dbs) == 0 {
		return pass(name, "no user databases")
	}
	var parts []string
	for _, db := range dbs {
		steps := plans[db]
		if len(steps) == 0 {
			continue
		}
		var actions []string
		for _, s := range steps {
			if !slices.Contains(actions, s.Action) {
				actions = append(actions, s.Action)
			}
		}
		parts = append(parts, fmt.Sprintf("%s: %d step(s) (%s)", QuoteIdent(db), len(steps), strings.Join(actions, ", ")))
	}
	if len(parts) > 0 {
		return warn(name, "%s plan not empty for %d of %d databases: %s (seen, not run)", what, len(parts), len(dbs), strings.Join(parts, "; "))
	}
	return pass(name, "%s plan empty for all %d databases", what, len(dbs))
}

func checkBackups(latest map[string]time.Time, dbs []string, now time.Time, recent time.Duration) runbook.Check {
	const name = runbook.CheckRecentBackup
	if recent <= 0 {
		return pass(name, "not checked: no backup window configured (backup.recent)")
	}
	if len(dbs) == 0 {
		return pass(name, "no user databases")
	}
	var stale []string
	oldest, oldestDB := time.Time{}, ""
	for _, db := range dbs {
		at, ok := latest[db]
		switch {
		case !ok:
			stale = append(stale, QuoteIdent(db)+" never")
		case now.Sub(at) > recent:
			stale = append(stale, fmt.Sprintf("%s last %s (%s ago)", QuoteIdent(db), at.UTC().Format("2006-01-02 15:04 MST"), age(now.Sub(at))))
		case oldestDB == "" || at.Before(oldest):
			oldest, oldestDB = at, db
		}
	}
	if len(stale) > 0 {
		return warn(name, "no successful backup within %s: %s", age(recent), strings.Join(stale, "; "))
	}
	return pass(name, "every database backed up within %s; oldest %s at %s (%s ago)", age(recent), QuoteIdent(oldestDB), oldest.UTC().Format("2006-01-02 15:04 MST"), age(now.Sub(oldest)))
}

// age prints a duration the way people say it: 45s, 12m, 5h, 3d.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 72*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
