package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sdbmaint/sdbmaint/bot"
	"github.com/sdbmaint/sdbmaint/config"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
)

func init() {
	register(&command{name: "windows", summary: "upcoming maintenance windows (config and Slack), in local time and UTC", run: runWindows})
}

// configWindows turns the clusters[].windows of the config into scheduler
// windows (serve hands them to windows.Options.Config).
func configWindows(cfg *config.Config) []windows.Window {
	var out []windows.Window
	for _, c := range cfg.Clusters {
		for _, w := range c.Windows {
			out = append(out, windows.ConfigWindow(c.Name, w.Spec, w.Duration, w.Announce, w.Channel))
		}
	}
	return out
}

// startWindows wires maintenance windows into serve: the Slack side of
// windows onto b (its verbs and the Skip button, so call it before
// b.Serve) and a scheduler keeping its records in st, the database that
// holds the runs (the SQLite file, or the shared MySQL store, where several
// replicas race for each firing through it). It returns the scheduler's
// loop; serve runs it on its own goroutine with the context that SIGTERM
// cancels.
func startWindows(ctx context.Context, cfg *config.Config, st configStore, b *bot.Bot, log *slog.Logger) (func(context.Context) error, error) {
	ws, err := st.WindowStore(ctx)
	if err != nil {
		return nil, fmt.Errorf("windows store: %w", err)
	}
	ww := bot.NewWindows(b)
	sched, err := windows.New(windows.Options{
		Store: ws, Runs: ww.Runs(), Notifier: ww, Approvers: b,
		Config: configWindows(cfg), Clusters: cfg.ClusterNames(),
		Logger: log.With("component", "windows"),
	})
	if err != nil {
		return nil, err
	}
	if err := ww.Attach(sched); err != nil {
		return nil, err
	}
	return sched.Run, nil
}

// runWindows lists the upcoming maintenance windows: those of the config
// file and those scheduled from Slack (read from the store, which it never
// creates), each with its next starts in local time and UTC and its
// announcements.
func runWindows(ctx context.Context, env *Env, args []string) int {
	fset := flag.NewFlagSet("windows", flag.ContinueOnError)
	fset.SetOutput(env.Stderr)
	path := fset.String("config", "", "the sdbmaint config `FILE` (YAML)")
	cluster := fset.String("cluster", "", "only the windows of cluster `NAME`")
	count := fset.Int("count", 3, "how many starts of each window to list")
	from := fset.String("from", "", "list starts after `TIME` (RFC 3339, e.g. 2026-12-24T00:00:00Z) instead of now")
	tz := fset.String("tz", "", "show local times in `ZONE` (IANA name); default $TZ or the system zone")
	asJSON := fset.Bool("json", false, "print JSON")
	fset.Usage = func() {
		fmt.Fprintln(fset.Output(), "usage: sdbmaint windows --config FILE [--cluster NAME] [--count N] [--from TIME] [--tz ZONE] [--json]")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(env.Stderr, "sdbmaint windows: "+format+"\n", a...)
		fset.Usage()
		return 2
	}
	if fset.NArg() > 0 {
		return usage("unexpected argument %q", fset.Arg(0))
	}
	if *count < 1 || *count > 100 {
		return usage("--count %d: give 1 to 100", *count)
	}
	now := time.Now()
	if *from != "" {
		t, err := time.Parse(time.RFC3339, *from)
		if err != nil {
			return usage("--from %q is not an RFC 3339 time such as 2026-12-24T00:00:00Z", *from)
		}
		now = t
	}
	local := time.Local
	if name := cmpOr(*tz, env.Getenv("TZ")); name != "" {
		loc, err := time.LoadLocation(name)
		if err != nil {
			return usage("time zone %q is not known (use an IANA name such as Europe/Berlin)", name)
		}
		local = loc
	}
	cfg, err := loadConfig(env, *path)
	if errors.Is(err, errNoConfig) {
		return usage("%v", err)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint windows: %v\n", err)
		return 1
	}
	if *cluster != "" {
		if _, err := findCluster(cfg, *cluster); err != nil {
			fmt.Fprintf(env.Stderr, "sdbmaint windows: %v\n", err)
			return 1
		}
	}
	ws := configWindows(cfg)
	for i := range ws {
		if err := ws[i].Validate(time.Local, now); err != nil {
			fmt.Fprintf(env.Stderr, "sdbmaint windows: cluster %s: %v\n", ws[i].Cluster, err)
			return 1
		}
	}
	var (
		store windows.Store
		note  string
	)
	st, stored, err := openStoredWindows(ctx, cfg)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		note = fmt.Sprintf("no store at %s yet, so no windows scheduled from Slack", cfg.Store.Path)
	case err != nil:
		fmt.Fprintf(env.Stderr, "sdbmaint windows: %v\n", err)
		return 1
	default:
		defer st.Close()
		store = stored
		more, err := stored.StoredWindows(ctx)
		if err != nil {
			fmt.Fprintf(env.Stderr, "sdbmaint windows: %v\n", err)
			return 1
		}
		for _, w := range more {
			if err := w.Parse(time.Local); err != nil {
				fmt.Fprintf(env.Stderr, "sdbmaint windows: stored window %s: %v\n", w.ID, err)
				continue
			}
			ws = append(ws, w)
		}
	}
	ups, err := windows.ListUpcoming(ctx, store, ws, *cluster, now, *count)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint windows: %v\n", err)
		return 1
	}
	if *asJSON {
		return printWindowsJSON(env, ups)
	}
	printWindows(env.Stdout, ups, local, *cluster)
	if note != "" {
		fmt.Fprintf(env.Stdout, "note: %s\n", note)
	}
	return 0
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// openStoredWindows opens the store cfg names and its window store. An
// SQLite file that does not exist yet is fs.ErrNotExist: listing never
// creates one just to list nothing. The shared MySQL store is opened as
// serve opens it.
func openStoredWindows(ctx context.Context, cfg *config.Config) (configStore, windows.Store, error) {
	if cfg.Store.MySQLDSN == "" {
		if _, err := os.Stat(cfg.Store.Path); err != nil {
			return nil, nil, err
		}
	}
	st, err := openConfiguredStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	ws, err := st.WindowStore(ctx)
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("windows store: %w", err)
	}
	return st, ws, nil
}

