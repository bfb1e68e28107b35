package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/runbook"
)

// Hostile names: database names reach SQL only backtick-quoted, node IDs
// reach a command line only after validation, and nothing else a person or
// a server can choose (a cluster name, the output of list-nodes) reaches
// one at all.

// hostileDatabases are database names an operator could really have or an
// attacker could create, each with the identifier it must arrive as,
// written out by hand rather than by QuoteIdent.
var hostileDatabases = []struct{ name, quoted string }{
	{"we`b", "`we``b`"},
	{"x`; DROP DATABASE sales; --", "`x``; DROP DATABASE sales; --`"},
	{" trailing space ", "` trailing space `"},
	{"``", "``````"},
	{`it's "quoted"`, "`it's \"quoted\"`"},
	{"semi;colon", "`semi;colon`"},
	{"with space", "`with space`"},
	{"new\nline", "`new\nline`"},
	{"tab\there", "`tab\there`"},
	{`back\slash`, "`back\\slash`"},
	{"/* comment */ #x", "`/* comment */ #x`"},
	{"$(reboot)", "`$(reboot)`"},
	{"Müller_数据_🚀", "`Müller_数据_🚀`"},
}

// sqlStatements returns the statements the sim received over SQL whose
// text starts with one of the prefixes, in order, failing the test on any
// the sim refused.
func sqlStatements(t *testing.T, c *sim.Cluster, prefixes ...string) []string {
	t.Helper()
	var out []string
	for _, e := range c.Log() {
		if e.Via != "sql" {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(e.Text, p) {
				if e.Error != "" {
					t.Errorf("the sim refused %q: %s", e.Text, e.Error)
				}
				out = append(out, e.Text)
			}
		}
	}
	return out
}

// Every statement that names a database, for every hostile name, arrives at
// the master aggregator as one statement about exactly that database.
func TestInjectionDatabaseNamesEverySQLPath(t *testing.T) {
	t.Parallel()
	names := []string{"sales"}
	for _, d := range hostileDatabases {
		names = append(names, d.name)
	}
	// The faults name a database; the sim reads the name after the colon.
	target := hostileDatabases[1].name
	sc := startSim(t, sim.Options{Databases: names, Partitions: 2,
		Faults: []string{"rebalance-pending:" + target, "redundancy-pending:" + target}})
	ctx := testCtx(t)

	dbs, err := sc.sql.Databases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(slices.Sorted(slices.Values(dbs)), slices.Sorted(slices.Values(names))) {
		t.Fatalf("SHOW DATABASES: %q, want %q", dbs, names)
	}

	const to = "/backups/it's; `x` $(id) | ü"
	var want []string
	for _, d := range hostileDatabases {
		if err := sc.sql.Snapshot(ctx, d.name); err != nil {
			t.Errorf("snapshot %q: %v", d.name, err)
		}
		if err := sc.sql.SyncSnapshot(ctx, d.name); err != nil {
			t.Errorf("sync snapshot %q: %v", d.name, err)
		}
		if err := sc.sql.Backup(ctx, d.name, to); err != nil {
			t.Errorf("backup %q: %v", d.name, err)
		}
		redundancy, err := sc.sql.ExplainRestoreRedundancy(ctx, d.name)
		if err != nil {
			t.Errorf("explain restore redundancy %q: %v", d.name, err)
		}
		rebalance, err := sc.sql.ExplainRebalance(ctx, d.name)
		if err != nil {
			t.Errorf("explain rebalance %q: %v", d.name, err)
		}
		// Only the database the faults name has plans: the sim took each
		// name for exactly the database it is.
		if pending := d.name == target; pending != (len(redundancy) > 0) || pending != (len(rebalance) > 0) {
			t.Errorf("%q: %d redundancy and %d rebalance steps", d.name, len(redundancy), len(rebalance))
		}
		want = append(want,
			"SNAPSHOT DATABASE "+d.quoted,
			"_SYNC_SNAPSHOT "+d.quoted,
			"BACKUP DATABASE "+d.quoted+` TO "/backups/it's; `+"`x`"+` $(id) | ü"`,
			"EXPLAIN RESTORE REDUNDANCY ON "+d.quoted,
			"EXPLAIN REBALANCE PARTITIONS ON "+d.quoted,
		)
	}
	got := sqlStatements(t, sc.sim, "SNAPSHOT", "_SYNC_SNAPSHOT", "BACKUP", "EXPLAIN", "DROP")
	if !slices.Equal(got, want) {
		t.Errorf("the sim received\n%q\nwant\n%q", got, want)
	}

	// The backups are recorded under the exact names, and sales is still
	// there: no DROP ran.
	latest, err := sc.sql.LatestBackups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range hostileDatabases {
		if _, ok := latest[d.name]; !ok {
			t.Errorf("no backup recorded for %q: %v", d.name, latest)
		}
	}
	rep, err := sc.flight.Preflight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rep.Databases, "sales") {
		t.Errorf("sales is gone: %q", rep.Databases)
	}
}

