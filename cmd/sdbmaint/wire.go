package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sdbmaint/sdbmaint/cluster"
	"github.com/sdbmaint/sdbmaint/config"
	"github.com/sdbmaint/sdbmaint/runbook"
)

// This file is the one place that turns a cluster's config into the
// adapters of package cluster: config knows nothing of SQL or SSH, and
// cluster knows nothing of the YAML file.

// listNodesTimeout bounds one sdb-admin list-nodes; stop and start are
// bounded by the engine's context, since a node may take long to stop.
const listNodesTimeout = 2 * time.Minute

// wiredCluster is one cluster's adapters and how to close them.
type wiredCluster struct {
	rb     *runbook.Cluster
	sql    *cluster.Client
	runner cluster.Runner
	closer func() error
}

// Close closes the SQL pool and the SSH connection.
func (w *wiredCluster) Close() error { return w.closer() }

// wireCluster builds the adapters for cl: a SQL client for its master
// aggregator, a runner for its toolbox host (SSH, or this machine for
// toolbox: {local: true}), sdb-admin over that runner, and a Preflighter
// that also verifies the packages the config lists. Nothing connects yet.
func wireCluster(cl *config.Cluster, knownDatabases []string, log *slog.Logger) (*wiredCluster, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base := log
	log = log.With("cluster", cl.Name)
	sqlc, err := cluster.NewClient(cluster.SQLOptions{
		Addr:     cl.SQL.Addr,
		User:     cl.SQL.User,
		Password: cl.SQL.Password.Reveal(),
		Logger:   log,
	})
	if err != nil {
		return nil, err
	}
	runner, closeRunner, err := toolboxRunner(cl, log)
	if err != nil {
		sqlc.Close()
		return nil, err
	}
	admin := &cluster.SDBAdmin{Runner: runner, Command: cl.Toolbox.SDBAdmin, ListTimeout: listNodesTimeout}
	var extra []cluster.ExtraCheck
	if pc := packagesCheck(cl, runner); pc != nil {
		extra = append(extra, pc)
	}
	flight := cluster.NewPreflighter(cluster.PreflightOptions{
		Cluster:        cl.Name,
		SQL:            sqlc,
		Admin:          admin,
		BackupRecent:   cl.Backup.Recent,
		Extra:          extra,
		KnownDatabases: knownDatabases,
		Logger:         base, // the Preflighter names the cluster itself
	})
	return &wiredCluster{
		rb: &runbook.Cluster{
			Name:            cl.Name,
			Preflight:       flight,
			DB:              sqlc,
			Detection:       sqlc,
			Ping:            sqlc,
			Nodes:           admin,
			BackupTo:        cl.Backup.To,
			AutoApprove:     cl.AutoApprove,
			RecoveryTimeout: cl.RecoveryTimeout,
			StopParallelism: cl.StopParallelism,
		},
		sql:    sqlc,
		runner: runner,
		closer: func() error { return errors.Join(sqlc.Close(), closeRunner()) },
	}, nil
}

// toolboxRunner is the runner for the cluster's toolbox host: SSH, or this
// machine for toolbox: {local: true}. Nothing connects yet. Close it with
// the function it returns.
func toolboxRunner(cl *config.Cluster, log *slog.Logger) (cluster.Runner, func() error, error) {
	if cl.Toolbox.Local {
		return &cluster.LocalRunner{Logger: log}, func() error { return nil }, nil
	}
	ssh, err := cluster.NewSSHRunner(cluster.SSHOptions{
		Addr:           cl.Toolbox.SSH.Addr,
		User:           cl.Toolbox.SSH.User,
		KeyFile:        cl.Toolbox.SSH.KeyFile,
		KnownHostsFile: cl.Toolbox.SSH.KnownHosts,
		Logger:         log,
	})
	if err != nil {
		return nil, nil, err
	}
	return ssh, ssh.Close, nil
}

// clusterSource is the runbook.ClusterSource of a config. A cluster's
// adapters are built on first use and kept, so that its SQL pool, its SSH
// connection and what its Preflighter learnt last time are reused.
type clusterSource struct {
	cfg *config.Config
	log *slog.Logger

	// known, when set, gives the databases a cluster's last run saw, to
	// seed its Preflighter (see seedFromHistory).
	known func(cluster string) []string

	mu    sync.Mutex
	wired map[string]*wiredCluster
}

var _ runbook.ClusterSource = (*clusterSource)(nil)

func newClusterSource(cfg *config.Config, log *slog.Logger) *clusterSource {
	return &clusterSource{cfg: cfg, log: log, wired: map[string]*wiredCluster{}}
}

// Cluster returns the adapters of the cluster called name; an unknown name
// is an Invalid error listing the known ones.
func (s *clusterSource) Cluster(_ context.Context, name string) (*runbook.Cluster, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.wired[name]; ok {
		return w.rb, nil
	}
	cl, ok := s.cfg.Cluster(name)
	if !ok {
		return nil, runbook.Errorf(runbook.Invalid, "no cluster %q (clusters: %s)", name, strings.Join(s.cfg.ClusterNames(), ", "))
	}
	var known []string
	if s.known != nil {
		known = s.known(name)
	}
	w, err := wireCluster(cl, known, s.log)
	if err != nil {
		return nil, err
	}
	s.wired[name] = w
	return w.rb, nil
}

// Names lists the clusters in the order of the config file.
func (s *clusterSource) Names() []string { return s.cfg.ClusterNames() }

// Close closes every cluster's connections.
func (s *clusterSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, w := range s.wired {
		errs = append(errs, w.Close())
		delete(s.wired, name)
	}
	return errors.Join(errs...)
}

// seedFromHistory makes the source seed each cluster's Preflighter with the
// databases of its newest run in store, so that the first preflight after
// a start is as fast as later ones. A store that cannot answer seeds
// nothing: preflight then reads the names first, as without history.
func (s *clusterSource) seedFromHistory(ctx context.Context, store runbook.RunStore) {
	s.known = func(cluster string) []string {
		runs, err := store.History(ctx, cluster, 1)
		if err != nil || len(runs) == 0 || runs[0].Preflight == nil {
			return nil
		}
		return runs[0].Preflight.Databases
	}
}