const (
	localLayout = "Mon 2006-01-02 15:04 MST"
	utcLayout   = "2006-01-02 15:04 UTC"
)

func printWindows(w io.Writer, ups []windows.Upcoming, local *time.Location, cluster string) {
	if len(ups) == 0 {
		if cluster != "" {
			fmt.Fprintf(w, "No maintenance windows for %s.\n", cluster)
		} else {
			fmt.Fprintln(w, "No maintenance windows.")
		}
		fmt.Fprintln(w, `Add them under clusters[].windows in the config, or from Slack: /sdbmaint schedule prod "CRON_TZ=Europe/Berlin 0 2 * * SUN" duration=3h`)
		return
	}
	fmt.Fprintf(w, "Times in %s and UTC.\n", local)
	for _, u := range ups {
		win := u.Window
		origin := "config file"
		if win.Source == windows.FromSlack {
			origin = "scheduled from Slack by " + win.CreatedBy
		}
		channel := win.Channel
		if channel == "" {
			channel = "the default channel"
		}
		fmt.Fprintf(w, "\n%s  %s  %q  %s  (%s; announced in %s)\n", win.ID, win.Cluster, win.Spec,
			windows.FormatDuration(win.Duration), origin, channel)
		if !strings.HasPrefix(win.Spec, "CRON_TZ=") && !strings.HasPrefix(win.Spec, "TZ=") {
			fmt.Fprintf(w, "  note: no CRON_TZ, so the schedule is read in the bot host's time zone (shown here as %s)\n", win.Location())
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if c := u.Current; c != nil {
			fmt.Fprintf(tw, "  now\t%s\t(%s)\tuntil %s%s\n", c.Start.In(local).Format(localLayout), c.Start.UTC().Format(utcLayout),
				c.End.In(local).Format("Mon 15:04 MST"), skipped(c))
		}
		for i, p := range u.Next {
			label := "next"
			if i > 0 {
				label = "then"
			}
			fmt.Fprintf(tw, "  %s\t%s\t(%s)\tuntil %s%s\n", label, p.Start.In(local).Format(localLayout), p.Start.UTC().Format(utcLayout),
				p.End.In(local).Format("Mon 15:04 MST"), skipped(&p))
		}
		if len(u.Next) == 0 && u.Current == nil {
			fmt.Fprintln(tw, "  no start in the next five years")
		}
		tw.Flush()
		if len(u.Next) > 0 && len(u.Next[0].Announce) > 0 {
			var ann []string
			for i, a := range u.Next[0].Announce {
				lead := win.Announce[i]
				ann = append(ann, fmt.Sprintf("%s (%s ahead)", a.In(local).Format(localLayout), windows.FormatDuration(lead)))
			}
			fmt.Fprintf(w, "  announced %s\n", strings.Join(ann, ", "))
		} else if len(win.Announce) == 0 {
			fmt.Fprintln(w, "  not announced ahead")
		}
	}
}

func skipped(p *windows.Planned) string {
	if p.Skip == nil {
		return ""
	}
	return "  SKIPPED by " + p.Skip.By
}

type windowJSON struct {
	ID        string        `json:"id"`
	Cluster   string        `json:"cluster"`
	Schedule  string        `json:"schedule"`
	Duration  string        `json:"duration"`
	Announce  []string      `json:"announce"`
	Channel   string        `json:"channel,omitempty"`
	Source    string        `json:"source"`
	CreatedBy string        `json:"created_by,omitempty"`
	Current   *plannedJSON  `json:"current,omitempty"`
	Next      []plannedJSON `json:"next"`
}

type plannedJSON struct {
	Start     time.Time   `json:"start"`
	End       time.Time   `json:"end"`
	Announce  []time.Time `json:"announce"`
	SkippedBy string      `json:"skipped_by,omitempty"`
}

func toPlannedJSON(p windows.Planned) plannedJSON {
	out := plannedJSON{Start: p.Start.UTC(), End: p.End.UTC(), Announce: []time.Time{}}
	for _, a := range p.Announce {
		out.Announce = append(out.Announce, a.UTC())
	}
	if p.Skip != nil {
		out.SkippedBy = p.Skip.By
	}
	return out
}

func printWindowsJSON(env *Env, ups []windows.Upcoming) int {
	out := []windowJSON{}
	for _, u := range ups {
		w := u.Window
		j := windowJSON{ID: w.ID, Cluster: w.Cluster, Schedule: w.Spec, Duration: windows.FormatDuration(w.Duration),
			Announce: []string{}, Channel: w.Channel, Source: string(w.Source), CreatedBy: w.CreatedBy, Next: []plannedJSON{}}
		if w.Source == windows.FromConfig {
			j.CreatedBy = ""
		}
		for _, l := range w.Announce {
			j.Announce = append(j.Announce, windows.FormatDuration(l))
		}
		if u.Current != nil {
			c := toPlannedJSON(*u.Current)
			j.Current = &c
		}
		for _, p := range u.Next {
			j.Next = append(j.Next, toPlannedJSON(p))
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint windows: %v\n", err)
		return 1
	}
	return 0
}
