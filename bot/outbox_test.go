package bot

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/memstore"
)

// noClusters is a ClusterSource without clusters: the outbox tests feed
// the board events by hand and never start a run.
type noClusters struct{}

func (noClusters) Cluster(context.Context, string) (*runbook.Cluster, error) {
	return nil, runbook.Errorf(runbook.Invalid, "no clusters")
}
func (noClusters) Names() []string { return nil }

func newBoardBot(t *testing.T, fake *slackfake.Server, clock Clock) *Bot {
	t.Helper()
	m := NewMetrics()
	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(fake.URL()), slack.OptionHTTPClient(m.HTTPClient()))
	b, err := New(Options{
		Engine:   runbook.NewEngine(runbook.EngineConfig{Store: memstore.New(), Clusters: noClusters{}}),
		Clusters: noClusters{}, API: api, Channel: "C0OPS", Clock: clock, Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.board.close(ctx)
	})
	return b
}

// A stop phase prints far more than a message holds while Slack answers 429
// to uploads and card updates: the posts to the channel stay at most one
// per second, the long batch goes up as a file with its tail inline, and
// every line arrives.
func TestOutboxPacesAndUploadsLongOutput(t *testing.T) {
	t.Parallel()
	clock := slackfake.NewFastClock(200)
	fake := slackfake.New(t, slackfake.WithClock(clock.Now))
	fake.LimitChannelPosts(time.Second)
	fake.Throttle("files.completeUploadExternal", 2, 1)
	fake.Throttle("chat.update", 3, 2)
	b := newBoardBot(t, fake, clock)

	run := fixture(runbook.PhaseStop, runbook.PhaseRunning)
	run.Version = 1
	b.board.event(runbook.Event{Kind: runbook.EventRunStarted, At: t0, Run: run})
	fake.WaitFor(t, "the card", func() bool { return len(fake.Messages("C0OPS")) == 1 })
	step := run.Phase(runbook.PhaseStop).Steps[3]
	var lines []string
	for i := 0; i < 1500; i++ {
		l := fmt.Sprintf("leaf %s: progress %04d <ok> & fine", runbook.ShortID(step.Target), i)
		lines = append(lines, l)
		b.board.event(runbook.Event{Kind: runbook.EventOutput, At: t0, Run: run, Step: step,
			Line: &runbook.Chunk{RunID: run.ID, StepID: step.ID, Line: l}})
		if i%100 == 99 {
			r := run.Clone()
			r.Version = int64(2 + i/100)
			b.board.event(runbook.Event{Kind: runbook.EventStepStarted, At: t0, Run: r})
		}
	}
	done := run.Clone()
	done.Version = 100
	done.Phase(runbook.PhaseStop).Status = runbook.PhaseDone
	b.board.event(runbook.Event{Kind: runbook.EventPhaseFinished, At: t0, Run: done, Phase: runbook.PhaseStop})

	fake.WaitFor(t, "every line in the thread or its files, and the last card", func() bool {
		var all strings.Builder
		for _, f := range fake.Files() {
			all.WriteString(f.Content)
		}
		for _, m := range fake.Messages("C0OPS") {
			for _, r := range fake.Thread(m.TS) {
				all.WriteString(r.Text)
			}
		}
		s := all.String()
		for _, l := range lines {
			if !strings.Contains(s, l) {
				return false
			}
		}
		msgs := fake.Messages("C0OPS")
		return len(msgs) == 1 && strings.Contains(slackfake.Texts(msgs[0].Blocks), "✅ *stop*")
	})

	files := fake.Files()
	if len(files) == 0 {
		t.Fatal("1,500 lines went out without a file")
	}
	for _, f := range files {
		if !strings.HasPrefix(f.Name, "stop-") || !strings.HasSuffix(f.Name, ".log") {
			t.Errorf("file name %q", f.Name)
		}
		if !strings.Contains(f.Comment, "the full output is in") || !strings.Contains(f.Comment, "&lt;ok&gt; &amp; fine") {
			t.Errorf("file comment lacks the escaped tail inline: %.300q", f.Comment)
		}
		if strings.Contains(f.Content, "&lt;") {
			t.Error("the file has escaped text; it should have the lines as printed")
		}
	}
	// One post per second per channel, in the fake's (fast) time.
	var last time.Time
	for _, c := range fake.Calls("") {
		if (c.Method != "chat.postMessage" && c.Method != "files.completeUploadExternal") || c.Status != http.StatusOK || c.Error != "" {
			continue
		}
		if !last.IsZero() && c.At.Sub(last) < 990*time.Millisecond {
			t.Errorf("two posts %v apart in the channel", c.At.Sub(last))
		}
		last = c.At
	}
	if got := countStatus(fake, "chat.update", http.StatusTooManyRequests); got == 0 {
		t.Error("chat.update was never rate-limited; the test proves nothing")
	}
	if got := countStatus(fake, "files.completeUploadExternal", http.StatusTooManyRequests); got == 0 {
		t.Error("uploads were never rate-limited; the test proves nothing")
	}
	// Card updates stay rare: about one per CardInterval, not one per event.
	if n := len(fake.Calls("chat.update")); n > 20 {
		t.Errorf("%d card updates for 16 state changes in a burst", n)
	}
}

func countStatus(fake *slackfake.Server, method string, status int) int {
	n := 0
	for _, c := range fake.Calls(method) {
		if c.Status == status {
			n++
		}
	}
	return n
}

// A card that Slack no longer has (deleted by someone) is posted again
// rather than updated forever in vain.
func TestOutboxRepostsALostCard(t *testing.T) {
	t.Parallel()
	clock := slackfake.NewFastClock(200)
	fake := slackfake.New(t, slackfake.WithClock(clock.Now))
	run := fixture(runbook.PhaseBackup, runbook.PhaseWaiting)
	store := memstore.New() // clicks teach card locations only for runs the engine knows
	if _, err := store.CreateRun(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	b, _ := newStoreBot(t, fake, store)
	b.board.learn(context.Background(), run.ID, "C0OPS", "999.000001") // a card the fake never had
	b.board.update(run, true)
	fake.WaitFor(t, "a new card", func() bool { return len(fake.Messages("C0OPS")) == 1 })
	if got := len(fake.Calls("chat.update")); got != 1 {
		t.Errorf("%d updates of the lost card, want 1 before reposting", got)
	}
}

// One output line longer than a thread message shows goes up as a file,
// whole, even when the batch is short.
func TestOutboxLongLineGoesToAFile(t *testing.T) {
	t.Parallel()
	clock := slackfake.NewFastClock(200)
	fake := slackfake.New(t, slackfake.WithClock(clock.Now))
	b := newBoardBot(t, fake, clock)
	run := fixture(runbook.PhaseStop, runbook.PhaseRunning)
	b.board.event(runbook.Event{Kind: runbook.EventRunStarted, At: t0, Run: run})
	step := run.Phase(runbook.PhaseStop).Steps[0]
	long := "ERROR " + strings.Repeat("0123456789", 100) + " END"
	b.board.event(runbook.Event{Kind: runbook.EventOutput, At: t0, Run: run, Step: step,
		Line: &runbook.Chunk{RunID: run.ID, StepID: step.ID, Line: long}})
	fake.WaitFor(t, "the long line in a file", func() bool {
		for _, f := range fake.Files() {
			if strings.Contains(f.Content, long) {
				return true
			}
		}
		return false
	})
}
