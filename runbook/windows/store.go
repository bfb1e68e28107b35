package windows

import (
	"context"
	"fmt"
	"time"
)

// Kind names what a firing does.
type Kind string

// Firing kinds.
const (
	KindAnnounce Kind = "announce" // a notice Lead ahead of the start
	KindStart    Kind = "start"    // open a run at the start
	KindEnd      Kind = "end"      // the window closed: say so if stop was not approved
)

// order sorts firings that are due at the same instant: a window's end
// before another's start, announcements before starts.
func (k Kind) order() int {
	switch k {
	case KindEnd:
		return 0
	case KindAnnounce:
		return 1
	default:
		return 2
	}
}

// Plan is what the scheduler decided to do with a firing when it claimed it.
type Plan string

// Plans.
const (
	PlanPerform Plan = "perform" // carry it out: it is due now (within the grace period)
	PlanMissed  Plan = "missed"  // report it as missed: it was due too long ago
	// PlanSkip is an approver's skip, claimed on the occurrence's start key:
	// whichever of the skip and the start claims the key first wins, so a
	// skip can never race a start that is already under way.
	PlanSkip Plan = "skip"
)

// Firing is the record of one thing the scheduler does for one occurrence of
// a window, claimed in the Store before it is carried out. Its Key is unique:
// at most one scheduler ever holds the claim.
type Firing struct {
	Key      string
	WindowID string
	Cluster  string
	Start    time.Time // the occurrence's start, which identifies it
	Kind     Kind
	Lead     time.Duration // for KindAnnounce
	Due      time.Time     // when it was (or is) due
	Plan     Plan
	// Owner is the scheduler instance holding the claim; By the person who
	// asked for it (PlanSkip), "" otherwise.
	Owner     string
	By        string
	ClaimedAt time.Time
	// Done is set once the firing was carried out (or reported missed);
	// Result says what came of it, for people and the audit.
	Done       bool
	FinishedAt time.Time
	Result     string
}

// FiringKey returns the unique key of a firing: the window, the occurrence's
// start in UTC, and the kind (with the lead time for announcements).
func FiringKey(windowID string, start time.Time, kind Kind, lead time.Duration) string {
	k := windowID + "/" + start.UTC().Format(time.RFC3339) + "/" + string(kind)
	if kind == KindAnnounce {
		k += fmt.Sprintf("-%ds", int64(lead/time.Second))
	}
	return k
}

// Store keeps the windows made in Slack and the firing records. The SQLite
// implementation is in package runbook/sqlite; windowstest has the
// conformance suite every implementation passes.
type Store interface {
	// AddWindow stores a window. An ID that exists is a Conflict.
	AddWindow(ctx context.Context, w Window) error
	// RemoveWindow deletes the stored window id and returns it. An unknown
	// id is Invalid.
	RemoveWindow(ctx context.Context, id string) (*Window, error)
	// StoredWindows returns every stored window, oldest first, unvalidated.
	StoredWindows(ctx context.Context) ([]Window, error)

	// Claim inserts f (with ClaimedAt and Owner set by the caller) if no
	// firing with its key exists, atomically. It returns true if this call
	// inserted it, and otherwise false and the firing already there.
	Claim(ctx context.Context, f Firing) (bool, Firing, error)
	// Finish marks the firing key, claimed by owner, as done with result.
	// It is a Conflict if the claim is no longer owner's or already done.
	Finish(ctx context.Context, key, owner, result string, at time.Time) error
	// Firing returns the firing key, or nil if there is none.
	Firing(ctx context.Context, key string) (*Firing, error)
	// Unfinished returns the claims not done that were made before t: their
	// owner died or hangs between claiming and finishing.
	Unfinished(ctx context.Context, before time.Time) ([]Firing, error)
	// TakeOver moves an unfinished claim from its current owner (as read
	// with Unfinished: owner and claimedAt) to owner at now. It returns false
	// if the claim changed in between (someone else took it over or the
	// owner finished it).
	TakeOver(ctx context.Context, key, fromOwner string, claimedAt time.Time, owner string, now time.Time) (bool, error)

	// Watermark is the latest time any scheduler has handled firings up to;
	// zero before the first. AdvanceWatermark raises it (never lowers it).
	Watermark(ctx context.Context) (time.Time, error)
	AdvanceWatermark(ctx context.Context, t time.Time) error
}
