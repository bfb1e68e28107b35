package windows

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// Limits on what a window may ask for. They keep a typo ("announce=24d",
// "duration=300h") from becoming a standing nuisance.
const (
	MaxDuration  = 7 * 24 * time.Hour  // the longest window
	MaxLead      = 14 * 24 * time.Hour // the earliest announcement
	MaxAnnounces = 6                   // announcements per occurrence
)

// DefaultDuration and DefaultAnnounce apply when a window made in Slack does
// not say (the config package has the same defaults for the file).
const DefaultDuration = 3 * time.Hour

// DefaultAnnounce returns the default lead times: a day, an hour and ten
// minutes ahead. It returns a fresh slice each time.
func DefaultAnnounce() []time.Duration {
	return []time.Duration{24 * time.Hour, time.Hour, 10 * time.Minute}
}

// Source says where a window was defined.
type Source string

// Window sources.
const (
	FromConfig Source = "config" // the clusters[].windows of the file: read-only here
	FromSlack  Source = "slack"  // /sdbmaint schedule: stored, removed by /sdbmaint unschedule
)

// Window is a recurring maintenance window of one cluster.
type Window struct {
	// ID names the window in commands and buttons. Stored windows get a
	// random "w-xxxxxx"; config windows a stable "cfg-xxxxxx" derived from
	// their cluster and spec, so their firings survive edits elsewhere in the
	// file.
	ID       string
	Cluster  string
	Spec     string        // the cron spec as written, with any CRON_TZ= prefix
	Duration time.Duration // how long the cluster may be down from the start
	// Announce holds the lead times of the announcements, longest first.
	Announce []time.Duration
	// Channel is where announcements go; "" means the bot's default channel.
	Channel   string
	Source    Source
	CreatedBy string // Slack user ID; "config" for config windows
	CreatedAt time.Time

	spec *Spec
}

// ConfigWindow returns the window a config file defines for cluster. Call
// Validate (or New, which validates) before using it.
func ConfigWindow(cluster, spec string, duration time.Duration, announce []time.Duration, channel string) Window {
	sum := sha256.Sum256([]byte(cluster + "\n" + strings.TrimSpace(spec)))
	return Window{
		ID:        "cfg-" + hex.EncodeToString(sum[:3]),
		Cluster:   cluster,
		Spec:      strings.TrimSpace(spec),
		Duration:  duration,
		Announce:  slices.Clone(announce),
		Channel:   channel,
		Source:    FromConfig,
		CreatedBy: "config",
	}
}

// newID returns a fresh ID for a stored window.
func newID() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("window id: %w", err)
	}
	return "w-" + hex.EncodeToString(b[:]), nil
}

// Validate parses the spec (reading it in def when it names no zone) and
// checks that it fires after now, and the duration and lead times, sorting
// the lead times longest first. Errors are Invalid and name what was wrong.
func (w *Window) Validate(def *time.Location, now time.Time) error {
	spec, err := ParseSpec(w.Spec, def)
	if err != nil {
		return err
	}
	if spec.Next(now).IsZero() {
		return runbook.Errorf(runbook.Invalid, "%q never fires (no matching day in the next %d years); %s", w.Spec, searchYears, SpecExample)
	}
	if w.Duration <= 0 {
		return runbook.Errorf(runbook.Invalid, "duration %s: must be positive, for example duration=3h", w.Duration)
	}
	if w.Duration > MaxDuration {
		return runbook.Errorf(runbook.Invalid, "duration %s: longer than the %s a window may last", fmtDuration(w.Duration), fmtDuration(MaxDuration))
	}
	if len(w.Announce) > MaxAnnounces {
		return runbook.Errorf(runbook.Invalid, "announce: %d lead times, at most %d", len(w.Announce), MaxAnnounces)
	}
	leads := slices.Clone(w.Announce)
	slices.SortFunc(leads, func(a, b time.Duration) int { return cmp.Compare(b, a) })
	leads = slices.Compact(leads)
	for _, l := range leads {
		if l <= 0 || l > MaxLead {
			return runbook.Errorf(runbook.Invalid, "announce %s: a lead time must be between 1s and %s, for example announce=24h,1h,10m", fmtDuration(l), fmtDuration(MaxLead))
		}
	}
	// Back-to-back occurrences that overlap would have the second start
	// while the first one's run is still open: always skipped. Refuse it.
	if gap := minGap(spec, now, 8); gap > 0 && w.Duration > gap {
		return runbook.Errorf(runbook.Invalid, "duration %s is longer than the %s between two starts of %q, so windows would overlap", fmtDuration(w.Duration), fmtDuration(gap), w.Spec)
	}
	w.Announce = leads
	w.spec = spec
	return nil
}

// Parse reads the window's spec (in def when it names no zone) without the
// other checks of Validate: for windows that were validated when they were
// made, read back from a store.
func (w *Window) Parse(def *time.Location) error {
	spec, err := ParseSpec(w.Spec, def)
	if err != nil {
		return err
	}
	w.spec = spec
	return nil
}

// minGap returns the shortest time between n consecutive firings of spec
// after now; 0 when it fires fewer than twice.
func minGap(spec *Spec, now time.Time, n int) time.Duration {
	var gap time.Duration
	t := spec.Next(now)
	for i := 0; i < n && !t.IsZero(); i++ {
		next := spec.Next(t)
		if next.IsZero() {
			break
		}
		if d := next.Sub(t); gap == 0 || d < gap {
			gap = d
		}
		t = next
	}
	return gap
}

// Location is the zone the window's spec is read in; nil before Validate.
func (w *Window) Location() *time.Location {
	if w.spec == nil {
		return nil
	}
	return w.spec.Location()
}

// Next returns the first start of the window after t, or the zero time.
// The window must have been validated.
func (w *Window) Next(t time.Time) time.Time {
	if w.spec == nil {
		return time.Time{}
	}
	return w.spec.Next(t)
}

// Starts returns up to n starts of the window after t.
func (w *Window) Starts(t time.Time, n int) []time.Time {
	var out []time.Time
	for len(out) < n {
		t = w.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// maxLead is the earliest announcement's lead time, 0 without any.
func (w *Window) maxLead() time.Duration {
	if len(w.Announce) == 0 {
		return 0
	}
	return w.Announce[0]
}

// fmtDuration prints a duration the way people write it: 3h, 1h30m, 10m,
// 24h, 2d (never "3h0m0s").
func fmtDuration(d time.Duration) string {
	if d <= 0 {
		return d.String()
	}
	var b strings.Builder
	if days := d / (24 * time.Hour); days > 1 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", days)
	}
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		d -= m * time.Minute
	}
	if d > 0 {
		fmt.Fprintf(&b, "%s", d.Round(time.Second).String())
	}
	return b.String()
}

// FormatDuration prints d the way people write it: 3h, 1h30m, 10m, 2d.
func FormatDuration(d time.Duration) string { return fmtDuration(d) }

// ParseDuration reads a duration as people write it in commands: Go's form
// (3h, 90m, 1h30m) plus whole days (2d).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok && n != "" && !strings.ContainsAny(n, "hmsuµn.") {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n && days > 0 {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, runbook.Errorf(runbook.Invalid, "%q is not a duration; write it like 3h, 90m, 1h30m or 2d", s)
	}
	return d, nil
}
