package bot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
)

// This file connects maintenance windows (package runbook/windows) to Slack:
// the schedule, windows and unschedule verbs, the notices the scheduler
// sends (announcements with a Skip button, skips, missed firings, a window
// closing before its stop gate), and the card of a run a window opened.
// The message builders at the end are pure, like those in blocks.go, and
// golden-tested in windows_test.go.

// Window verb names.
const (
	VerbSchedule   = "schedule"
	VerbWindows    = "windows"
	VerbUnschedule = "unschedule"
)

// actWindowSkip is the action_id of the "Skip this window" button; its value
// is "WINDOW|START_UNIX".
const actWindowSkip = actionPrefix + "window-skip"

// scheduleExample is the example every schedule usage error ends with.
const scheduleExample = "`/sdbmaint schedule prod \"CRON_TZ=Europe/Berlin 0 2 * * SUN\" duration=3h announce=24h,1h,10m`"

// WindowVerbs returns the verbs Windows adds, in help order.
func WindowVerbs() []Verb {
	return []Verb{
		// The cluster is matched by the verb itself, so that every mistake
		// is answered with an example of a whole schedule command.
		{Name: VerbSchedule, Args: `CLUSTER "CRON" [duration=3h] [announce=24h,1h,10m] [channel=#ops]`, Cluster: NoCluster,
			MinArgs: 0, MaxArgs: -1, Summary: "schedule a recurring maintenance window, announced ahead (approvers only)"},
		{Name: VerbWindows, Args: "[CLUSTER]", Cluster: OptionalCluster,
			Summary: "upcoming maintenance windows, in your own time zone"},
		{Name: VerbUnschedule, Args: "ID", Cluster: NoCluster, MinArgs: 1, MaxArgs: 1,
			Summary: "remove a window scheduled from Slack (approvers only)"},
	}
}

// WindowScheduler is what Windows needs of the scheduler;
// *windows.Scheduler implements it.
type WindowScheduler interface {
	Schedule(ctx context.Context, req windows.ScheduleRequest) (*windows.Window, error)
	Unschedule(ctx context.Context, id, by string) (*windows.Window, error)
	Skip(ctx context.Context, windowID string, start time.Time, by string) (windows.SkipResult, error)
	Upcoming(ctx context.Context, cluster string, n int) ([]windows.Upcoming, error)
	Window(ctx context.Context, id string) (*windows.Window, error)
}

// Windows is the Slack side of maintenance windows. It is the scheduler's
// windows.Notifier; Runs is the windows.Runs to give the scheduler, so that
// a window's run card goes to the window's channel.
//
//	ww := bot.NewWindows(b)
//	sched, err := windows.New(windows.Options{Notifier: ww, Runs: ww.Runs(), Approvers: b, ...})
//	err = ww.Attach(sched) // before b.Serve
//	go sched.Run(ctx)
type Windows struct {
	b     *Bot
	sched WindowScheduler
}

var (
	_ windows.Notifier  = (*Windows)(nil)
	_ windows.Runs      = windowRuns{}
	_ windows.Approvers = (*Bot)(nil)
	_ WindowScheduler   = (*windows.Scheduler)(nil)
)

// NewWindows returns the Slack side of windows for b.
func NewWindows(b *Bot) *Windows { return &Windows{b: b} }

// Attach adds the window verbs and the Skip button to the bot. Call it
// once, before Serve.
func (w *Windows) Attach(s WindowScheduler) error {
	if w.sched != nil {
		return errors.New("bot: windows attached twice")
	}
	w.sched = s
	verbs := WindowVerbs()
	for i, run := range []VerbFunc{w.schedule, w.list, w.unschedule} {
		if err := w.b.AddVerb(verbs[i], run); err != nil {
			return err
		}
	}
	return w.b.AddAction(actWindowSkip, w.skip)
}

// Runs returns the engine as the scheduler's windows.Runs, telling the
// board first where the card of a window's run goes.
func (w *Windows) Runs() windows.Runs { return windowRuns{w} }

