package bot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/bot"
	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
	"github.com/sdbmaint/sdbmaint/runbook/windows/windowstest"
)

// startWithWindows starts the harness's bot as `sdbmaint serve` does with
// maintenance windows: the bot, the Slack side of windows attached to it,
// and a scheduler on the harness's SQLite file whose clock the test moves.
func startWithWindows(h *harness, clock *windowstest.Clock) *windows.Scheduler {
	t := h.t
	t.Helper()
	var sched *windows.Scheduler
	h.startWith(func(ctx context.Context, b *bot.Bot, logger *slog.Logger) {
		ws, err := h.store.Windows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ww := bot.NewWindows(b)
		sched, err = windows.New(windows.Options{Store: ws, Runs: ww.Runs(), Notifier: ww, Approvers: b, Clock: clock,
			Clusters: h.source.Names(), Location: time.UTC, Logger: logger.With("component", "windows")})
		if err != nil {
			t.Fatal(err)
		}
		if err := ww.Attach(sched); err != nil {
			t.Fatal(err)
		}
	})
	return sched
}

// tick moves the scheduler's clock to when and lets it fire what is due.
func tick(t *testing.T, clock *windowstest.Clock, s *windows.Scheduler, when time.Time) {
	t.Helper()
	clock.Set(when)
	if _, err := s.Tick(context.Background()); err != nil {
		t.Fatalf("tick at %s: %v", when, err)
	}
}

// channelMessages returns the top-level messages in the channel whose text
// starts with prefix.
func channelMessages(h *harness, prefix string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range h.slack.Messages(channel) {
		if m.ThreadTS == "" && strings.HasPrefix(m.Text, prefix) {
			out = append(out, m)
		}
	}
	return out
}

func waitMessages(h *harness, prefix string, n int) []slackfake.Message {
	h.t.Helper()
	var got []slackfake.Message
	h.slack.WaitFor(h.t, "messages starting "+prefix, func() bool {
		got = channelMessages(h, prefix)
		return len(got) >= n
	})
	return got
}

