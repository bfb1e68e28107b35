package main

import (
	"context"
	"database/sql"

	"github.com/sdbmaint/sdbmaint/config"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/mysqlstore"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
)

// configStore is the store the config names (store.path: an embedded
// SQLite file; store.mysql_dsn: a database shared by several bot replicas)
// with what serve needs besides the runs: tables of other components in
// the same database (the bot's card locations, through bot.NewSQLCardStore)
// and the window scheduler's store.
type configStore interface {
	runbook.Store
	Migrate(ctx context.Context, component string, steps []string) error
	DB() *sql.DB
	// WindowStore migrates the window scheduler's tables and returns its
	// store, which shares this store's connections.
	WindowStore(ctx context.Context) (windows.Store, error)
}

// openConfiguredStore opens the store cfg names and migrates its schema.
// Close it when done.
func openConfiguredStore(ctx context.Context, cfg *config.Config) (configStore, error) {
	if dsn := cfg.Store.MySQLDSN.Reveal(); dsn != "" {
		s, err := mysqlstore.Open(ctx, dsn, mysqlstore.Options{})
		if err != nil {
			return nil, err
		}
		return mysqlConfigStore{s}, nil
	}
	s, err := sqlite.Open(ctx, cfg.Store.Path)
	if err != nil {
		return nil, err
	}
	return sqliteConfigStore{s}, nil
}

type sqliteConfigStore struct{ *sqlite.Store }

func (s sqliteConfigStore) WindowStore(ctx context.Context) (windows.Store, error) {
	ws, err := s.Windows(ctx)
	if err != nil {
		return nil, err
	}
	return ws, nil
}

type mysqlConfigStore struct{ *mysqlstore.Store }

func (s mysqlConfigStore) WindowStore(ctx context.Context) (windows.Store, error) {
	ws, err := s.Windows(ctx)
	if err != nil {
		return nil, err
	}
	return ws, nil
}