type windowRuns struct{ w *Windows }

func (r windowRuns) Start(ctx context.Context, req runbook.StartRequest) (runbook.StartResult, error) {
	if r.w.sched != nil && req.Window != "" {
		if win, err := r.w.sched.Window(ctx, req.Window); err == nil {
			r.w.b.board.expect(req.Cluster, r.w.channel(win.Channel))
		}
	}
	return r.w.b.engine.Start(ctx, req)
}

func (r windowRuns) OpenRun(ctx context.Context, cluster string) (*runbook.Run, error) {
	return r.w.b.engine.OpenRun(ctx, cluster)
}

func (r windowRuns) History(ctx context.Context, cluster string, limit int) ([]*runbook.Run, error) {
	return r.w.b.engine.History(ctx, cluster, limit)
}

func (w *Windows) channel(ch string) string {
	if ch == "" {
		return w.b.opts.Channel
	}
	return ch
}

// Announce posts a window's announcement with its Skip button.
func (w *Windows) Announce(_ context.Context, a windows.Announcement) error {
	return w.post(a.Channel(), AnnouncementMessage(a))
}

// Started posts (once per run) the card of the run the window opened.
func (w *Windows) Started(_ context.Context, s windows.Started) error {
	w.b.board.ensure(s.Run, w.channel(s.Channel()))
	return nil
}

// Skipped says the window opens no run, and why.
func (w *Windows) Skipped(ctx context.Context, s windows.Skipped) error {
	link := ""
	if s.Existing != nil {
		link = w.b.board.link(ctx, s.Existing.ID)
	}
	return w.post(s.Channel(), WindowSkippedMessage(s, link))
}

// Missed says what sdbmaint missed while it was down.
func (w *Windows) Missed(_ context.Context, m windows.Missed) error {
	return w.post(m.Channel(), WindowMissedMessage(m, w.b.clock.Now()))
}

// WindowClosed says the window ended before stop was approved, and redraws
// the run's card so that its stop gate offers the override instead of a
// plain Approve.
func (w *Windows) WindowClosed(ctx context.Context, c windows.Closed) error {
	if r, err := w.b.engine.Get(ctx, c.Run.ID); err == nil {
		w.b.board.update(r, true)
	}
	return w.post(c.Channel(), WindowClosedMessage(c, w.b.board.link(ctx, c.Run.ID)))
}

func (w *Windows) post(channel string, m Message) error {
	ch := w.channel(channel)
	if ch == "" {
		return runbook.Errorf(runbook.Invalid, "no channel for window notices: set slack.channel or the window's channel")
	}
	w.b.Post(ch, m)
	return nil
}

// schedule carries out /sdbmaint schedule.
func (w *Windows) schedule(ctx context.Context, inv Invocation) (Reply, error) {
	cluster, args, reply := ParseSchedule(inv.Command.Args, w.b.opts.Clusters.Names())
	if reply != "" {
		return Reply{Message: textMessage(reply)}, nil
	}
	win, err := w.sched.Schedule(ctx, windows.ScheduleRequest{
		Cluster: cluster, Spec: args.Spec, Duration: args.Duration,
		Announce: args.Announce, Channel: args.Channel, By: inv.User,
	})
	if err != nil {
		if runbook.ErrorKind(err) == runbook.Invalid {
			return Reply{Message: textMessage(escapeMrkdwn(runbook.ErrorMessage(err)) + "\n" + scheduleUsage())}, nil
		}
		return Reply{}, err
	}
	var next []time.Time
	if ups, err := w.sched.Upcoming(ctx, win.Cluster, 3); err == nil {
		for _, u := range ups {
			if u.Window.ID == win.ID {
				for _, p := range u.Next {
					next = append(next, p.Start)
				}
			}
		}
	}
	return Reply{Message: ScheduledMessage(*win, next, w.channel(win.Channel)), InChannel: true}, nil
}

