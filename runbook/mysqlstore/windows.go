package mysqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
)

// This file is the maintenance-window scheduler's store (windows.Store) in
// the same database as the runs. Its tables have their own schema
// component, "windows", migrated by Store.Windows. Times are Unix
// nanoseconds, as in the runbook's tables.

// windowsSchema is the window tables' schema, one entry per version; never
// edit an entry that has shipped, append one.
var windowsSchema = []string{
	// 1: windows made in Slack, firing claims, the scheduler watermark.
	`
CREATE TABLE IF NOT EXISTS windows (
	id          VARBINARY(64) NOT NULL PRIMARY KEY,
	cluster     VARBINARY(191) NOT NULL,
	spec        VARCHAR(255) NOT NULL,
	duration_ns BIGINT NOT NULL,
	announce    TEXT NOT NULL,
	channel     VARCHAR(64) NOT NULL DEFAULT '',
	source      VARBINARY(32) NOT NULL,
	created_by  VARCHAR(255) NOT NULL,
	created_at  BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per firing (announcement, start, end notice, skip) of one
-- occurrence of a window. The primary key is the claim: whoever inserts the
-- row carries the firing out, so it happens at most once across replicas.
CREATE TABLE IF NOT EXISTS window_firings (
	firing_key  VARBINARY(255) NOT NULL PRIMARY KEY,
	window_id   VARBINARY(64) NOT NULL,
	cluster     VARBINARY(191) NOT NULL,
	start       BIGINT NOT NULL,
	kind        VARBINARY(32) NOT NULL,
	lead_ns     BIGINT NOT NULL DEFAULT 0,
	due         BIGINT NOT NULL,
	plan        VARBINARY(32) NOT NULL,
	owner       VARCHAR(255) NOT NULL,
	by_user     VARCHAR(255) NOT NULL DEFAULT '',
	claimed_at  BIGINT NOT NULL,
	done        BOOLEAN NOT NULL DEFAULT FALSE,
	finished_at BIGINT NOT NULL DEFAULT 0,
	result      TEXT NOT NULL,
	KEY window_firings_unfinished (done, claimed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS window_watermark (
	id INT NOT NULL PRIMARY KEY,
	at BIGINT NOT NULL,
	CONSTRAINT window_watermark_one_row CHECK (id = 1)
) ENGINE=InnoDB;
`,
}

// WindowStore is the window scheduler's windows.Store in the Store's
// database.
type WindowStore struct {
	db *sql.DB
}

var _ windows.Store = (*WindowStore)(nil)

// Windows migrates the window tables and returns their store. It shares the
// Store's connection pool: close the Store, not the WindowStore.
func (s *Store) Windows(ctx context.Context) (*WindowStore, error) {
	if err := s.Migrate(ctx, "windows", windowsSchema); err != nil {
		return nil, err
	}
	return &WindowStore{db: s.db}, nil
}