// An approver schedules an hourly window on prod from the channel (others
// may not); /sdbmaint windows shows it in each reader's time zone; the
// first announcement comes with a Skip button, which only an approver's
// click honours; the skipped hour opens nothing, and the next hour's window
// opens a run whose card shows preflight and the first gate, as /sdbmaint
// start would.
func TestScenarioWindow(t *testing.T) {
	t.Parallel()
	for _, mode := range transports {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, mode, harnessOptions{})
			base := time.Now().UTC().Truncate(time.Hour).Add(5 * time.Minute)
			clock := windowstest.NewClock(base)
			sched := startWithWindows(h, clock)
			first := base.Truncate(time.Hour).Add(time.Hour)
			const schedule = `schedule prod "TZ=UTC 0 * * * *" duration=45m announce=30m,10m`

			h.command(stranger, schedule)
			h.waitResponse("only approvers of prod may schedule")
			h.command(approver, "schedule prod every sunday")
			h.waitResponse("not a valid cron schedule")
			h.command(approver, `schedule prdo "TZ=UTC 0 * * * *"`)
			h.waitResponse("There is no cluster named `prdo`. Did you mean `prod`?")
			h.command(approver, schedule)
			h.waitResponse("scheduled a maintenance window for `prod`")
			ws, err := sched.Windows(context.Background())
			if err != nil || len(ws) != 1 {
				t.Fatalf("stored windows: %v, %v", ws, err)
			}
			id := ws[0].ID
			h.command(operator, "windows prod")
			listing := h.waitResponse("Maintenance windows of prod")
			if want := "<!date^" + strconv.FormatInt(first.Unix(), 10) + "^{date_short_pretty} {time}|"; !strings.Contains(slackfake.Texts(listing.Blocks), want) {
				t.Fatalf("the listing does not show the next start as %s…:\n%s", want, listing.Blocks)
			}

			tick(t, clock, sched, base)
			tick(t, clock, sched, first.Add(-30*time.Minute))
			ann := waitMessages(h, "Maintenance window for prod in 30m", 1)[0]
			if !strings.Contains(ann.AllText(), "full downtime of `prod`") {
				t.Errorf("the announcement does not say what will happen:\n%s", ann.AllText())
			}
			// A stranger's click on Skip changes nothing; an approver's does.
			h.slack.Click(t, h.tr, stranger, ann, "sdbmaint:window-skip")
			h.waitEphemeral(stranger, "only approvers of prod may skip")
			h.slack.Click(t, h.tr, approver, ann, "sdbmaint:window-skip")
			h.slack.WaitFor(t, "the skip notice", func() bool {
				for _, m := range channelMessages(h, "Maintenance window for prod at") {
					if strings.Contains(m.AllText(), "is *skipped* by <@"+approver+">") {
						return true
					}
				}
				return false
			})
			h.slack.WaitFor(t, "the announcement loses its Skip button", func() bool {
				m, _ := h.slack.Message(ann.TS)
				return len(m.Buttons()) == 0 && strings.Contains(m.AllText(), "skipped by <@"+approver+">")
			})
			before := len(h.slack.Messages(channel))
			tick(t, clock, sched, first.Add(-10*time.Minute))
			tick(t, clock, sched, first)
			if h.openRun() != nil {
				t.Fatal("the skipped window opened a run")
			}

			// The next hour's window runs: announcements, then the run.
			// The channel's posts are ordered, so once its first
			// announcement is there, anything the skipped hour had posted
			// would be there too.
			second := first.Add(time.Hour)
			tick(t, clock, sched, second.Add(-30*time.Minute))
			tick(t, clock, sched, first.Add(45*time.Minute)) // the skipped window's end: silent
			waitMessages(h, "Maintenance window for prod in 30m", 1)
			if n := len(h.slack.Messages(channel)); n != before+1 {
				t.Fatalf("%d messages since the skip, want only the next announcement; the skipped window must stay silent", n-before)
			}
			tick(t, clock, sched, second.Add(-10*time.Minute))
			waitMessages(h, "Maintenance window for prod in 10m", 1)
			tick(t, clock, sched, second)
			card := h.waitGate(runbook.PhaseBackup, "approve")
			for _, want := range []string{"Maintenance · prod", "window:" + id, "leaves online"} {
				if !strings.Contains(card.AllText(), want) {
					t.Errorf("the window's card lacks %q:\n%s", want, card.AllText())
				}
			}
			r := h.openRun()
			if r == nil || r.Window != id || !r.WindowEnds.Equal(second.Add(45*time.Minute)) {
				t.Fatalf("the window's run: %+v", r)
			}

			// Nobody approves stop before the window ends: the channel is
			// told that stopping now needs an override.
			tick(t, clock, sched, second.Add(45*time.Minute))
			closed := waitMessages(h, "The maintenance window for prod ended before stop was approved", 1)[0]
			if !strings.Contains(closed.AllText(), "explicit override") || !strings.Contains(closed.AllText(), "Open the card") {
				t.Errorf("the window-closed notice:\n%s", closed.AllText())
			}

			h.command(stranger, "unschedule "+id)
			h.waitResponse("only approvers of prod may unschedule")
			h.command(approver, "unschedule "+id)
			h.waitResponse("removed maintenance window `" + id + "`")
		})
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	clusters := []string{"prod", "staging"}
	cases := []struct {
		text    string
		cluster string
		args    bot.ScheduleArgs
		reply   string // a part of the reply; "" when it parses
	}{
		{`prod "CRON_TZ=Europe/Berlin 0 2 * * SUN"`, "prod", bot.ScheduleArgs{Spec: "CRON_TZ=Europe/Berlin 0 2 * * SUN"}, ""},
		{`prod “CRON_TZ=Europe/Berlin 0 2 * * SUN” duration=3h announce=24h,1h,10m`, "prod",
			bot.ScheduleArgs{Spec: "CRON_TZ=Europe/Berlin 0 2 * * SUN", Duration: 3 * time.Hour, Announce: []time.Duration{24 * time.Hour, time.Hour, 10 * time.Minute}}, ""},
		{`PROD CRON_TZ=Europe/Berlin 0 2 * * SUN duration=90m`, "prod", bot.ScheduleArgs{Spec: "CRON_TZ=Europe/Berlin 0 2 * * SUN", Duration: 90 * time.Minute}, ""},
		{`staging @weekly announce=none channel=<#C0STAGE|staging-ops>`, "staging", bot.ScheduleArgs{Spec: "@weekly", Announce: []time.Duration{}, Channel: "C0STAGE"}, ""},
		{`staging "0 3 * * 6" duration=2d channel=#staging-ops`, "staging", bot.ScheduleArgs{Spec: "0 3 * * 6", Duration: 48 * time.Hour, Channel: "#staging-ops"}, ""},
		{``, "", bot.ScheduleArgs{}, "Which cluster, and when?"},
		{`prod`, "", bot.ScheduleArgs{}, "Which schedule?"},
		{`prdo "0 2 * * SUN"`, "", bot.ScheduleArgs{}, "Did you mean `prod`?"},
		{`prod "0 2 * * SUN" duration=soon`, "", bot.ScheduleArgs{}, `"soon" is not a duration`},
		{`prod "0 2 * * SUN" announce=1h,,10m`, "", bot.ScheduleArgs{}, "announce:"},
		{`prod "0 2 * * SUN" duration=1h duration=2h`, "", bot.ScheduleArgs{}, "given twice"},
		{`prod "0 2 * * SUN" lasts=3h`, "", bot.ScheduleArgs{}, "I don't know the option `lasts=`"},
		{`prod "0 2 * * SUN" channel=ops!`, "", bot.ScheduleArgs{}, "is not a channel"},
	}
	verbs := append(bot.BuiltinVerbs(), bot.WindowVerbs()...)
	for _, c := range cases {
		parsed := bot.Parse("schedule "+c.text, verbs, clusters)
		if parsed.Command == nil {
			t.Errorf("%q: the command parser refused it: %s", c.text, parsed.Reply)
			continue
		}
		cluster, args, reply := bot.ParseSchedule(parsed.Command.Args, clusters)
		if c.reply != "" {
			if !strings.Contains(reply, c.reply) || !strings.Contains(reply, "/sdbmaint schedule prod \"CRON_TZ=Europe/Berlin 0 2 * * SUN\"") {
				t.Errorf("%q: reply %q; want it to say %q with an example", c.text, reply, c.reply)
			}
			continue
		}
		if reply != "" || cluster != c.cluster || args.Spec != c.args.Spec || args.Duration != c.args.Duration ||
			args.Channel != c.args.Channel || (args.Announce == nil) != (c.args.Announce == nil) || len(args.Announce) != len(c.args.Announce) {
			t.Errorf("%q: %q %+v %q; want %q %+v", c.text, cluster, args, reply, c.cluster, c.args)
		}
	}
}