// list carries out /sdbmaint windows.
func (w *Windows) list(ctx context.Context, inv Invocation) (Reply, error) {
	ups, err := w.sched.Upcoming(ctx, inv.Command.Cluster, 3)
	if err != nil {
		return Reply{}, err
	}
	return Reply{Message: WindowsMessage(inv.Command.Cluster, ups, w.b.opts.Channel)}, nil
}

// unschedule carries out /sdbmaint unschedule.
func (w *Windows) unschedule(ctx context.Context, inv Invocation) (Reply, error) {
	win, err := w.sched.Unschedule(ctx, inv.Command.Args[0], inv.User)
	if err != nil {
		return Reply{}, err
	}
	return Reply{Message: textMessage(fmt.Sprintf("🗑️ %s removed maintenance window `%s` of `%s` (`%s`). Its announcements and starts are off.",
		who(inv.User), escapeMrkdwn(win.ID), escapeMrkdwn(win.Cluster), codeSafe(win.Spec))), InChannel: true}, nil
}

// skip handles a click on "Skip this window".
func (w *Windows) skip(ctx context.Context, c Click) error {
	id, start, err := decodeWindowValue(c.Value)
	if err != nil {
		w.b.log.Warn("skip click with a value the bot did not draw", "user", c.User, "err", err)
		w.b.ephemeral(ctx, c.Channel, c.User, textMessage("That button is not one sdbmaint drew; nothing was done."))
		return nil
	}
	res, err := w.sched.Skip(ctx, id, start, c.User)
	if err != nil {
		return err
	}
	if !res.Skipped {
		text := "Not skipped: " + escapeMrkdwn(res.Reason) + "."
		if res.Already != nil && res.Already.Plan == windows.PlanSkip {
			text = fmt.Sprintf("This window was already skipped by %s %s.", who(res.Already.By), slackDateTime(res.Already.ClaimedAt))
		}
		w.b.ephemeral(ctx, c.Channel, c.User, textMessage(text))
		return nil
	}
	// The channel hears of the skip from the scheduler's notice; the
	// announcement itself loses its button so nobody clicks it again.
	if c.MessageTS != "" && c.Channel != "" {
		if win, err := w.sched.Window(ctx, id); err == nil {
			m := SkippedAnnouncementMessage(*win, start, c.User)
			err := withRetry(ctx, w.b.clock, func() error {
				_, _, _, err := w.b.api.UpdateMessageContext(ctx, c.Channel, c.MessageTS, m.options()...)
				return err
			})
			if err != nil {
				w.b.log.Warn("updating the skipped announcement failed", "window", id, "err", err)
			}
		}
	}
	return nil
}

func encodeWindowValue(id string, start time.Time) string {
	return id + "|" + strconv.FormatInt(start.Unix(), 10)
}

func decodeWindowValue(s string) (string, time.Time, error) {
	id, unix, ok := strings.Cut(s, "|")
	if !ok || id == "" || len(s) > 200 {
		return "", time.Time{}, fmt.Errorf("window button value %q is not WINDOW|START", clip(s, 80))
	}
	n, err := strconv.ParseInt(unix, 10, 64)
	if err != nil || n <= 0 {
		return "", time.Time{}, fmt.Errorf("window button value %q has a bad start", clip(s, 80))
	}
	return id, time.Unix(n, 0).UTC(), nil
}

// ScheduleArgs is /sdbmaint schedule's arguments after the cluster.
type ScheduleArgs struct {
	Spec     string
	Duration time.Duration   // 0: the default
	Announce []time.Duration // nil: the default; empty: none
	Channel  string          // "" : the default channel
}

var channelRef = regexp.MustCompile(`^(?:<#([CG][A-Z0-9]+)(?:\|[^>]*)?>|([CG][A-Z0-9]{2,})|(#[a-z0-9][a-z0-9._-]{0,79}))$`)

