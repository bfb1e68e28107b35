package windows_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
	"github.com/sdbmaint/sdbmaint/runbook/windows/windowstest"
)

// The scheduler runs here against the real engine and the real SQLite
// store. Only the outside world is faked: the SingleStore cluster (a
// hand-written stand-in whose preflight passes and whose nodes stop and
// start at once) and Slack (a recorder of the notices).

const (
	approver = "UAPPROVER"
	operator = "UOPERATOR" // may not approve
)

// berlinSunday is the window most tests use: 02:00 Berlin time every Sunday,
// three hours, announced 24h, 1h and 10m ahead.
const berlinSunday = "CRON_TZ=Europe/Berlin 0 2 * * SUN"

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// fakeCluster is the outside SingleStore cluster: preflight passes, and
// nodes stop and start the moment they are told to.
type fakeCluster struct {
	name string
	mu   sync.Mutex
	down map[string]bool
}

var fakeNodes = []runbook.Node{
	{ID: "MA01", Role: runbook.RoleMaster, Host: "10.0.0.1", Port: 3306},
	{ID: "CA01", Role: runbook.RoleAggregator, Host: "10.0.0.2", Port: 3306},
	{ID: "LF01", Role: runbook.RoleLeaf, Host: "10.0.0.3", Port: 3306, AvailabilityGroup: 1},
	{ID: "LF02", Role: runbook.RoleLeaf, Host: "10.0.0.4", Port: 3306, AvailabilityGroup: 2},
}

func (c *fakeCluster) Preflight(context.Context) (*runbook.Report, error) {
	nodes, _ := c.ListNodes(context.Background())
	return &runbook.Report{Cluster: c.name, OK: true, Databases: []string{"sales"}, Nodes: nodes, LeafFailureDetection: true,
		Checks: []runbook.Check{{Name: runbook.CheckLeavesOnline, Status: runbook.Pass, Detail: "2/2 leaves online"}}}, nil
}
func (c *fakeCluster) Snapshot(context.Context, string) error             { return nil }
func (c *fakeCluster) SyncSnapshot(context.Context, string) error         { return nil }
func (c *fakeCluster) Backup(context.Context, string, string) error       { return nil }
func (c *fakeCluster) LeafFailureDetection(context.Context) (bool, error) { return true, nil }
func (c *fakeCluster) SetLeafFailureDetection(context.Context, bool) error {
	return nil
}
func (c *fakeCluster) Ping(context.Context) error { return nil }
func (c *fakeCluster) ListNodes(context.Context) ([]runbook.Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(fakeNodes)
	for i := range out {
		out[i].Running = !c.down[out[i].ID]
		out[i].Connectable, out[i].RecoveryState = out[i].Running, "Online"
	}
	return out, nil
}
func (c *fakeCluster) StopNode(_ context.Context, id string, _ runbook.OutputFunc) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down[id] = true
	return nil
}
func (c *fakeCluster) StartNode(_ context.Context, id string, _ runbook.OutputFunc) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.down, id)
	return nil
}

type clusters map[string]*fakeCluster

func (cs clusters) Cluster(_ context.Context, name string) (*runbook.Cluster, error) {
	c, ok := cs[name]
	if !ok {
		return nil, runbook.Errorf(runbook.Invalid, "no cluster %q", name)
	}
	return &runbook.Cluster{Name: name, Preflight: c, DB: c, Detection: c, Ping: c, Nodes: c}, nil
}

