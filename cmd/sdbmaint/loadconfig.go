package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sdbmaint/sdbmaint/config"
)

// errNoConfig is loadConfig's answer to an empty --config: a usage error,
// which subcommands report with exit 2.
var errNoConfig = errors.New("--config is required")

// loadConfig loads the config file named by a subcommand's --config flag,
// with the subcommand's environment for ${VAR} secrets. An invalid file is
// a *configError listing every problem, one per line; errors.As still
// finds the config.Errors inside it.
func loadConfig(env *Env, path string) (*config.Config, error) {
	if path == "" {
		return nil, errNoConfig
	}
	cfg, err := config.Load(path, env.Getenv)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			return nil, &configError{path: path, errs: errs}
		}
		return nil, err
	}
	return cfg, nil
}

// configError is an invalid config file, worded for a terminal.
type configError struct {
	path string
	errs config.Errors
}

func (e *configError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config %s is not valid (%s):", e.path, problems(len(e.errs)))
	for _, fe := range e.errs {
		b.WriteString("\n  ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

func (e *configError) Unwrap() error { return e.errs }

// findCluster returns the cluster called name, or an error naming the
// clusters the file does have.
func findCluster(cfg *config.Config, name string) (*config.Cluster, error) {
	if c, ok := cfg.Cluster(name); ok {
		return c, nil
	}
	where := "the config"
	if cfg.Path != "" {
		where = cfg.Path
	}
	return nil, fmt.Errorf("no cluster %q in %s (clusters: %s)", name, where, strings.Join(cfg.ClusterNames(), ", "))
}

func problems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}
