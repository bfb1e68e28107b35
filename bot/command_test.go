package bot

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	clusters := []string{"prod", "staging", "Analytics"}
	verbs := append(BuiltinVerbs(), Verb{Name: "schedule", Args: `CLUSTER "CRON" [duration=D]`, Cluster: RequiredCluster, MinArgs: 1, MaxArgs: 2},
		Verb{Name: "unschedule", Args: "ID", MinArgs: 1, MaxArgs: 1})
	tests := []struct {
		text string
		want *Command
		// reply must contain each of these when want is nil
		reply []string
	}{
		{text: "", want: &Command{Verb: "help"}},
		{text: "   ", want: &Command{Verb: "help"}},
		{text: "help", want: &Command{Verb: "help"}},
		{text: "HELP", want: &Command{Verb: "help"}},
		{text: "clusters", want: &Command{Verb: "clusters"}},
		{text: "preflight prod", want: &Command{Verb: "preflight", Cluster: "prod"}},
		{text: "  start   prod  ", want: &Command{Verb: "start", Cluster: "prod"}},
		{text: "start PROD", want: &Command{Verb: "start", Cluster: "prod"}},
		{text: "start analytics", want: &Command{Verb: "start", Cluster: "Analytics"}},
		{text: "status", want: &Command{Verb: "status"}},
		{text: "status staging", want: &Command{Verb: "status", Cluster: "staging"}},
		{text: "abort prod", want: &Command{Verb: "abort", Cluster: "prod"}},
		{text: "history", want: &Command{Verb: "history"}},
		{text: "history prod", want: &Command{Verb: "history", Cluster: "prod"}},
		{text: `schedule prod "0 2 * * SUN"`, want: &Command{Verb: "schedule", Cluster: "prod", Args: []string{"0 2 * * SUN"}}},
		{text: `schedule prod “CRON_TZ=Europe/Berlin 0 2 * * SUN” duration=3h`, want: &Command{Verb: "schedule", Cluster: "prod",
			Args: []string{"CRON_TZ=Europe/Berlin 0 2 * * SUN", "duration=3h"}}},
		{text: `schedule prod '0 2 * * *'`, want: &Command{Verb: "schedule", Cluster: "prod", Args: []string{"0 2 * * *"}}},
		{text: "unschedule w-12", want: &Command{Verb: "unschedule", Args: []string{"w-12"}}},

		{text: "strat prod", reply: []string{"don't know the command `strat`", "Did you mean `/sdbmaint start`?", "/sdbmaint preflight CLUSTER"}},
		{text: "preflite prod", reply: []string{"Did you mean `/sdbmaint preflight`?"}},
		{text: "pre prod", reply: []string{"Did you mean `/sdbmaint preflight`?"}},
		{text: "deploy prod", reply: []string{"don't know the command `deploy`", "/sdbmaint help"}},
		{text: "start", reply: []string{"`start` needs a cluster", "`/sdbmaint start CLUSTER`", "`Analytics`, `prod`, `staging`"}},
		{text: "start prdo", reply: []string{"no cluster named `prdo`", "Did you mean `prod`?", "Clusters:"}},
		{text: "abort nosuch", reply: []string{"no cluster named `nosuch`", "Clusters: `Analytics`, `prod`, `staging`."}},
		{text: "status prod extra", reply: []string{"`status` takes nothing after the cluster", "/sdbmaint status [CLUSTER]"}},
		{text: "clusters prod", reply: []string{"`clusters` takes no arguments"}},
		{text: "schedule prod", reply: []string{"`schedule` takes 1 to 2 arguments after the cluster"}},
		{text: "unschedule", reply: []string{"`unschedule` takes exactly 1 arguments"}},
		{text: `schedule prod "0 2 * *`, reply: []string{"a quote is not closed"}},
		{text: "st&lt;!channel&gt; prod", reply: []string{"`st&lt;!channel&gt;`"}},
		{text: "start `rm`", reply: []string{"no cluster named `'rm'`"}},
	}
	for _, tt := range tests {
		got := Parse(tt.text, verbs, clusters)
		if tt.want != nil {
			if got.Command == nil || !reflect.DeepEqual(*got.Command, *tt.want) {
				t.Errorf("Parse(%q) = %+v (reply %q), want %+v", tt.text, got.Command, got.Reply, *tt.want)
			}
			continue
		}
		if got.Command != nil {
			t.Errorf("Parse(%q) = command %+v, want a reply", tt.text, *got.Command)
			continue
		}
		for _, w := range tt.reply {
			if !strings.Contains(got.Reply, w) {
				t.Errorf("Parse(%q) reply = %q, want it to contain %q", tt.text, got.Reply, w)
			}
		}
		if strings.Contains(got.Reply, "<!") {
			t.Errorf("Parse(%q) reply %q could ping the channel", tt.text, got.Reply)
		}
	}
}

func TestParseNoClusters(t *testing.T) {
	t.Parallel()
	got := Parse("start prod", BuiltinVerbs(), nil)
	if got.Command != nil || !strings.Contains(got.Reply, "No clusters are configured") {
		t.Fatalf("Parse with no clusters = %+v", got)
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"start", "start", 0}, {"strat", "start", 1}, {"stat", "start", 1}, {"", "abc", 3},
		{"preflite", "preflight", 3}, {"abort", "about", 1}, {"kitten", "sitting", 3},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestHelpTextNamesEveryVerb(t *testing.T) {
	t.Parallel()
	h := HelpText(BuiltinVerbs())
	for _, v := range BuiltinVerbs() {
		if !strings.Contains(h, v.Usage()) {
			t.Errorf("help does not show %q", v.Usage())
		}
	}
	if !strings.Contains(h, "in the channel") {
		t.Error("help does not say that commands go in the channel (threads cannot run slash commands)")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "start prod", `schedule prod "0 2 * * *" duration=3h`, "“x", "st&amp;art", "\x00\xff"} {
		f.Add(s)
	}
	verbs := BuiltinVerbs()
	f.Fuzz(func(t *testing.T, text string) {
		got := Parse(text, verbs, []string{"prod", "staging"})
		if (got.Command == nil) == (got.Reply == "") {
			t.Fatalf("Parse(%q) = %+v: want exactly one of command and reply", text, got)
		}
		if got.Command != nil && got.Command.Verb == "" {
			t.Fatalf("Parse(%q): command without a verb", text)
		}
	})
}
