package windows

import (
	"math/bits"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/sdbmaint/sdbmaint/runbook"

	// Windows name zones with CRON_TZ=; the binary must know every zone
	// even on a host without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// SpecExample is the example every schedule error ends with.
const SpecExample = `for example "CRON_TZ=Europe/Berlin 0 2 * * SUN" (02:00 Berlin time every Sunday)`

// searchYears bounds how far ahead Next looks, as robfig/cron does.
const searchYears = 5

// Spec is a parsed cron schedule: five standard fields (minute hour
// day-of-month month day-of-week) or a descriptor (@daily, @weekly, ...),
// optionally after CRON_TZ=Zone or TZ=Zone.
//
// Spec decides what happens on days when the zone changes its clocks, which
// robfig/cron leaves to chance (it drops a time that falls into the gap of a
// spring-forward and fires twice in the repeated hour of a fall-back). A
// wall-clock time that does not exist or exists twice is read with the UTC
// offset in effect before the change:
//   - spring forward (Europe/Berlin, 02:00 CET -> 03:00 CEST): 02:30 becomes
//     03:30 CEST, the instant 02:30 CET would have been;
//   - fall back (03:00 CEST -> 02:00 CET): 02:30 fires once, at 02:30 CEST.
type Spec struct {
	text  string
	loc   *time.Location
	sched *cron.SpecSchedule
}

// ParseSpec parses text with robfig/cron's standard parser. Specs without a
// CRON_TZ= or TZ= prefix are read in def (time.Local when nil). The error is
// Invalid, says what was wrong and ends with an example.
func ParseSpec(text string, def *time.Location) (spec *Spec, err error) {
	text = strings.TrimSpace(text)
	defer func() {
		if r := recover(); r != nil { // robfig/cron panics on some malformed specs
			spec, err = nil, runbook.Errorf(runbook.Invalid, "%q is not a valid cron schedule; %s", text, SpecExample)
		}
	}()
	if text == "" {
		return nil, runbook.Errorf(runbook.Invalid, "the schedule is empty; %s", SpecExample)
	}
	rest := text
	if strings.HasPrefix(text, "TZ=") || strings.HasPrefix(text, "CRON_TZ=") {
		_, after, _ := strings.Cut(text, "=")
		zone, sched, ok := strings.Cut(after, " ")
		if !ok || strings.TrimSpace(sched) == "" {
			return nil, runbook.Errorf(runbook.Invalid, "%q names a time zone but no schedule; %s", text, SpecExample)
		}
		if zone == "" {
			return nil, runbook.Errorf(runbook.Invalid, "%q has an empty time zone; %s", text, SpecExample)
		}
		if _, err := time.LoadLocation(zone); err != nil {
			return nil, runbook.Errorf(runbook.Invalid, "%q: unknown time zone %q (use an IANA name such as Europe/Berlin or America/New_York); %s", text, zone, SpecExample)
		}
		rest = strings.TrimSpace(sched)
	}
	if strings.HasPrefix(rest, "@every") {
		// @every counts from whenever the bot started, so the window's next
		// start (and its announcements) would move with every restart.
		return nil, runbook.Errorf(runbook.Invalid, "%q is not a calendar schedule: @every moves with restarts; %s", text, SpecExample)
	}
	s, err := cron.ParseStandard(text)
	if err != nil {
		return nil, runbook.Errorf(runbook.Invalid, "%q is not a valid cron schedule (%v); %s", text, err, SpecExample)
	}
	ss, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, runbook.Errorf(runbook.Invalid, "%q is not a calendar schedule; %s", text, SpecExample)
	}
	loc := ss.Location
	if loc == time.Local && def != nil {
		loc = def
	}
	if loc == nil {
		loc = time.Local
	}
	return &Spec{text: text, loc: loc, sched: ss}, nil
}

// String returns the spec as it was written.
func (s *Spec) String() string { return s.text }

// Location is the zone the spec's fields are read in.
func (s *Spec) Location() *time.Location { return s.loc }

// Next returns the first time after t that the schedule fires, or the zero
// time if it does not fire within five years. The result is in t's location.
func (s *Spec) Next(t time.Time) time.Time {
	local := t.In(s.loc)
	sec := bits.TrailingZeros64(s.sched.Second) // 0 for every standard spec
	// Start a day early: the offset rule can move a time of one day past
	// midnight into the next.
	day := time.Date(local.Year(), local.Month(), local.Day()-1, 12, 0, 0, 0, time.UTC)
	limit := day.AddDate(searchYears, 0, 0)
	var best time.Time
	var bestDay time.Time
	for ; !day.After(limit); day = day.AddDate(0, 0, 1) {
		if !best.IsZero() && day.Sub(bestDay) > 24*time.Hour {
			break // nothing on a later day can come before best
		}
		if s.sched.Month&(1<<uint(day.Month())) == 0 || !s.dayMatches(day) {
			continue
		}
		for h := 0; h < 24; h++ {
			if s.sched.Hour&(1<<uint(h)) == 0 {
				continue
			}
			for m := 0; m < 60; m++ {
				if s.sched.Minute&(1<<uint(m)) == 0 {
					continue
				}
				at := resolve(day.Year(), day.Month(), day.Day(), h, m, sec, s.loc)
				if at.After(t) && (best.IsZero() || at.Before(best)) {
					best, bestDay = at, day
				}
			}
		}
	}
	if best.IsZero() {
		return best
	}
	return best.In(t.Location())
}

// dayMatches applies cron's day rule: when both day-of-month and day-of-week
// are restricted, either may match; otherwise both must (robfig's rule).
func (s *Spec) dayMatches(day time.Time) bool {
	const starBit = 1 << 63
	domMatch := s.sched.Dom&(1<<uint(day.Day())) != 0
	dowMatch := s.sched.Dow&(1<<uint(day.Weekday())) != 0
	if s.sched.Dom&starBit != 0 || s.sched.Dow&starBit != 0 {
		return domMatch && dowMatch
	}
	return domMatch || dowMatch
}

// resolve turns a wall-clock time in loc into an instant. A time that exists
// twice is the earlier instant; a time that does not exist is read with the
// offset in effect before the clock change. Both rules amount to "use the
// offset from before the change".
func resolve(y int, mo time.Month, d, h, mi, sec int, loc *time.Location) time.Time {
	wall := time.Date(y, mo, d, h, mi, sec, 0, time.UTC).Unix()
	// The offsets a day either side of the wall time are the ones before and
	// after any clock change near it (zones change at most once a day).
	_, before := time.Unix(wall-86400, 0).In(loc).Zone()
	_, after := time.Unix(wall+86400, 0).In(loc).Zone()
	var (
		best  int64
		found bool
	)
	for _, off := range []int{before, after} {
		u := wall - int64(off)
		if _, o := time.Unix(u, 0).In(loc).Zone(); o == off && (!found || u < best) {
			best, found = u, true
		}
	}
	if !found { // in the gap of a spring-forward
		best = wall - int64(before)
	}
	return time.Unix(best, 0).In(loc)
}
