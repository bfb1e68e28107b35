package cluster

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// ExtraCheck is a preflight check another package adds (for example the
// package signature check). Run reports a failure as a Check with status
// Fail; it has no error to return.
type ExtraCheck interface {
	Name() string
	Run(ctx context.Context) runbook.Check
}

// PreflightOptions configures a Preflighter.
type PreflightOptions struct {
	Cluster string
	SQL     *Client
	Admin   *SDBAdmin
	// BackupRecent is how recent the newest successful backup of every
	// database must be; 0 leaves recent_backup unchecked (pass).
	BackupRecent time.Duration
	Extra        []ExtraCheck
	Clock        func() time.Time // default time.Now
	// Concurrency bounds the statements in flight at once (default: the
	// SQL client's pool size, so that none waits for a connection).
	Concurrency int
	Logger      *slog.Logger
	// KnownDatabases seeds the databases the first run expects (from the
	// last run's report in the store), so that even the first preflight
	// after a restart starts its EXPLAINs together with SHOW DATABASES.
	// A wrong guess costs nothing: preflight follows what SHOW DATABASES
	// says, as on every later run.
	KnownDatabases []string
}

// Preflighter runs the preflight checks of DESIGN.md against one cluster:
// every statement and list-nodes at the same time, so preflight takes
// about as long as its slowest statement.
type Preflighter struct {
	opts PreflightOptions
	log  *slog.Logger

	mu sync.Mutex
	// known are the user databases the last run saw. Their EXPLAINs start
	// together with SHOW DATABASES instead of after it; a database that
	// is new gets its EXPLAINs as soon as SHOW DATABASES names it, and
	// one that is gone has its results dropped.
	known []string
}

var _ runbook.Preflighter = (*Preflighter)(nil)

// NewPreflighter returns a Preflighter for opts.
func NewPreflighter(opts PreflightOptions) *Preflighter {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultMaxConns
		if opts.SQL != nil {
			opts.Concurrency = opts.SQL.MaxConns()
		}
	}
	var known []string
	for _, db := range opts.KnownDatabases {
		if !IsSystemDatabase(db) {
			known = append(known, db)
		}
	}
	return &Preflighter{opts: opts, log: logger(opts.Logger).With("cluster", opts.Cluster), known: known}
}

// facts is everything preflight reads, at one moment.
type facts struct {
	leaves       []Leaf
	aggs         []Aggregator
	status       []DatabaseInstance
	dbs          []string
	restore      map[string][]PlanStep
	rebalance    map[string][]PlanStep
	backups      map[string]time.Time
	nodes        []runbook.Node
	detection    bool
	now          time.Time
	backupRecent time.Duration
}

