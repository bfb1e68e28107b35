package sqlstore

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

// Windows is the window scheduler's windows.Store in the tables its store
// package migrated (component "windows"). Times are Unix nanoseconds in
// every dialect, so that comparisons in SQL are exact.
type Windows struct {
	db *sql.DB
	d  Dialect
	q  windowQueries
}

var _ windows.Store = (*Windows)(nil)

type windowQueries struct {
	claim, firing, finish, unfinished, lockClaim, takeOver, removeWindow, advance string
}

const windowColumns = `id, cluster, spec, duration_ns, announce, channel, source, created_by, created_at`

// NewWindows returns the window store over db, whose window tables d
// describes.
func NewWindows(db *sql.DB, d Dialect) *Windows {
	key := d.FiringKey
	firingColumns := key + `, window_id, cluster, start, kind, lead_ns, due, plan, owner, by_user, claimed_at, done, finished_at, result`
	return &Windows{db: db, d: d, q: windowQueries{
		claim: `INSERT INTO window_firings (` + key + `, window_id, cluster, start, kind, lead_ns, due, plan, owner, by_user, claimed_at, result)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')`,
		firing: `SELECT ` + firingColumns + ` FROM window_firings WHERE ` + key + ` = ?`,
		finish: `UPDATE window_firings SET done = 1, finished_at = ?, result = ? WHERE ` + key + ` = ? AND owner = ? AND done = 0`,
		unfinished: `SELECT ` + firingColumns + ` FROM window_firings WHERE done = 0 AND claimed_at < ?
			ORDER BY claimed_at, ` + key,
		lockClaim:    `SELECT COUNT(*) FROM window_firings WHERE ` + key + ` = ? AND owner = ? AND claimed_at = ? AND done = 0` + d.ForUpdate,
		takeOver:     `UPDATE window_firings SET owner = ?, claimed_at = ? WHERE ` + key + ` = ?`,
		removeWindow: `SELECT ` + windowColumns + ` FROM windows WHERE id = ?` + d.ForUpdate,
		advance: `INSERT INTO window_watermark (id, at) VALUES (1, ?) ` + d.OnConflict("id") +
			` at = CASE WHEN ` + d.Excluded("at") + ` > at THEN ` + d.Excluded("at") + ` ELSE at END`,
	}}
}

// AddWindow stores a window made in Slack; an ID that exists is a Conflict.
func (ws *Windows) AddWindow(ctx context.Context, w windows.Window) error {
	if w.ID == "" || w.Cluster == "" || w.Spec == "" {
		return runbook.Errorf(runbook.Invalid, "a window needs an ID, a cluster and a schedule")
	}
	ann, err := json.Marshal(w.Announce)
	if err != nil {
		return fmt.Errorf("add window %s: %w", w.ID, err)
	}
	_, err = ws.db.ExecContext(ctx, `INSERT INTO windows (`+windowColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.Cluster, w.Spec, int64(w.Duration), string(ann), w.Channel, string(w.Source), w.CreatedBy, nanos(w.CreatedAt))
	if err != nil && ws.d.IsDuplicate(err) {
		return runbook.Wrap(runbook.Conflict, err, "window %s exists", w.ID)
	}
	if err != nil {
		return fmt.Errorf("add window %s: %w", w.ID, err)
	}
	return nil
}

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
	w.Duration, w.Source, w.CreatedAt = time.Duration(dur), windows.Source(source), fromNanos(created)
	if err := json.Unmarshal([]byte(ann), &w.Announce); err != nil {
		return w, fmt.Errorf("window %s: bad announce %q in store: %w", w.ID, ann, err)
	}
	if w.Announce == nil {
		w.Announce = []time.Duration{}
	}
	return w, nil
}