func (cs clusters) Names() []string {
	var out []string
	for n := range cs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// approvers is the approver list of the config.
type approvers map[string]bool

func (a approvers) MayApprove(_ context.Context, _, user string) (bool, error) { return a[user], nil }

// notice is one thing the scheduler told the channel, with the fake time.
type notice struct {
	kind string // announce, started, skipped, missed, closed
	at   time.Time
	occ  windows.Occurrence
	lead time.Duration
	run  *runbook.Run
	text string // reason
	m    windows.Missed
	s    windows.Skipped
}

func (n notice) String() string {
	s := fmt.Sprintf("%s %s @%s", n.kind, n.occ.Start.UTC().Format(time.RFC3339), n.at.UTC().Format(time.RFC3339))
	if n.lead > 0 {
		s += " lead " + windows.FormatDuration(n.lead)
	}
	return s
}

// recorder is Slack as the scheduler sees it: it records every notice.
type recorder struct {
	clock *windowstest.Clock
	mu    sync.Mutex
	all   []notice
	added chan struct{}
	fail  error // returned by every method when set
}

func newRecorder(c *windowstest.Clock) *recorder {
	return &recorder{clock: c, added: make(chan struct{}, 1000)}
}

func (r *recorder) add(n notice) error {
	n.at = r.clock.Now()
	r.mu.Lock()
	r.all = append(r.all, n)
	r.mu.Unlock()
	r.added <- struct{}{}
	return r.fail
}

func (r *recorder) Announce(_ context.Context, a windows.Announcement) error {
	return r.add(notice{kind: "announce", occ: a.Occurrence, lead: a.Lead})
}
func (r *recorder) Started(_ context.Context, s windows.Started) error {
	return r.add(notice{kind: "started", occ: s.Occurrence, run: s.Run})
}
func (r *recorder) Skipped(_ context.Context, s windows.Skipped) error {
	return r.add(notice{kind: "skipped", occ: s.Occurrence, run: s.Existing, text: s.Reason, s: s})
}
func (r *recorder) Missed(_ context.Context, m windows.Missed) error {
	return r.add(notice{kind: "missed", occ: m.Occurrence, text: m.Reason, m: m})
}
func (r *recorder) WindowClosed(_ context.Context, c windows.Closed) error {
	return r.add(notice{kind: "closed", occ: c.Occurrence, run: c.Run})
}

func (r *recorder) notices() []notice {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// kinds summarises the notices as "announce 24h, announce 1h, started".
func (r *recorder) kinds() []string {
	var out []string
	for _, n := range r.notices() {
		k := n.kind
		if n.lead > 0 {
			k += " " + windows.FormatDuration(n.lead)
		}
		out = append(out, k)
	}
	return out
}

// wait blocks until there are at least n notices, or fails the test.
func (r *recorder) wait(t *testing.T, n int) []notice {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if all := r.notices(); len(all) >= n {
			return all
		}
		select {
		case <-r.added:
		case <-deadline:
			t.Fatalf("waited for %d notices; have %v", n, r.kinds())
		}
	}
}

// process is one sdbmaint process: its own store handle on the shared
// file, its own engine and its own scheduler.
type process struct {
	store  *sqlite.Store
	engine *runbook.Engine
	sched  *windows.Scheduler
}

// harness is a shared SQLite file, a fake clock, the fake cluster "prod"
// (and "staging"), and the recorder of notices.
type harness struct {
	t        *testing.T
	path     string
	clock    *windowstest.Clock
	clusters clusters
	rec      *recorder
	config   []windows.Window
	opts     windows.Options // template for each process
}

func newHarness(t *testing.T, now time.Time, config ...windows.Window) *harness {
	t.Helper()
	clock := windowstest.NewClock(now)
	return &harness{
		t: t, path: filepath.Join(t.TempDir(), "sdbmaint.db"), clock: clock,
		clusters: clusters{"prod": {name: "prod", down: map[string]bool{}}, "staging": {name: "staging", down: map[string]bool{}}},
		rec:      newRecorder(clock), config: config,
		opts: windows.Options{Refresh: 365 * 24 * time.Hour},
	}
}

// configWindow is a config-file window of prod.
func configWindow(spec string) windows.Window {
	return windows.ConfigWindow("prod", spec, 3*time.Hour, []time.Duration{24 * time.Hour, time.Hour, 10 * time.Minute}, "C0OPS")
}

// start opens the store file, an engine and a scheduler named owner.
func (h *harness) start(owner string) *process {
	t := h.t
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, h.path)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := st.Windows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	appr := approvers{approver: true}
	eng := runbook.NewEngine(runbook.EngineConfig{Store: st, Clusters: h.clusters, Clock: h.clock, Approvers: appr})
	opts := h.opts
	opts.Store, opts.Runs, opts.Notifier, opts.Approvers, opts.Clock = ws, eng, h.rec, appr, h.clock
	opts.Config, opts.Clusters, opts.Owner, opts.Location = h.config, h.clusters.Names(), owner, time.UTC
	s, err := windows.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	p := &process{store: st, engine: eng, sched: s}
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *process) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.engine.Drain(ctx)
	_ = p.store.Close()
}

// tickAt moves the clock to when and lets the scheduler handle what is due.
func (h *harness) tickAt(p *process, when string) time.Time {
	h.t.Helper()
	h.clock.Set(at(when))
	next, err := p.sched.Tick(context.Background())
	if err != nil {
		h.t.Fatalf("tick at %s: %v", when, err)
	}
	return next
}

// waitRun waits, on the engine's events, until the run satisfies ok.
func waitRun(t *testing.T, e *runbook.Engine, id string, what string, ok func(*runbook.Run) bool) *runbook.Run {
	t.Helper()
	sub := e.Subscribe()
	defer sub.Close()
	deadline := time.After(10 * time.Second)
	for {
		r, err := e.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(r) {
			return r
		}
		select {
		case <-sub.C():
		case <-deadline:
			t.Fatalf("run %s never got %s: at %s", id, what, r.Current)
		}
	}
}

func waiting(phase runbook.PhaseName) func(*runbook.Run) bool {
	return func(r *runbook.Run) bool {
		p := r.CurrentPhase()
		return r.Current == phase && p != nil && p.Status == runbook.PhaseWaiting
	}
}

func mustContain(t *testing.T, s, want string) {
	t.Helper()
	if !strings.Contains(s, want) {
		t.Fatalf("%q does not say %q", s, want)
	}
}