// A backup target that cannot be put in a string literal safely is refused
// before anything is sent.
func TestInjectionBackupTargetRefused(t *testing.T) {
	t.Parallel()
	sc := startSim(t, sim.Options{Databases: []string{"sales"}})
	ctx := testCtx(t)
	for _, to := range []string{
		`/backups" TO S3 "evil`,
		`/backups\" ; DROP DATABASE sales; -- `,
		`/backups\`,
		"/backups\nDROP DATABASE sales",
		"/backups\x00",
		"/backups\r",
		"/backups\xff",
		"",
	} {
		err := sc.sql.Backup(ctx, "sales", to)
		if runbook.ErrorKind(err) != runbook.Invalid || !strings.Contains(runbook.ErrorMessage(err), "backup") {
			t.Errorf("backup to %q: %v", to, err)
		}
	}
	if got := sqlStatements(t, sc.sim, "BACKUP", "DROP"); len(got) != 0 {
		t.Errorf("sent despite the refusal: %q", got)
	}
}

// refusingRunner fails the test if anything reaches a command line.
type refusingRunner struct{ t *testing.T }

func (r refusingRunner) Run(_ context.Context, cmd string, _ func(stream, line string)) error {
	r.t.Errorf("a command line was run: %q", cmd)
	return fmt.Errorf("refused")
}

// hostileNodeIDs are node IDs that must never reach a command line.
var hostileNodeIDs = []string{
	"$(touch /tmp/pwned)",
	"`id`",
	"AAAAAAAA; rm -rf /",
	"AAAAAAAA|id",
	"AAAAAAAA&&id",
	"AAAAAAAA&",
	"AAAAAAAA\nid",
	"AAAAAAAA\rid",
	"AAAAAAAA'",
	`AAAAAAAA"`,
	"AAAAAAAA ",
	" AAAAAAAA",
	"AAAAAAAA --yes",
	"AAAAAAAA>/etc/passwd",
	"AAAAAAAA\x00",
	"--memsql-id=AAAAAAAA",
	"-rf",
	"",
	"AAAAAAA",               // 7 digits
	strings.Repeat("A", 65), // 65 digits
	"ＡＡＡＡＡＡＡＡ",              // full-width letters
	"AAAAAAAG",              // not hex
	"\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", // Arabic-Indic digits
}

func TestInjectionNodeIDsNeverReachACommandLine(t *testing.T) {
	t.Parallel()
	admin := &SDBAdmin{Runner: refusingRunner{t}}
	ctx := testCtx(t)
	for _, id := range hostileNodeIDs {
		for verb, f := range map[string]func(context.Context, string, runbook.OutputFunc) error{
			"stop-node": admin.StopNode, "start-node": admin.StartNode,
		} {
			err := f(ctx, id, nil)
			if runbook.ErrorKind(err) != runbook.Invalid || !strings.Contains(runbook.ErrorMessage(err), fmt.Sprintf("%s: node ID %q", verb, id)) {
				t.Errorf("%s %q: %v", verb, id, err)
			}
		}
	}
}

func TestInjectionCommandNeverReachesACommandLine(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	for _, cmd := range []string{
		"sdb-admin; id", "sdb-admin $(id)", "sdb-admin `id`", "sdb-admin|tee /tmp/x", "sdb-admin && id",
		"sdb-admin\nid", "sdb-admin > /tmp/x", "'sdb-admin'", `"sdb-admin"`, "sdb-admin #", "~/sdb-admin", "sdb-admin\tid",
		"*", "sdb-admin?", "{sdb-admin,id}", "sdb-admin\\", "  ",
	} {
		admin := &SDBAdmin{Runner: refusingRunner{t}, Command: cmd}
		if _, err := admin.ListNodes(ctx); runbook.ErrorKind(err) != runbook.Invalid {
			t.Errorf("command %q, list-nodes: %v", cmd, err)
		}
		if err := admin.StopNode(ctx, "AAAAAAAA", nil); runbook.ErrorKind(err) != runbook.Invalid {
			t.Errorf("command %q, stop-node: %v", cmd, err)
		}
	}
}

// allowedCommand is every command line sdbmaint may send to the toolbox.
var allowedCommand = regexp.MustCompile(`^sdb-admin (list-nodes --json|(stop|start)-node --memsql-id [0-9A-F]{8,64} --yes)$`)

// allowlistRunner passes only allowed command lines on to next, and keeps
// every command line it saw.
type allowlistRunner struct {
	t    *testing.T
	next Runner
	mu   sync.Mutex
	seen []string
}

func (r *allowlistRunner) Run(ctx context.Context, cmd string, out func(stream, line string)) error {
	r.mu.Lock()
	r.seen = append(r.seen, cmd)
	r.mu.Unlock()
	if !allowedCommand.MatchString(cmd) {
		r.t.Errorf("command line not allowed: %q", cmd)
		return fmt.Errorf("refused %q", cmd)
	}
	return r.next.Run(ctx, cmd, out)
}

// A cluster name full of shell syntax is data in the report and nothing
// more; the IDs that list-nodes returns go back to sdb-admin only as hex.
func TestInjectionClusterNameAndListedIDs(t *testing.T) {
	t.Parallel()
	sc := startSim(t, sim.Options{})
	ctx := testCtx(t)
	runner := &allowlistRunner{t: t, next: sc.ssh}
	admin := &SDBAdmin{Runner: runner}
	name := "prod; $(reboot) `id` | tee & \n 'x' \"y\" > /etc/passwd"
	rep, err := NewPreflighter(PreflightOptions{Cluster: name, SQL: sc.sql, Admin: admin}).Preflight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cluster != name || !rep.OK {
		t.Fatalf("report %+v", rep)
	}
	for _, n := range rep.Nodes {
		if n.Role != runbook.RoleLeaf {
			continue
		}
		if err := admin.StopNode(ctx, n.ID, nil); err != nil {
			t.Fatal(err)
		}
		if err := admin.StartNode(ctx, n.ID, nil); err != nil {
			t.Fatal(err)
		}
		break
	}
	for _, e := range sc.sim.Log() {
		if e.Via == "ssh" && !allowedCommand.MatchString(e.Text) {
			t.Errorf("the toolbox ran %q", e.Text)
		}
	}
	if len(runner.seen) != 3 {
		t.Errorf("commands: %q", runner.seen)
	}
}

// listingRunner answers list-nodes with fixed output and refuses anything
// else.
type listingRunner struct {
	t      *testing.T
	output string
	calls  int
}

func (r *listingRunner) Run(_ context.Context, cmd string, out func(stream, line string)) error {
	r.calls++
	if cmd != "sdb-admin list-nodes --json" {
		r.t.Errorf("command line run: %q", cmd)
		return fmt.Errorf("refused")
	}
	for _, line := range strings.Split(r.output, "\n") {
		out("stdout", line)
	}
	return nil
}

// A toolbox host that lists a node ID with shell syntax in it is not
// believed: list-nodes fails, so the ID can never be handed to stop-node.
func TestInjectionListedNodeIDRefused(t *testing.T) {
	t.Parallel()
	for _, id := range hostileNodeIDs {
		quoted, _ := json.Marshal(id)
		raw := fmt.Sprintf(`{"nodes": [{"memsqlId": %s, "role": "Leaf", "host": "10.0.0.1", "port": 3306}]}`, quoted)
		runner := &listingRunner{t: t, output: raw}
		nodes, err := (&SDBAdmin{Runner: runner}).ListNodes(testCtx(t))
		if err == nil || !strings.Contains(runbook.ErrorMessage(err), "memsqlId") {
			t.Errorf("list-nodes with memsqlId %q: %+v, %v", id, nodes, err)
		}
		if runner.calls != 1 {
			t.Errorf("%d commands for one list-nodes", runner.calls)
		}
	}
}
