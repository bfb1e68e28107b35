package slackfake

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/slack-go/slack"
)

// recordingTB stands in for the test the fake reports to, so that a test
// can check what the fake would have failed.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

func TestUnknownMethodFailsTheTest(t *testing.T) {
	t.Parallel()
	rec := &recordingTB{TB: t}
	s := New(rec)
	api := slack.New(BotToken, slack.OptionAPIURL(s.URL()))
	if _, err := api.GetConversationHistoryContext(context.Background(), &slack.GetConversationHistoryParameters{ChannelID: "C1"}); err == nil {
		t.Fatal("conversations.history answered; the fake must not serve it")
	}
	if errs := rec.errors(); len(errs) != 1 || !strings.Contains(errs[0], "conversations.history") {
		t.Fatalf("fake reported %v", errs)
	}
}

func TestPostsUpdatesAndLimits(t *testing.T) {
	t.Parallel()
	rec := &recordingTB{TB: t}
	s := New(rec)
	api := slack.New(BotToken, slack.OptionAPIURL(s.URL()))
	ctx := context.Background()
	_, ts1, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("one", false))
	if err != nil {
		t.Fatal(err)
	}
	_, ts2, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("two", false), slack.MsgOptionTS(ts1))
	if err != nil || ts1 == ts2 {
		t.Fatalf("second post: ts %s (first %s), %v", ts2, ts1, err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", ts1, slack.MsgOptionText("one, edited", false)); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Message(ts1); m.Text != "one, edited" || m.Updates != 1 {
		t.Errorf("after update: %+v", m)
	}
	if th := s.Thread(ts1); len(th) != 1 || th[0].Text != "two" {
		t.Errorf("thread: %+v", th)
	}
	// A message over Slack's limits is refused and reported.
	long := slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.Repeat("x", 3001), false, false), nil, nil)
	_, _, err = api.PostMessageContext(ctx, "C1", slack.MsgOptionBlocks(long))
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "invalid_blocks" || len(rec.errors()) != 1 {
		t.Errorf("oversized section: %v, reported %v", err, rec.errors())
	}
	// Throttle: the first call and every second one after it get 429.
	s.Throttle("chat.postEphemeral", 2, 7)
	_, err = api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("a", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter.Seconds() != 7 {
		t.Fatalf("first throttled call: %v", err)
	}
	if _, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("a", false)); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if got := len(s.Ephemerals("U1")); got != 1 {
		t.Errorf("%d ephemerals recorded, want 1", got)
	}
	// A wrong token is invalid_auth.
	bad := slack.New("xoxb-wrong", slack.OptionAPIURL(s.URL()))
	if _, err := bad.AuthTestContext(ctx); err == nil || !strings.Contains(err.Error(), "invalid_auth") {
		t.Errorf("wrong token: %v", err)
	}
}

func TestUploadAndGroups(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.SetGroup("S1", "U1", "U2")
	api := slack.New(BotToken, slack.OptionAPIURL(s.URL()))
	ctx := context.Background()
	if m, err := api.GetUserGroupMembersContext(ctx, "S1"); err != nil || strings.Join(m, ",") != "U1,U2" {
		t.Fatalf("members: %v %v", m, err)
	}
	_, ts, _ := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("card", false))
	content := strings.Repeat("line\n", 1000)
	if _, err := api.UploadFileContext(ctx, slack.UploadFileParameters{Filename: "stop-1.log", FileSize: len(content),
		Content: content, Channel: "C1", ThreadTimestamp: ts, InitialComment: "tail"}); err != nil {
		t.Fatal(err)
	}
	files := s.Files()
	if len(files) != 1 || files[0].Content != content || files[0].ThreadTS != ts || files[0].Comment != "tail" {
		t.Fatalf("files: %+v", files)
	}
	if th := s.Thread(ts); len(th) != 1 || th[0].FileID != files[0].ID {
		t.Errorf("the file share is not in the thread: %+v", th)
	}
}
