package windows

import (
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/sdbmaint/sdbmaint/runbook"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestSpecNext walks schedules across ordinary days and both clock changes
// of a CRON_TZ zone, comparing every start with the instant it must be.
func TestSpecNext(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, spec string
		after      string
		want       []string // consecutive starts, UTC
	}{
		{"berlin sunday 02:00 in winter", "CRON_TZ=Europe/Berlin 0 2 * * SUN", "2026-01-01T00:00:00Z",
			[]string{"2026-01-04T01:00:00Z", "2026-01-11T01:00:00Z"}},
		{"berlin 02:30 on the spring-forward sunday becomes 03:30 CEST", "CRON_TZ=Europe/Berlin 30 2 * * SUN", "2026-03-22T12:00:00Z",
			// 29 March 2026: 02:00 CET jumps to 03:00 CEST; 02:30 does not
			// exist and is read with the CET offset: 01:30Z = 03:30 CEST.
			[]string{"2026-03-29T01:30:00Z", "2026-04-05T00:30:00Z"}},
		{"berlin 02:30 on the fall-back sunday fires once", "CRON_TZ=Europe/Berlin 30 2 * * SUN", "2026-10-18T12:00:00Z",
			// 25 October 2026: 03:00 CEST falls back to 02:00 CET, so 02:30
			// happens twice; only the first (CEST, 00:30Z) is a start.
			[]string{"2026-10-25T00:30:00Z", "2026-11-01T01:30:00Z"}},
		{"daily 02:30 through the spring-forward", "TZ=Europe/Berlin 30 2 * * *", "2026-03-27T12:00:00Z",
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"}},
		{"a minute list inside the gap keeps its spacing", "CRON_TZ=Europe/Berlin 0,20,40 2 29 3 *", "2026-03-28T00:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-29T01:20:00Z", "2026-03-29T01:40:00Z", "2027-03-29T00:00:00Z"}},
		{"hourly through the fall-back: the repeated 02:xx hour once", "CRON_TZ=Europe/Berlin 15 * 25 10 *", "2026-10-24T23:00:00Z",
			// local 01:15 CEST, 02:15 CEST, (02:15 CET skipped), 03:15 CET
			[]string{"2026-10-24T23:15:00Z", "2026-10-25T00:15:00Z", "2026-10-25T02:15:00Z"}},
		{"new york spring-forward", "CRON_TZ=America/New_York 30 2 * * *", "2026-03-07T12:00:00Z",
			[]string{"2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"}},
		{"descriptor with a zone", "CRON_TZ=Asia/Tokyo @daily", "2026-05-01T00:00:00Z",
			[]string{"2026-05-01T15:00:00Z", "2026-05-02T15:00:00Z"}},
		{"@weekly in UTC", "TZ=UTC @weekly", "2026-05-01T00:00:00Z",
			[]string{"2026-05-03T00:00:00Z", "2026-05-10T00:00:00Z"}},
		{"day-of-month or day-of-week", "TZ=UTC 0 4 1 * MON", "2026-05-30T00:00:00Z",
			[]string{"2026-06-01T04:00:00Z", "2026-06-08T04:00:00Z", "2026-06-15T04:00:00Z"}},
		{"month names and ranges", "TZ=UTC 0 22 * JAN-FEB SAT", "2026-02-27T00:00:00Z",
			[]string{"2026-02-28T22:00:00Z", "2027-01-02T22:00:00Z"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseSpec(c.spec, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			at := utc(c.after)
			for i, w := range c.want {
				at = s.Next(at)
				if !at.Equal(utc(w)) {
					t.Fatalf("start %d after %s: got %s (%s), want %s", i+1, c.after,
						at.UTC().Format(time.RFC3339), at.In(s.Location()).Format("2006-01-02 15:04 MST"), w)
				}
			}
		})
	}
}

// TestSpecAgreesWithRobfig checks that away from clock changes Next is
// exactly robfig/cron's Next, across a year of assorted schedules.
func TestSpecAgreesWithRobfig(t *testing.T) {
	t.Parallel()
	specs := []string{
		"CRON_TZ=Europe/Berlin 0 2 * * SUN", "TZ=UTC */17 3-5 * * *",
		"CRON_TZ=Australia/Sydney 0 1 1,15 * *", "TZ=Asia/Kolkata 30 4 * * MON-FRI", "CRON_TZ=Europe/London @monthly",
	}
	for _, text := range specs {
		ours, err := ParseSpec(text, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := cron.ParseStandard(text)
		if err != nil {
			t.Fatal(err)
		}
		at := utc("2026-01-01T00:00:00Z")
		for range 200 {
			a, b := ours.Next(at), theirs.Next(at)
			near := func(x time.Time) bool {
				_, o1 := x.Add(-26 * time.Hour).In(ours.Location()).Zone()
				_, o2 := x.Add(26 * time.Hour).In(ours.Location()).Zone()
				return o1 != o2
			}
			if !a.Equal(b) && !near(a) && !near(b) {
				t.Fatalf("%s after %s: ours %s, robfig %s", text, at, a, b)
			}
			at = a
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ spec, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"CRON_TZ=Europe/Berlin", "no schedule"},
		{"CRON_TZ= 0 2 * * *", "empty time zone"},
		{"CRON_TZ=Mars/Olympus 0 2 * * *", "unknown time zone"},
		{"@every 1h", "@every moves with restarts"},
		{"CRON_TZ=UTC @every 24h", "@every moves with restarts"},
		{"0 25 * * *", "not a valid cron schedule"},
		{"0 2 * *", "not a valid cron schedule"},
		{"0 2 * * SUN extra", "not a valid cron schedule"},
		{"@fortnightly", "not a valid cron schedule"},
		{"every sunday", "not a valid cron schedule"},
		{"0 2 * * 7", "not a valid cron schedule"},
	}
	for _, c := range cases {
		_, err := ParseSpec(c.spec, time.UTC)
		if err == nil {
			t.Errorf("ParseSpec(%q) = nil error, want one saying %q", c.spec, c.want)
			continue
		}
		if runbook.ErrorKind(err) != runbook.Invalid || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), SpecExample) {
			t.Errorf("ParseSpec(%q) = %v; want an Invalid error saying %q with the example", c.spec, err, c.want)
		}
	}
}