// AddWindow stores a window made in Slack.
func (ws *WindowStore) AddWindow(ctx context.Context, w windows.Window) error {
	if w.ID == "" || w.Cluster == "" || w.Spec == "" {
		return runbook.Errorf(runbook.Invalid, "a window needs an ID, a cluster and a schedule")
	}
	ann, err := json.Marshal(w.Announce)
	if err != nil {
		return fmt.Errorf("add window %s: %w", w.ID, err)
	}
	_, err = ws.db.ExecContext(ctx, `INSERT INTO windows
		(id, cluster, spec, duration_ns, announce, channel, source, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.Cluster, w.Spec, int64(w.Duration), string(ann), w.Channel, string(w.Source), w.CreatedBy, ns(w.CreatedAt))
	if errNumber(err) == erDupEntry {
		return runbook.Wrap(runbook.Conflict, err, "window %s exists", w.ID)
	}
	if err != nil {
		return fmt.Errorf("add window %s: %w", w.ID, err)
	}
	return nil
}

const windowColumns = `id, cluster, spec, duration_ns, announce, channel, source, created_by, created_at`

func scanWindow(row interface{ Scan(...any) error }) (windows.Window, error) {
	var (
		w       windows.Window
		dur     int64
		ann     string
		source  string
		created int64
	)
	if err := row.Scan(&w.ID, &w.Cluster, &w.Spec, &dur, &ann, &w.Channel, &source, &w.CreatedBy, &created); err != nil {
		return w, err
	}
	w.Duration, w.Source, w.CreatedAt = time.Duration(dur), windows.Source(source), fromNS(created)
	if err := json.Unmarshal([]byte(ann), &w.Announce); err != nil {
		return w, fmt.Errorf("window %s: bad announce %q in store: %w", w.ID, ann, err)
	}
	if w.Announce == nil {
		w.Announce = []time.Duration{}
	}
	return w, nil
}

// RemoveWindow deletes a stored window and returns it.
func (ws *WindowStore) RemoveWindow(ctx context.Context, id string) (*windows.Window, error) {
	tx, err := ws.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("remove window %s: %w", id, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	w, err := scanWindow(tx.QueryRowContext(ctx, `SELECT `+windowColumns+` FROM windows WHERE id = ? FOR UPDATE`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, runbook.Errorf(runbook.Invalid, "there is no stored window %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("remove window %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM windows WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("remove window %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("remove window %s: commit: %w", id, err)
	}
	return &w, nil
}

// StoredWindows returns the stored windows, oldest first.
func (ws *WindowStore) StoredWindows(ctx context.Context) ([]windows.Window, error) {
	rows, err := ws.db.QueryContext(ctx, `SELECT `+windowColumns+` FROM windows ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	defer rows.Close()
	var out []windows.Window
	for rows.Next() {
		w, err := scanWindow(rows)
		if err != nil {
			return nil, fmt.Errorf("read windows: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

const firingColumns = `firing_key, window_id, cluster, start, kind, lead_ns, due, plan, owner, by_user, claimed_at, done, finished_at, result`

func scanFiring(row interface{ Scan(...any) error }) (windows.Firing, error) {
	var (
		f                                windows.Firing
		start, lead, due, claimed, ended int64
		kind, plan                       string
	)
	err := row.Scan(&f.Key, &f.WindowID, &f.Cluster, &start, &kind, &lead, &due, &plan, &f.Owner, &f.By,
		&claimed, &f.Done, &ended, &f.Result)
	f.Start, f.Kind, f.Lead, f.Due, f.Plan = fromNS(start), windows.Kind(kind), time.Duration(lead), fromNS(due), windows.Plan(plan)
	f.ClaimedAt, f.FinishedAt = fromNS(claimed), fromNS(ended)
	return f, err
}

// Claim inserts f unless a firing with its key exists. The primary key
// decides between replicas: the second insert fails, and that one reads the
// claim that won.
func (ws *WindowStore) Claim(ctx context.Context, f windows.Firing) (bool, windows.Firing, error) {
	if f.Key == "" || f.Owner == "" {
		return false, windows.Firing{}, runbook.Errorf(runbook.Invalid, "a claim needs a key and an owner")
	}
	_, err := ws.db.ExecContext(ctx, `INSERT INTO window_firings
		(firing_key, window_id, cluster, start, kind, lead_ns, due, plan, owner, by_user, claimed_at, result)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')`,
		f.Key, f.WindowID, f.Cluster, ns(f.Start), string(f.Kind), int64(f.Lead), ns(f.Due), string(f.Plan),
		f.Owner, f.By, ns(f.ClaimedAt))
	if err == nil {
		return true, f, nil
	}
	if errNumber(err) != erDupEntry {
		return false, windows.Firing{}, fmt.Errorf("claim %s: %w", f.Key, err)
	}
	cur, err := scanFiring(ws.db.QueryRowContext(ctx, `SELECT `+firingColumns+` FROM window_firings WHERE firing_key = ?`, f.Key))
	if err != nil {
		return false, windows.Firing{}, fmt.Errorf("claim %s: read the existing claim: %w", f.Key, err)
	}
	return false, cur, nil
}

// Finish marks a claimed firing done.
func (ws *WindowStore) Finish(ctx context.Context, key, owner, result string, at time.Time) error {
	res, err := ws.db.ExecContext(ctx, `UPDATE window_firings SET done = TRUE, finished_at = ?, result = ?
		WHERE firing_key = ? AND owner = ? AND NOT done`, ns(at), result, key, owner)
	if err != nil {
		return fmt.Errorf("finish %s: %w", key, err)
	}
	// done changes from FALSE, so a matched row is always a changed row.
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("finish %s: %w", key, err)
	} else if n == 0 {
		return runbook.Errorf(runbook.Conflict, "firing %s is not an unfinished claim of %s", key, owner)
	}
	return nil
}

// Firing returns the firing key, or nil.
func (ws *WindowStore) Firing(ctx context.Context, key string) (*windows.Firing, error) {
	f, err := scanFiring(ws.db.QueryRowContext(ctx, `SELECT `+firingColumns+` FROM window_firings WHERE firing_key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read firing %s: %w", key, err)
	}
	return &f, nil
}

// Unfinished returns the claims not done that were made before t.
func (ws *WindowStore) Unfinished(ctx context.Context, before time.Time) ([]windows.Firing, error) {
	rows, err := ws.db.QueryContext(ctx, `SELECT `+firingColumns+` FROM window_firings
		WHERE NOT done AND claimed_at < ? ORDER BY claimed_at, firing_key`, ns(before))
	if err != nil {
		return nil, fmt.Errorf("read unfinished firings: %w", err)
	}
	defer rows.Close()
	var out []windows.Firing
	for rows.Next() {
		f, err := scanFiring(rows)
		if err != nil {
			return nil, fmt.Errorf("read unfinished firings: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// TakeOver moves an unfinished claim to owner if it is still as read. The
// claim is locked and compared first: MySQL counts changed rows, not
// matched ones, so the UPDATE's row count alone cannot tell.
func (ws *WindowStore) TakeOver(ctx context.Context, key, fromOwner string, claimedAt time.Time, owner string, now time.Time) (bool, error) {
	tx, err := ws.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("take over %s: %w", key, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	var n int
	err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM window_firings
		WHERE firing_key = ? AND owner = ? AND claimed_at = ? AND NOT done FOR UPDATE`, key, fromOwner, ns(claimedAt)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("take over %s: %w", key, err)
	}
	if n == 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE window_firings SET owner = ?, claimed_at = ? WHERE firing_key = ?`, owner, ns(now), key); err != nil {
		return false, fmt.Errorf("take over %s: %w", key, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("take over %s: commit: %w", key, err)
	}
	return true, nil
}

// Watermark returns how far the schedulers have got.
func (ws *WindowStore) Watermark(ctx context.Context) (time.Time, error) {
	var at int64
	err := ws.db.QueryRowContext(ctx, `SELECT at FROM window_watermark WHERE id = 1`).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read watermark: %w", err)
	}
	return fromNS(at), nil
}

// AdvanceWatermark raises the watermark to t (never lowers it).
func (ws *WindowStore) AdvanceWatermark(ctx context.Context, t time.Time) error {
	_, err := ws.db.ExecContext(ctx, `INSERT INTO window_watermark (id, at) VALUES (1, ?)
		ON DUPLICATE KEY UPDATE at = GREATEST(at, VALUES(at))`, ns(t))
	if err != nil {
		return fmt.Errorf("advance watermark: %w", err)
	}
	return nil
}