// The window notices, against golden JSON in testdata/windows/ and Slack's
// limits. `go test ./bot -run TestWindowMessagesGolden -update` rewrites them.
func TestWindowMessagesGolden(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
	win := windows.Window{ID: "w-3f9a2c", Cluster: "prod", Spec: "CRON_TZ=Europe/Berlin 0 2 * * SUN", Duration: 3 * time.Hour,
		Announce: []time.Duration{24 * time.Hour, time.Hour, 10 * time.Minute}, Source: windows.FromSlack, CreatedBy: approver}
	cfgWin := windows.ConfigWindow("prod", "CRON_TZ=Europe/Berlin 0 2 * * SUN", 3*time.Hour, []time.Duration{time.Hour}, "C0OPS")
	occ := windows.Occurrence{Window: win, Start: start, End: start.Add(3 * time.Hour)}
	run := &runbook.Run{ID: "7f3c0a1b2c3d4e5f", Cluster: "prod", StartedBy: operator, StartedAt: start.Add(-2 * time.Hour),
		Status: runbook.RunActive, Current: runbook.PhaseSnapshot,
		Phases: []*runbook.Phase{{Name: runbook.PhaseSnapshot, Status: runbook.PhaseWaiting}}}
	missed := func(kinds ...windows.Kind) []windows.Firing {
		var out []windows.Firing
		for _, k := range kinds {
			f := windows.Firing{Kind: k}
			if k == windows.KindAnnounce {
				f.Lead = 24 * time.Hour
			}
			out = append(out, f)
		}
		return out
	}
	for name, m := range map[string]bot.Message{
		"announcement":         bot.AnnouncementMessage(windows.Announcement{Occurrence: occ, Lead: time.Hour}),
		"skipped_announcement": bot.SkippedAnnouncementMessage(win, start, approver),
		"skipped_by_approver":  bot.WindowSkippedMessage(windows.Skipped{Occurrence: occ, By: approver}, ""),
		"skipped_open_run": bot.WindowSkippedMessage(windows.Skipped{Occurrence: occ, Existing: run,
			Reason: "run 7f3c0a1b2c3d4e5f for prod is already open"}, "https://x.slack.com/archives/C0OPS/p1"),
		"missed_ahead": bot.WindowMissedMessage(windows.Missed{Occurrence: occ, Firings: missed(windows.KindAnnounce)}, start.Add(-20*time.Hour)),
		"missed_start": bot.WindowMissedMessage(windows.Missed{Occurrence: occ,
			Firings: missed(windows.KindAnnounce, windows.KindStart, windows.KindEnd)}, start.Add(5*time.Hour)),
		"missed_end":      bot.WindowMissedMessage(windows.Missed{Occurrence: occ, Firings: missed(windows.KindEnd)}, start.Add(4*time.Hour)),
		"missed_in_doubt": bot.WindowMissedMessage(windows.Missed{Occurrence: occ, Firings: missed(windows.KindAnnounce), InDoubt: true}, start.Add(-23*time.Hour)),
		"closed":          bot.WindowClosedMessage(windows.Closed{Occurrence: occ, Run: run}, "https://x.slack.com/archives/C0OPS/p1"),
		"scheduled":       bot.ScheduledMessage(win, []time.Time{start, start.Add(7 * 24 * time.Hour)}, "C0OPS"),
		"list": bot.WindowsMessage("", []windows.Upcoming{
			{Window: cfgWin, Current: &windows.Planned{Start: start.Add(-time.Hour), End: start.Add(2 * time.Hour)}},
			{Window: win, Next: []windows.Planned{
				{Start: start, End: start.Add(3 * time.Hour), Skip: &windows.Firing{By: approver}},
				{Start: start.Add(7 * 24 * time.Hour), End: start.Add(7*24*time.Hour + 3*time.Hour)}}},
		}, "C0OPS"),
		"list_empty": bot.WindowsMessage("staging", nil, "C0OPS"),
	} {
		windowGolden(t, name, m)
	}
}

func windowGolden(t *testing.T, name string, m bot.Message) {
	t.Helper()
	blocks, err := json.Marshal(m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	if err := slackfake.CheckMessage(m.Text, blocks); err != nil {
		t.Errorf("%s breaks Slack's limits: %v", name, err)
	}
	got, err := json.MarshalIndent(struct {
		Text   string        `json:"text"`
		Blocks []slack.Block `json:"blocks"`
	}{m.Text, m.Blocks}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "windows", name+".json")
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./bot -run TestWindowMessagesGolden -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (review, then -update):\n%s", name, path, got)
	}
}
