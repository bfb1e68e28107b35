package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/sqlite"
)

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cret")
	body := []byte("token=x&command=%2Fsdbmaint&text=start+prod")
	now := time.Unix(1_800_000_000, 0)
	headers := func(sig, ts string) http.Header {
		h := http.Header{}
		if sig != "" {
			h.Set(signatureHeader, sig)
		}
		if ts != "" {
			h.Set(timestampHeader, ts)
		}
		return h
	}
	ts := fmt.Sprint(now.Unix())
	good := Sign(secret, now.Unix(), body)
	tests := []struct {
		name string
		h    http.Header
		body []byte
		now  time.Time
		want error
	}{
		{"good", headers(good, ts), body, now, nil},
		{"4m59s old", headers(good, ts), body, now.Add(4*time.Minute + 59*time.Second), nil},
		{"5m01s old", headers(good, ts), body, now.Add(5*time.Minute + time.Second), errStale},
		{"5m01s ahead", headers(good, ts), body, now.Add(-5*time.Minute - time.Second), errStale},
		{"no signature", headers("", ts), body, now, errUnsigned},
		{"no timestamp", headers(good, ""), body, now, errUnsigned},
		{"timestamp not a number", headers(good, "soon"), body, now, errUnsigned},
		{"other body", headers(good, ts), append(body, '!'), now, errForged},
		{"other secret", headers(Sign([]byte("other"), now.Unix(), body), ts), body, now, errForged},
		{"signature for another time", headers(Sign(secret, now.Unix()-1, body), ts), body, now, errForged},
		{"truncated signature", headers(good[:20], ts), body, now, errForged},
	}
	for _, tt := range tests {
		if err := verifySignature(secret, tt.h, tt.body, tt.now); !errors.Is(err, tt.want) {
			t.Errorf("%s: verifySignature = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestDedupe(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	d := newDedupe(10*time.Minute, func() time.Time { return now })
	if !d.first("e1") || d.first("e1") {
		t.Fatal("the second delivery of e1 was not recognised")
	}
	now = now.Add(9 * time.Minute)
	if d.first("e1") {
		t.Fatal("e1 forgotten before the TTL")
	}
	now = now.Add(2 * time.Minute)
	if !d.first("e1") {
		t.Fatal("e1 still remembered after the TTL")
	}
	if first, second := d.first(""), d.first(""); !first || !second {
		t.Fatal("an empty id is never a duplicate")
	}
}

func TestValueCodec(t *testing.T) {
	t.Parallel()
	v := encodeValue("7f3c9a1be0d24c55", runbook.PhaseStop, 42)
	got, err := decodeValue(v)
	if err != nil || got != (gateValue{RunID: "7f3c9a1be0d24c55", Phase: runbook.PhaseStop, Version: 42}) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "x", "r|stop", "r|nosuch|1", "r|stop|-1", "r|stop|1|extra", "|stop|1", "r|stop|x",
		strings.Repeat("a", 3000)} {
		if _, err := decodeValue(bad); err == nil {
			t.Errorf("decodeValue(%.40q) accepted garbage", bad)
		}
	}
	m := reasonMeta{Action: runbook.ActSkip, Value: got, Channel: "C1"}
	back, err := decodeReasonMeta(m.encode())
	if err != nil || back != m {
		t.Fatalf("reason meta round trip: %+v, %v", back, err)
	}
	for _, bad := range []string{"", "approve|r|stop|1|C1", "skip|garbage|C1", "skip"} {
		if _, err := decodeReasonMeta(bad); err == nil {
			t.Errorf("decodeReasonMeta(%q) accepted garbage", bad)
		}
	}
}

func FuzzDecodeValue(f *testing.F) {
	f.Add("7f3c|stop|12")
	f.Add("||")
	f.Fuzz(func(t *testing.T, s string) {
		// Only what encodeValue writes decodes: no "+3" or "007".
		v, err := decodeValue(s)
		if err == nil && encodeValue(v.RunID, v.Phase, v.Version) != s {
			t.Fatalf("decodeValue(%q) = %+v does not round-trip", s, v)
		}
	})
}

func TestLimitsHelpers(t *testing.T) {
	t.Parallel()
	if got := truncate("héllo wörld", 6); got != "héllo…" {
		t.Errorf("truncate = %q", got)
	}
	long := strings.Repeat("line of output\n", 1000)
	tl := tail(long, 500)
	if utf8.RuneCountInString(tl) > 500 || !strings.HasSuffix(tl, "line of output\n") || !strings.HasPrefix(tl, "…(earlier") {
		t.Errorf("tail = %q", tl)
	}
	var lines []string
	for i := 0; i < 500; i++ {
		lines = append(lines, fmt.Sprintf("line %d %s", i, strings.Repeat("x", 20)))
	}
	j := joinLimited(lines, 1000, moreLines("lines"))
	if utf8.RuneCountInString(j) > 1000 || !strings.HasPrefix(j, "line 0 ") || !strings.Contains(j, "more lines_") {
		t.Errorf("joinLimited = %q", j)
	}
	if j := joinLimited([]string{strings.Repeat("y", 5000)}, 100, moreLines("x")); utf8.RuneCountInString(j) > 100 {
		t.Errorf("a single long line is %d characters", utf8.RuneCountInString(j))
	}
	if got := escapeMrkdwn("<!channel> & <@U1>"); got != "&lt;!channel&gt; &amp; &lt;@U1&gt;" {
		t.Errorf("escapeMrkdwn = %q", got)
	}
}

// groupAPI counts usergroups.users.list calls and can fail.
type groupAPI struct {
	calls   atomic.Int32
	fail    atomic.Bool
	members map[string][]string
}

func (g *groupAPI) GetUserGroupMembersContext(ctx context.Context, group string, _ ...slack.GetUserGroupMembersOption) ([]string, error) {
	g.calls.Add(1)
	if g.fail.Load() {
		return nil, errors.New("slack is down")
	}
	return g.members[group], nil
}

func TestApprovers(t *testing.T) {
	t.Parallel()
	if _, err := NewApprovers([]string{"U1", "bogus"}, nil, 0, nil); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Fatalf("a bad approver ID was accepted: %v", err)
	}
	api := &groupAPI{members: map[string][]string{"S1": {"U2", "U3"}}}
	var mu sync.Mutex
	now := time.Unix(0, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	a, err := NewApprovers([]string{"U1", "S1"}, api, time.Minute, clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for user, want := range map[string]bool{"U1": true, "U2": true, "U3": true, "U9": false} {
		if got, err := a.MayApprove(ctx, "prod", user); got != want || err != nil {
			t.Errorf("MayApprove(%s) = %v, %v; want %v", user, got, err, want)
		}
	}
	// A burst of clicks costs one lookup.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = a.MayApprove(ctx, "prod", "U3") }()
	}
	wg.Wait()
	if n := api.calls.Load(); n != 1 {
		t.Errorf("%d group lookups, want 1 (cached)", n)
	}
	// After the TTL the members are read again; a removal takes effect.
	api.members["S1"] = []string{"U2"}
	advance(61 * time.Second)
	if ok, _ := a.MayApprove(ctx, "prod", "U3"); ok {
		t.Error("a removed member may still approve after the TTL")
	}
	// Slack down: the recent list serves for a while, then the error shows.
	api.fail.Store(true)
	advance(61 * time.Second)
	if ok, err := a.MayApprove(ctx, "prod", "U2"); !ok || err != nil {
		t.Errorf("during a short outage: %v, %v; want the recent list", ok, err)
	}
	advance(staleGrace)
	if _, err := a.MayApprove(ctx, "prod", "U2"); runbook.ErrorKind(err) != runbook.Unavailable {
		t.Errorf("long outage: err %v, want Unavailable", err)
	}
	if ok, err := a.MayApprove(ctx, "prod", "U1"); !ok || err != nil {
		t.Errorf("a listed user during an outage: %v, %v", ok, err)
	}
	if d := a.Describe(); d != "<!subteam^S1>, <@U1>" {
		t.Errorf("Describe = %q", d)
	}
}

func TestSQLCardStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := NewSQLCardStore(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if ch, ts, err := cs.LoadCard(ctx, "r1"); ch != "" || ts != "" || err != nil {
		t.Fatalf("empty store: %q %q %v", ch, ts, err)
	}
	if err := cs.SaveCard(ctx, "r1", "C1", "1.000001"); err != nil {
		t.Fatal(err)
	}
	if err := cs.SaveCard(ctx, "r1", "C2", "2.000002"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// Reopened, as after a restart; migrating twice is harmless.
	st, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cs, err = NewSQLCardStore(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if ch, ts, err := cs.LoadCard(ctx, "r1"); ch != "C2" || ts != "2.000002" || err != nil {
		t.Fatalf("after reopen: %q %q %v", ch, ts, err)
	}
}

func TestDrainerWaitsAndRefuses(t *testing.T) {
	t.Parallel()
	d := newDrainer(context.Background())
	release := make(chan struct{})
	started := make(chan struct{})
	if !d.Go(func(context.Context) { close(started); <-release }) {
		t.Fatal("work refused before draining")
	}
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Drain(ctx); err == nil {
		t.Fatal("Drain returned while work was running")
	}
	if d.Go(func(context.Context) {}) {
		t.Fatal("work taken while draining")
	}
	close(release)
	if err := d.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	if d, ok := retryAfter(&slack.RateLimitedError{RetryAfter: 3 * time.Second}, 0); !ok || d != 3*time.Second {
		t.Errorf("429: %v %v", d, ok)
	}
	if _, ok := retryAfter(slack.SlackErrorResponse{Err: "channel_not_found"}, 0); ok {
		t.Error("a Slack refusal was retried")
	}
	if _, ok := retryAfter(slack.StatusCodeError{Code: 502}, 0); !ok {
		t.Error("a 502 was not retried")
	}
	if _, ok := retryAfter(slack.StatusCodeError{Code: 404}, 0); ok {
		t.Error("a 404 was retried")
	}
}

func TestRefusalText(t *testing.T) {
	t.Parallel()
	o := runbook.Outcome{Reason: "two-person rule: U0OPERATOR started this run and cannot approve its gates; ask another approver"}
	if got := RefusalText(o); !strings.Contains(got, "<@U0OPERATOR> started this run") {
		t.Errorf("RefusalText = %q", got)
	}
	o = runbook.Outcome{Reason: "UNAVAILABLE U0X is fine <script>"}
	if got := RefusalText(o); got != "UNAVAILABLE U0X is fine &lt;script&gt;" {
		t.Errorf("RefusalText = %q", got)
	}
	o = runbook.Outcome{Reason: "snapshot was already decided", Already: &runbook.Approval{By: "U0APPROVER", At: t0.Add(2 * time.Minute), Action: runbook.ActApprove}}
	if got := RefusalText(o); got != "Already approved by <@U0APPROVER> at <!date^1772334720^{time}|03:12 UTC>; nothing more was done." {
		t.Errorf("RefusalText = %q", got)
	}
}