// RemoveWindow deletes a stored window and returns it; an unknown id is
// Invalid.
func (ws *Windows) RemoveWindow(ctx context.Context, id string) (*windows.Window, error) {
	var w windows.Window
	err := write(ctx, ws.db, &ws.d, "remove window "+id, func(tx *sql.Tx) error {
		var err error
		w, err = scanWindow(tx.QueryRowContext(ctx, ws.q.removeWindow, id))
		if errors.Is(err, sql.ErrNoRows) {
			return runbook.Errorf(runbook.Invalid, "there is no stored window %q", id)
		}
		if err != nil {
			return fmt.Errorf("remove window %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM windows WHERE id = ?`, id); err != nil {
			return fmt.Errorf("remove window %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &w, nil
}

// StoredWindows returns the stored windows, oldest first.
func (ws *Windows) StoredWindows(ctx context.Context) ([]windows.Window, error) {
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

func scanFiring(row interface{ Scan(...any) error }) (windows.Firing, error) {
	var (
		f                                windows.Firing
		start, lead, due, claimed, ended int64
		kind, plan                       string
	)
	err := row.Scan(&f.Key, &f.WindowID, &f.Cluster, &start, &kind, &lead, &due, &plan, &f.Owner, &f.By,
		&claimed, &f.Done, &ended, &f.Result)
	f.Start, f.Kind, f.Lead, f.Due, f.Plan = fromNanos(start), windows.Kind(kind), time.Duration(lead), fromNanos(due), windows.Plan(plan)
	f.ClaimedAt, f.FinishedAt = fromNanos(claimed), fromNanos(ended)
	return f, err
}

// Claim inserts f unless a firing with its key exists. The key is the
// primary key, so the database decides between processes: a second insert
// fails, and that caller reads the claim that won (claims are never
// deleted).
func (ws *Windows) Claim(ctx context.Context, f windows.Firing) (bool, windows.Firing, error) {
	if f.Key == "" || f.Owner == "" {
		return false, windows.Firing{}, runbook.Errorf(runbook.Invalid, "a claim needs a key and an owner")
	}
	_, err := ws.db.ExecContext(ctx, ws.q.claim, f.Key, f.WindowID, f.Cluster, nanos(f.Start), string(f.Kind), int64(f.Lead),
		nanos(f.Due), string(f.Plan), f.Owner, f.By, nanos(f.ClaimedAt))
	if err == nil {
		return true, f, nil
	}
	if !ws.d.IsDuplicate(err) {
		return false, windows.Firing{}, fmt.Errorf("claim %s: %w", f.Key, err)
	}
	cur, err := scanFiring(ws.db.QueryRowContext(ctx, ws.q.firing, f.Key))
	if err != nil {
		return false, windows.Firing{}, fmt.Errorf("claim %s: read the existing claim: %w", f.Key, err)
	}
	return false, cur, nil
}

// Finish marks a claimed firing done; it is a Conflict if the claim is no
// longer owner's or already done.
func (ws *Windows) Finish(ctx context.Context, key, owner, result string, at time.Time) error {
	res, err := ws.db.ExecContext(ctx, ws.q.finish, nanos(at), result, key, owner)
	if err != nil {
		return fmt.Errorf("finish %s: %w", key, err)
	}
	// done changes from 0, so a matched row is a changed row, which is
	// what MySQL counts.
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("finish %s: %w", key, err)
	} else if n == 0 {
		return runbook.Errorf(runbook.Conflict, "firing %s is not an unfinished claim of %s", key, owner)
	}
	return nil
}

// Firing returns the firing key, or nil.
func (ws *Windows) Firing(ctx context.Context, key string) (*windows.Firing, error) {
	f, err := scanFiring(ws.db.QueryRowContext(ctx, ws.q.firing, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read firing %s: %w", key, err)
	}
	return &f, nil
}

// Unfinished returns the claims not done that were made before t.
func (ws *Windows) Unfinished(ctx context.Context, before time.Time) ([]windows.Firing, error) {
	rows, err := ws.db.QueryContext(ctx, ws.q.unfinished, nanos(before))
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
// claim is read under the dialect's lock and compared first: MySQL counts
// changed rows, not matched ones, so an UPDATE's row count alone cannot
// tell (a takeover by the same owner in the same nanosecond changes
// nothing).
func (ws *Windows) TakeOver(ctx context.Context, key, fromOwner string, claimedAt time.Time, owner string, now time.Time) (bool, error) {
	var took bool
	err := write(ctx, ws.db, &ws.d, "take over "+key, func(tx *sql.Tx) error {
		took = false
		var n int
		if err := tx.QueryRowContext(ctx, ws.q.lockClaim, key, fromOwner, nanos(claimedAt)).Scan(&n); err != nil {
			return fmt.Errorf("take over %s: %w", key, err)
		}
		if n == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, ws.q.takeOver, owner, nanos(now), key); err != nil {
			return fmt.Errorf("take over %s: %w", key, err)
		}
		took = true
		return nil
	})
	return took && err == nil, err
}

// Watermark returns how far the schedulers have got.
func (ws *Windows) Watermark(ctx context.Context) (time.Time, error) {
	var at int64
	err := ws.db.QueryRowContext(ctx, `SELECT at FROM window_watermark WHERE id = 1`).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read watermark: %w", err)
	}
	return fromNanos(at), nil
}

// AdvanceWatermark raises the watermark to t (never lowers it).
func (ws *Windows) AdvanceWatermark(ctx context.Context, t time.Time) error {
	if _, err := ws.db.ExecContext(ctx, ws.q.advance, nanos(t)); err != nil {
		return fmt.Errorf("advance watermark: %w", err)
	}
	return nil
}