// ParseSchedule reads the words after /sdbmaint schedule: the cluster, then
// the arguments as ParseScheduleArgs reads them. It returns the cluster and
// the arguments, or a reply saying what was wrong with an example.
func ParseSchedule(words []string, clusters []string) (string, ScheduleArgs, string) {
	if len(words) == 0 {
		return "", ScheduleArgs{}, "Which cluster, and when? " + scheduleUsage()
	}
	cluster, reply := matchCluster(words[0], clusters)
	if reply != "" {
		return "", ScheduleArgs{}, reply + "\n" + scheduleUsage()
	}
	args, reply := ParseScheduleArgs(words[1:])
	return cluster, args, reply
}

func scheduleUsage() string {
	return "Usage: `/sdbmaint schedule CLUSTER \"CRON\" [duration=3h] [announce=24h,1h,10m] [channel=#ops]`, for example " + scheduleExample
}

// ParseScheduleArgs reads the words after the cluster: the cron spec
// (quoted or not: every word that is not an option belongs to it) and the
// options duration=, announce= (a comma list, or "none") and channel=. It
// returns the arguments, or a reply saying what was wrong with an example.
func ParseScheduleArgs(words []string) (ScheduleArgs, string) {
	var (
		a    ScheduleArgs
		spec []string
		seen = map[string]bool{}
	)
	usage := func(format string, args ...any) (ScheduleArgs, string) {
		return ScheduleArgs{}, fmt.Sprintf(format, args...) + "\n" + scheduleUsage()
	}
	for _, word := range words {
		key, val, isOpt := strings.Cut(word, "=")
		key = strings.ToLower(key)
		if !isOpt || key == "cron_tz" || key == "tz" {
			spec = append(spec, word)
			continue
		}
		if seen[key] {
			return usage("`%s=` is given twice.", echo(key, 20))
		}
		seen[key] = true
		switch key {
		case "duration":
			d, err := windows.ParseDuration(val)
			if err != nil {
				return usage("duration: %s.", escapeMrkdwn(runbook.ErrorMessage(err)))
			}
			a.Duration = d
		case "announce":
			a.Announce = []time.Duration{}
			if strings.EqualFold(val, "none") {
				continue
			}
			for _, part := range strings.Split(val, ",") {
				d, err := windows.ParseDuration(part)
				if err != nil {
					return usage("announce: %s.", escapeMrkdwn(runbook.ErrorMessage(err)))
				}
				a.Announce = append(a.Announce, d)
			}
		case "channel":
			m := channelRef.FindStringSubmatch(val)
			if m == nil {
				return usage("channel: `%s` is not a channel; write channel=#ops or a channel ID.", echo(val, 60))
			}
			a.Channel = m[1] + m[2] + m[3]
		default:
			return usage("I don't know the option `%s=`.", echo(key, 30))
		}
	}
	a.Spec = strings.Join(spec, " ")
	if a.Spec == "" {
		return usage("Which schedule? Give a cron spec in quotes.")
	}
	return a, ""
}

// codeSafe makes s safe inside a `code span`.
func codeSafe(s string) string { return escapeMrkdwn(strings.ReplaceAll(s, "`", "'")) }

// windowLeads lists lead times: "24h, 1h and 10m ahead".
func windowLeads(leads []time.Duration) string {
	if len(leads) == 0 {
		return "not announced ahead"
	}
	parts := make([]string, len(leads))
	for i, l := range leads {
		parts[i] = windows.FormatDuration(l)
	}
	if len(parts) == 1 {
		return "announced " + parts[0] + " ahead"
	}
	return "announced " + strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1] + " ahead"
}

func windowOrigin(win windows.Window) string {
	if win.Source == windows.FromConfig {
		return "from the config file"
	}
	return "scheduled by " + who(win.CreatedBy)
}

// windowFooter is the context line under window notices.
func windowFooter(win windows.Window) string {
	return fmt.Sprintf("Window `%s` · `%s` · %s", escapeMrkdwn(win.ID), codeSafe(win.Spec), windowOrigin(win))
}

// downtimeText says what the window means for the cluster.
func downtimeText(cluster string) string {
	return fmt.Sprintf("*What will happen:* at the start sdbmaint opens a maintenance run on `%s` and runs preflight (read-only). "+
		"Once approvers approve each phase, every node is stopped — master aggregator, child aggregators, then the leaves: "+
		"*full downtime of `%s`* until the start phase brings it back. Nothing beyond preflight happens without an approval.",
		escapeMrkdwn(cluster), escapeMrkdwn(cluster))
}