func TestSpecDefaultLocation(t *testing.T) {
	t.Parallel()
	ny := mustLoad(t, "America/New_York")
	s, err := ParseSpec("0 2 * * *", ny)
	if err != nil {
		t.Fatal(err)
	}
	if s.Location() != ny {
		t.Fatalf("a spec without CRON_TZ is read in %v, want the default %v", s.Location(), ny)
	}
	if got := s.Next(utc("2026-06-01T00:00:00Z")); !got.Equal(utc("2026-06-01T06:00:00Z")) {
		t.Fatalf("next = %s, want 02:00 EDT", got)
	}
	s, _ = ParseSpec("CRON_TZ=Europe/Berlin 0 2 * * *", ny)
	if s.Location().String() != "Europe/Berlin" {
		t.Fatalf("CRON_TZ must win over the default, got %v", s.Location())
	}
}

func TestWindowValidate(t *testing.T) {
	t.Parallel()
	now := utc("2026-05-01T00:00:00Z")
	ok := Window{Cluster: "prod", Spec: "CRON_TZ=Europe/Berlin 0 2 * * SUN", Duration: 3 * time.Hour,
		Announce: []time.Duration{10 * time.Minute, 24 * time.Hour, time.Hour, time.Hour}}
	if err := ok.Validate(time.UTC, now); err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{24 * time.Hour, time.Hour, 10 * time.Minute}; !equalDurations(ok.Announce, want) {
		t.Fatalf("announce = %v, want sorted longest first without duplicates: %v", ok.Announce, want)
	}
	cases := []struct {
		w    Window
		want string
	}{
		{Window{Spec: "0 0 30 2 *", Duration: time.Hour}, "never fires"},
		{Window{Spec: "0 2 * * *", Duration: 0}, "must be positive"},
		{Window{Spec: "0 2 * * SUN", Duration: 8 * 24 * time.Hour}, "longer than the 7d a window may last"},
		{Window{Spec: "0 * * * *", Duration: 3 * time.Hour}, "windows would overlap"},
		{Window{Spec: "0 2 * * *", Duration: time.Hour, Announce: []time.Duration{-time.Minute}}, "lead time must be between"},
		{Window{Spec: "0 2 * * *", Duration: time.Hour, Announce: []time.Duration{30 * 24 * time.Hour}}, "lead time must be between"},
		{Window{Spec: "0 2 * * *", Duration: time.Hour, Announce: make([]time.Duration, 9)}, "at most 6"},
	}
	for _, c := range cases {
		err := c.w.Validate(time.UTC, now)
		if runbook.ErrorKind(err) != runbook.Invalid || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%q, %s, %v) = %v; want Invalid saying %q", c.w.Spec, c.w.Duration, c.w.Announce, err, c.want)
		}
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestConfigWindowIDIsStable(t *testing.T) {
	t.Parallel()
	a := ConfigWindow("prod", "CRON_TZ=Europe/Berlin 0 2 * * SUN", time.Hour, nil, "")
	b := ConfigWindow("prod", " CRON_TZ=Europe/Berlin 0 2 * * SUN ", 3*time.Hour, []time.Duration{time.Hour}, "C9")
	c := ConfigWindow("staging", "CRON_TZ=Europe/Berlin 0 2 * * SUN", time.Hour, nil, "")
	if a.ID != b.ID || a.ID == c.ID || !strings.HasPrefix(a.ID, "cfg-") {
		t.Fatalf("config IDs: %s %s %s; want the same for one cluster+spec, different across clusters", a.ID, b.ID, c.ID)
	}
}

func TestDurations(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"3h": 3 * time.Hour, "90m": 90 * time.Minute, "1h30m": 90 * time.Minute, "2d": 48 * time.Hour} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "3", "soon", "1.5d", "-d", "d"} {
		if _, err := ParseDuration(in); runbook.ErrorKind(err) != runbook.Invalid {
			t.Errorf("ParseDuration(%q) = %v; want Invalid", in, err)
		}
	}
	for d, want := range map[time.Duration]string{3 * time.Hour: "3h", 90 * time.Minute: "1h30m", 10 * time.Minute: "10m", 48 * time.Hour: "2d", 24 * time.Hour: "24h", 45 * time.Second: "45s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
