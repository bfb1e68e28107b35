package bot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// CardStore keeps where each run's card is (channel and message ts), so
// that after a restart the bot updates the old card instead of posting a
// new one.
type CardStore interface {
	// SaveCard records the card of runID.
	SaveCard(ctx context.Context, runID, channel, ts string) error
	// LoadCard returns the card of runID, or "", "" if none is recorded.
	LoadCard(ctx context.Context, runID string) (channel, ts string, err error)
}

// SQLCardStore keeps card locations in a table of its own (slack_cards)
// in the runbook store's database, migrated as component "bot". It uses
// only portable SQL.
type SQLCardStore struct {
	db *sql.DB
}

var _ CardStore = (*SQLCardStore)(nil)

// CardSchema are the migration steps of the bot's table.
var CardSchema = []string{`CREATE TABLE slack_cards (
	run_id  VARCHAR(64) NOT NULL PRIMARY KEY,
	channel VARCHAR(64) NOT NULL,
	ts      VARCHAR(64) NOT NULL
)`}

// Migrator is a database that keeps several components' tables and their
// schema versions: runbook/sqlite's Store.
type Migrator interface {
	Migrate(ctx context.Context, component string, steps []string) error
	DB() *sql.DB
}

// NewSQLCardStore brings the bot's table up to date in m and returns the
// store.
func NewSQLCardStore(ctx context.Context, m Migrator) (*SQLCardStore, error) {
	if err := m.Migrate(ctx, "bot", CardSchema); err != nil {
		return nil, fmt.Errorf("card store: %w", err)
	}
	return &SQLCardStore{db: m.DB()}, nil
}

// SaveCard records (or replaces) the card of runID.
func (s *SQLCardStore) SaveCard(ctx context.Context, runID, channel, ts string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save card of run %s: %w", runID, err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `DELETE FROM slack_cards WHERE run_id = ?`, runID); err != nil {
		return fmt.Errorf("save card of run %s: %w", runID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO slack_cards (run_id, channel, ts) VALUES (?, ?, ?)`, runID, channel, ts); err != nil {
		return fmt.Errorf("save card of run %s: %w", runID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save card of run %s: %w", runID, err)
	}
	return nil
}

// LoadCard returns the card of runID, or empty strings if none is recorded.
func (s *SQLCardStore) LoadCard(ctx context.Context, runID string) (string, string, error) {
	var ch, ts string
	err := s.db.QueryRowContext(ctx, `SELECT channel, ts FROM slack_cards WHERE run_id = ?`, runID).Scan(&ch, &ts)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("load card of run %s: %w", runID, err)
	}
	return ch, ts, nil
}