func skipButton(occ windows.Occurrence) *slack.ActionBlock {
	btn := slack.NewButtonBlockElement(actWindowSkip, encodeWindowValue(occ.Window.ID, occ.Start), plain("Skip this window"))
	btn = btn.WithConfirm(confirm("Skip this window?",
		fmt.Sprintf("No run will be opened for %s at %s. Approvers only; the skip is recorded and announced.",
			occ.Window.Cluster, occ.Start.UTC().Format("Mon 2 Jan 15:04 UTC")), "Skip it", true))
	return slack.NewActionBlock("window-actions", btn)
}

// AnnouncementMessage is the notice Lead ahead of a window.
func AnnouncementMessage(a windows.Announcement) Message {
	occ := a.Occurrence
	cl := escapeMrkdwn(occ.Window.Cluster)
	head := fmt.Sprintf("🔧 *Maintenance window for `%s` in %s*: starts %s and lasts %s, until %s.", cl,
		windows.FormatDuration(a.Lead), slackDateTime(occ.Start), windows.FormatDuration(occ.Window.Duration), slackDateTime(occ.End))
	return Message{
		Text: truncate(fmt.Sprintf("Maintenance window for %s in %s: %s UTC, %s of full downtime.", occ.Window.Cluster,
			windows.FormatDuration(a.Lead), occ.Start.UTC().Format("Mon 2 Jan 15:04"), windows.FormatDuration(occ.Window.Duration)), maxMessageText),
		Blocks: []slack.Block{
			section("window-when", head),
			section("window-what", downtimeText(occ.Window.Cluster)),
			skipButton(occ),
			contextLine("window-about", windowFooter(occ.Window)+" · approvers may skip this window"),
		},
	}
}

// SkippedAnnouncementMessage replaces an announcement once it was skipped.
func SkippedAnnouncementMessage(win windows.Window, start time.Time, by string) Message {
	text := fmt.Sprintf("⏭️ ~Maintenance window for `%s` at %s~ — skipped by %s. No run will be opened.",
		escapeMrkdwn(win.Cluster), slackDateTime(start), who(by))
	return Message{
		Text:   truncate(fmt.Sprintf("Maintenance window for %s at %s UTC skipped.", win.Cluster, start.UTC().Format("Mon 2 Jan 15:04")), maxMessageText),
		Blocks: []slack.Block{section("window-when", text), contextLine("window-about", windowFooter(win))},
	}
}

// WindowSkippedMessage says an occurrence opens no run; link is the open
// run's card, if known.
func WindowSkippedMessage(s windows.Skipped, link string) Message {
	cl := escapeMrkdwn(s.Window.Cluster)
	var text string
	switch {
	case s.By != "":
		text = fmt.Sprintf("⏭️ The maintenance window for `%s` at %s is *skipped* by %s. No run will be opened; the next windows are unchanged.",
			cl, slackDateTime(s.Start), who(s.By))
	case s.Existing != nil:
		ex := s.Existing
		text = fmt.Sprintf("⏭️ The maintenance window for `%s` starting %s opens *no run*: run `%s` is already open (started by %s %s, %s). One run per cluster.",
			cl, slackDateTime(s.Start), escapeMrkdwn(shortID(ex.ID)), who(ex.StartedBy), slackDateTime(ex.StartedAt), runState(ex))
		if link != "" {
			text += " <" + link + "|Open its card>."
		}
	default:
		text = fmt.Sprintf("⏭️ The maintenance window for `%s` starting %s opens *no run*: %s",
			cl, slackDateTime(s.Start), escapeMrkdwn(s.Reason))
	}
	return Message{
		Text:   truncate(fmt.Sprintf("Maintenance window for %s at %s UTC: no run. %s", s.Window.Cluster, s.Start.UTC().Format("Mon 2 Jan 15:04"), s.Reason), maxMessageText),
		Blocks: []slack.Block{section("window-skipped", text), contextLine("window-about", windowFooter(s.Window))},
	}
}