// Preflight reads the cluster and returns the report. Failing checks are
// data in the report; the error (Unavailable, Invalid or Internal) means
// something could not be read at all: a connection, a login, a host key,
// a result set without a column a check needs.
func (p *Preflighter) Preflight(ctx context.Context) (*runbook.Report, error) {
	if p.opts.SQL == nil || p.opts.Admin == nil {
		return nil, runbook.Errorf(runbook.Internal, "preflight %s: SQL client or sdb-admin not configured", p.opts.Cluster)
	}
	start := p.opts.Clock()
	began := time.Now()
	sqlc := p.opts.SQL
	g := newGroup(ctx, p.opts.Concurrency)
	defer g.cancel()

	var f facts
	g.run(func(ctx context.Context) (err error) { f.leaves, err = sqlc.ShowLeaves(ctx); return })
	g.run(func(ctx context.Context) (err error) { f.aggs, err = sqlc.ShowAggregators(ctx); return })
	g.run(func(ctx context.Context) (err error) { f.status, err = sqlc.ClusterStatus(ctx); return })
	g.run(func(ctx context.Context) (err error) { f.detection, err = sqlc.LeafFailureDetection(ctx); return })
	if p.opts.BackupRecent > 0 {
		// Without a window recent_backup has nothing to judge, and the
		// history table need not even be readable.
		g.run(func(ctx context.Context) (err error) { f.backups, err = sqlc.LatestBackups(ctx); return })
	}
	g.run(func(ctx context.Context) (err error) { f.nodes, err = p.opts.Admin.ListNodes(ctx); return })

	plans := newPlanSet()
	explain := func(dbs []string) {
		for _, db := range dbs {
			if !plans.claim(db) {
				continue
			}
			g.record(func(ctx context.Context) {
				steps, err := sqlc.ExplainRestoreRedundancy(ctx, db)
				plans.set(db, true, steps, err)
			})
			g.record(func(ctx context.Context) {
				steps, err := sqlc.ExplainRebalance(ctx, db)
				plans.set(db, false, steps, err)
			})
		}
	}
	explain(p.knownDatabases())
	g.run(func(ctx context.Context) error {
		dbs, err := sqlc.Databases(ctx)
		if err != nil {
			return err
		}
		f.dbs = dbs
		explain(dbs)
		return nil
	})

	extra := make([]runbook.Check, len(p.opts.Extra))
	for i, x := range p.opts.Extra {
		g.record(func(ctx context.Context) { extra[i] = x.Run(ctx) })
	}

	if err := g.wait(); err != nil {
		p.log.Warn("preflight could not read the cluster", "err", err)
		return nil, err
	}
	f.restore, f.rebalance = map[string][]PlanStep{}, map[string][]PlanStep{}
	for _, db := range f.dbs {
		r := plans.get(db)
		if r.restoreErr != nil {
			return nil, r.restoreErr
		}
		if r.rebalanceErr != nil {
			return nil, r.rebalanceErr
		}
		f.restore[db], f.rebalance[db] = r.restore, r.rebalance
	}
	p.setKnownDatabases(f.dbs)

	f.now = p.opts.Clock()
	f.backupRecent = p.opts.BackupRecent
	checks := evaluate(&f)
	for i, c := range extra {
		if c.Name == "" {
			c.Name = p.opts.Extra[i].Name()
		}
		checks = append(checks, c)
	}
	rep := &runbook.Report{
		Cluster:              p.opts.Cluster,
		OK:                   true,
		Checks:               checks,
		At:                   start,
		Took:                 time.Since(began),
		Databases:            f.dbs,
		Nodes:                f.nodes,
		LeafFailureDetection: f.detection,
	}
	if rep.Databases == nil {
		rep.Databases = []string{}
	}
	for _, c := range checks {
		if c.Status == runbook.Fail {
			rep.OK = false
		}
	}
	p.log.Info("preflight", "ok", rep.OK, "took", rep.Took, "databases", len(f.dbs), "nodes", len(f.nodes))
	return rep, nil
}

func (p *Preflighter) knownDatabases() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.known)
}

func (p *Preflighter) setKnownDatabases(dbs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.known = slices.Clone(dbs)
}

// planResult is both EXPLAINs of one database.
type planResult struct {
	restore, rebalance       []PlanStep
	restoreErr, rebalanceErr error
}

// planSet collects EXPLAIN results per database; claim makes sure each
// database is explained once even when both the known list and SHOW
// DATABASES name it.
type planSet struct {
	mu sync.Mutex
	m  map[string]*planResult
}

func newPlanSet() *planSet { return &planSet{m: map[string]*planResult{}} }

func (s *planSet) claim(db string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[db]; ok {
		return false
	}
	s.m[db] = &planResult{}
	return true
}

func (s *planSet) set(db string, restore bool, steps []PlanStep, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.m[db]
	if restore {
		r.restore, r.restoreErr = steps, err
	} else {
		r.rebalance, r.rebalanceErr = steps, err
	}
}

func (s *planSet) get(db string) planResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.m[db]
}

// group runs functions concurrently, at most limit at a time. The first
// error of a run function cancels the rest; record functions report
// through their own results and never cancel.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup

	mu  sync.Mutex
	err error
}

func newGroup(ctx context.Context, limit int) *group {
	ctx, cancel := context.WithCancel(ctx)
	return &group{ctx: ctx, cancel: cancel, sem: make(chan struct{}, limit)}
}

// run may be called from inside a running function.
func (g *group) run(fn func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		select {
		case g.sem <- struct{}{}:
		case <-g.ctx.Done():
			g.fail(g.ctx.Err())
			return
		}
		defer func() { <-g.sem }()
		if err := fn(g.ctx); err != nil {
			g.fail(err)
		}
	}()
}

func (g *group) record(fn func(ctx context.Context)) {
	g.run(func(ctx context.Context) error { fn(ctx); return nil })
}

// fail keeps the first error that is not just the echo of an earlier
// cancellation.
func (g *group) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil || (errors.Is(g.err, context.Canceled) && !errors.Is(err, context.Canceled)) {
		g.err = err
	}
	g.cancel()
}

func (g *group) wait() error {
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}