// firingName names a firing for people: "the 24h announcement", "the start".
func firingName(f windows.Firing) string {
	switch f.Kind {
	case windows.KindAnnounce:
		return "the " + windows.FormatDuration(f.Lead) + " announcement"
	case windows.KindStart:
		return "the start"
	case windows.KindEnd:
		return "the end-of-window notice"
	}
	return string(f.Kind)
}

// WindowMissedMessage reports firings sdbmaint did not carry out. When the
// window is still ahead it repeats the announcement, with its Skip button.
func WindowMissedMessage(m windows.Missed, now time.Time) Message {
	names := make([]string, len(m.Firings))
	for i, f := range m.Firings {
		names[i] = firingName(f)
	}
	cl := escapeMrkdwn(m.Window.Cluster)
	what := strings.Join(names, ", ")
	if len(names) > 1 {
		what = strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
	}
	var text string
	if m.InDoubt {
		text = fmt.Sprintf("⚠️ sdbmaint stopped while sending %s of the maintenance window for `%s` at %s; it may not have reached this channel.",
			what, cl, slackDateTime(m.Start))
	} else {
		text = fmt.Sprintf("⚠️ sdbmaint was not running when %s of the maintenance window for `%s` at %s %s due, so %s not sent late.",
			what, cl, slackDateTime(m.Start), pluralWord(len(names), "was", "were"), pluralWord(len(names), "it was", "they were"))
	}
	blocks := []slack.Block{section("window-missed", text)}
	startMissed := slices.ContainsFunc(m.Firings, func(f windows.Firing) bool { return f.Kind == windows.KindStart })
	endMissed := slices.ContainsFunc(m.Firings, func(f windows.Firing) bool { return f.Kind == windows.KindEnd })
	switch {
	case endMissed && !startMissed:
		blocks = append(blocks, section("window-what", fmt.Sprintf(
			"The window ended %s and its run on `%s` has not passed the stop gate: stopping now needs an approver's *explicit override* (\"Approve stop anyway\" on the card); otherwise abort the run.",
			slackDateTime(m.End), cl)))
	case startMissed:
		blocks = append(blocks, section("window-what", fmt.Sprintf(
			"No run was opened for this window. If the maintenance should still happen, start it by hand with `/sdbmaint start %s`.", cl)))
	case now.Before(m.Start):
		blocks = append(blocks,
			section("window-when", fmt.Sprintf("The window starts %s and lasts %s, until %s.",
				slackDateTime(m.Start), windows.FormatDuration(m.Window.Duration), slackDateTime(m.End))),
			section("window-what", downtimeText(m.Window.Cluster)),
			skipButton(m.Occurrence))
	}
	blocks = append(blocks, contextLine("window-about", windowFooter(m.Window)))
	return Message{
		Text: truncate(fmt.Sprintf("Missed for the %s maintenance window at %s UTC: %s.", m.Window.Cluster,
			m.Start.UTC().Format("Mon 2 Jan 15:04"), what), maxMessageText),
		Blocks: blocks,
	}
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// WindowClosedMessage says a window ended before its run's stop gate was
// approved; link is the run's card, if known.
func WindowClosedMessage(c windows.Closed, link string) Message {
	text := fmt.Sprintf("⏰ The maintenance window for `%s` ended %s, and run `%s` has not passed its stop gate. "+
		"Stopping the cluster now needs an approver's *explicit override* (\"Approve stop anyway\" on the card); otherwise abort the run.",
		escapeMrkdwn(c.Window.Cluster), slackDateTime(c.End), escapeMrkdwn(shortID(c.Run.ID)))
	if link != "" {
		text += " <" + link + "|Open the card>."
	}
	return Message{
		Text:   truncate(fmt.Sprintf("The maintenance window for %s ended before stop was approved; stopping now needs an override.", c.Window.Cluster), maxMessageText),
		Blocks: []slack.Block{section("window-closed", text), contextLine("window-about", windowFooter(c.Window))},
	}
}

// ScheduledMessage confirms a new window in the channel.
func ScheduledMessage(win windows.Window, next []time.Time, channel string) Message {
	var starts []string
	for _, t := range next {
		starts = append(starts, slackDateTime(t))
	}
	where := "this channel"
	if channel != "" {
		where = channelMention(channel)
	}
	text := fmt.Sprintf("📅 %s scheduled a maintenance window for `%s`: `%s`, %s each time, %s in %s.",
		who(win.CreatedBy), escapeMrkdwn(win.Cluster), codeSafe(win.Spec), windows.FormatDuration(win.Duration),
		windowLeads(win.Announce), where)
	if len(starts) > 0 {
		text += "\nNext: " + strings.Join(starts, " · ")
	}
	text += fmt.Sprintf("\nEach start opens a run with preflight; every phase still waits for approval. Remove it with `/sdbmaint unschedule %s`.", escapeMrkdwn(win.ID))
	return Message{
		Text:   truncate(fmt.Sprintf("Maintenance window %s scheduled for %s: %s", win.ID, win.Cluster, win.Spec), maxMessageText),
		Blocks: []slack.Block{section("window-scheduled", text)},
	}
}

func channelMention(ch string) string {
	if strings.HasPrefix(ch, "#") {
		return escapeMrkdwn(ch)
	}
	return "<#" + escapeMrkdwn(ch) + ">"
}

// WindowsMessage lists upcoming windows, each time in the reader's own zone.
func WindowsMessage(cluster string, ups []windows.Upcoming, defChannel string) Message {
	title := "Maintenance windows"
	if cluster != "" {
		title += " of " + cluster
	}
	if len(ups) == 0 {
		text := "No maintenance windows are scheduled"
		if cluster != "" {
			text += " for `" + escapeMrkdwn(cluster) + "`"
		}
		return textMessage(text + ". Add one with " + scheduleExample + " or in the config file.")
	}
	blocks := []slack.Block{header("windows-title", title)}
	const perMessage = maxBlocks - 2
	for i, u := range ups {
		if i == perMessage {
			blocks = append(blocks, contextLine("windows-more", fmt.Sprintf("…and %d more windows; ask for one cluster with `/sdbmaint windows CLUSTER`.", len(ups)-i)))
			break
		}
		blocks = append(blocks, section("window-"+strconv.Itoa(i), windowEntry(u, defChannel)))
	}
	return Message{Text: truncate(fmt.Sprintf("%s: %d", title, len(ups)), maxMessageText), Blocks: blocks}
}

func windowEntry(u windows.Upcoming, defChannel string) string {
	win := u.Window
	ch := win.Channel
	if ch == "" {
		ch = defChannel
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*`%s`* · `%s` · `%s` · %s · %s", escapeMrkdwn(win.Cluster), escapeMrkdwn(win.ID), codeSafe(win.Spec),
		windows.FormatDuration(win.Duration), windowOrigin(win))
	if ch != "" {
		b.WriteString(" · " + channelMention(ch))
	}
	if c := u.Current; c != nil {
		fmt.Fprintf(&b, "\n🔧 *open now*, until %s", slackDateTime(c.End))
		if c.Skip != nil {
			fmt.Fprintf(&b, " (skipped by %s)", who(c.Skip.By))
		}
	}
	for i, p := range u.Next {
		label := "Next"
		if i > 0 {
			label = "Then"
		}
		fmt.Fprintf(&b, "\n%s: %s – %s", label, slackDateTime(p.Start), slackTime(p.End))
		if p.Skip != nil {
			fmt.Fprintf(&b, " · ⏭️ skipped by %s", who(p.Skip.By))
		}
	}
	if len(u.Next) == 0 && u.Current == nil {
		b.WriteString("\nNo start in the next five years.")
	}
	b.WriteString("\n_" + windowLeads(win.Announce) + "_")
	return b.String()
}
