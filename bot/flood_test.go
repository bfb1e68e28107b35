package bot_test

// HTTP mode under a flood of bad requests: unsigned, forged, stale,
// oversized and slow (slowloris) requests from many goroutines while
// genuine slash commands and clicks arrive. The genuine ones are all
// acknowledged with their answer; the bad ones are refused before any
// work; oversized bodies are cut at the body limit; slow bodies are cut by
// the server's read timeout.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/bot"
	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/runbook"
)

const (
	flooder = "U0FLOODER" // the user every bad request claims to be
	// slowHeader marks a slowloris connection for the timeline listener,
	// which runs the server's read deadlines on it slowFactor times faster
	// so that the real timeout cuts it in test time.
	slowHeader = "X-Flood-Slow"
	slowFactor = 100
	bigHeader  = "X-Flood-Big"
	bigBody    = 200 << 10 // an oversized body: over the bot's limit, under what the client can always finish sending
	bodyLimit  = 64 << 10  // the bot's documented limit (bot/httpmode.go)
)

// deadline is one deadline the server set on a connection: when, and how
// far ahead.
type deadline struct {
	read  bool
	ahead time.Duration // 0 clears the deadline
}

// timelineListener records what the HTTP server does with each connection:
// the read and write deadlines it sets and how much it read before it
// first wrote. Connections that announce slowHeader get their read
// deadlines scaled down by slowFactor.
type timelineListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*timelineConn
}

func (l *timelineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &timelineConn{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, tc)
	l.mu.Unlock()
	return tc, nil
}

func (l *timelineListener) snapshot() []*timelineConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*timelineConn(nil), l.conns...)
}

type timelineConn struct {
	net.Conn
	mu          sync.Mutex
	head        []byte // the first bytes read, to tell slow and big requests
	slow, big   bool
	readBefore  int // bytes read before the first write
	wrote       bool
	deadlines   []deadline
	scaledReads int // read deadlines scaled for a slow connection
}

func (c *timelineConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if !c.wrote {
		c.readBefore += n
	}
	if len(c.head) < 4096 {
		c.head = append(c.head, p[:n]...)
		c.slow = c.slow || bytes.Contains(c.head, []byte(slowHeader))
		c.big = c.big || bytes.Contains(c.head, []byte(bigHeader))
	}
	c.mu.Unlock()
	return n, err
}

func (c *timelineConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.wrote = true
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *timelineConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.record(true, t))
}

func (c *timelineConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.record(false, t))
}

func (c *timelineConn) SetDeadline(t time.Time) error {
	c.record(false, t)
	return c.Conn.SetDeadline(c.record(true, t))
}

func (c *timelineConn) record(read bool, t time.Time) time.Time {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	d := deadline{read: read}
	if !t.IsZero() {
		d.ahead = t.Sub(now)
		if read && c.slow {
			c.scaledReads++
			t = now.Add(d.ahead / slowFactor)
		}
	}
	c.deadlines = append(c.deadlines, d)
	return t
}

// startHTTPOn starts the harness's bot in HTTP mode on ln, as
// harness.start does on a listener of its own.
func startHTTPOn(h *harness, ln net.Listener) {
	t := h.t
	t.Helper()
	h.starts++
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.metrics = bot.NewMetrics()
	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(h.slack.URL()), slack.OptionHTTPClient(h.metrics.HTTPClient()))
	approvers, err := bot.NewApprovers([]string{operator, approver, oncall}, api, time.Minute, h.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	h.engine = runbook.NewEngine(runbook.EngineConfig{Store: h.store, Clusters: h.source, Approvers: approvers,
		TwoPersonRule: h.twoRule, Logger: logger.With("component", "engine")})
	if err := h.engine.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := bot.New(bot.Options{Engine: h.engine, Clusters: h.source, API: api, Approvers: approvers, Cards: h.cards,
		Channel: channel, Clock: h.clock, Logger: logger.With("component", "bot"), Metrics: h.metrics})
	if err != nil {
		t.Fatal(err)
	}
	h.bot = b
	h.mode = bot.ModeHTTP
	h.done = make(chan error, 1)
	h.cancel = cancel
	cfg := bot.ServeConfig{Mode: bot.ModeHTTP, Listener: ln, SigningSecret: []byte(secret), DrainTimeout: 20 * time.Second}
	go func() { h.done <- b.Serve(ctx, cfg) }()
	h.tr = slackfake.HTTPTransport{BaseURL: "http://" + ln.Addr().String(), Secret: []byte(secret)}
	h.waitReady()
}

// floodResult is what the flood saw, by kind of bad request.
type floodResult struct {
	mu       sync.Mutex
	statuses map[string]map[int]int // kind -> HTTP status -> count
	errs     map[string][]string    // kind -> transport errors
	cut      int                    // slow requests whose connection the server ended before the body was sent
	uncut    int                    // slow requests that sent their whole body
	urls     map[string]bool        // response_urls the bad requests carried
}

func (r *floodResult) add(kind string, status int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs[kind] = append(r.errs[kind], err.Error())
		return
	}
	if r.statuses[kind] == nil {
		r.statuses[kind] = map[int]int{}
	}
	r.statuses[kind][status]++
}

func (r *floodResult) count(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.errs[kind])
	for _, c := range r.statuses[kind] {
		n += c
	}
	return n
}

// flood sends bad requests until stop is closed, from perKind goroutines
// for each kind, so that slow requests do not hold back the fast ones.
// Every request claims to come from the flooder and carries a start or an
// approve that would do work if it were let through.
type flood struct {
	h       *harness
	base    string
	card    slackfake.Message // a card with an Approve button, for forged clicks
	res     *floodResult
	client  *http.Client
	bigBody []byte
}

var floodKinds = []string{"unsigned", "forged", "stale", "oversized", "slow"}

func newFlood(h *harness, card slackfake.Message) *flood {
	return &flood{
		h: h, base: h.tr.(slackfake.HTTPTransport).BaseURL, card: card,
		res:    &floodResult{statuses: map[string]map[int]int{}, errs: map[string][]string{}, urls: map[string]bool{}},
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
		// A well-formed slash command padded to oversize: only its size is
		// wrong, and it is correctly signed.
		bigBody: []byte("command=%2Fsdbmaint&text=start+prod&user_id=" + flooder + "&pad=" + strings.Repeat("A", bigBody)),
	}
}

func (f *flood) run(t testing.TB, perKind int, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for _, kind := range floodKinds {
		for w := range perKind {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; ; i += perKind {
					select {
					case <-stop:
						return
					default:
					}
					f.one(t, kind, i)
				}
			}()
		}
	}
	return wg.Wait
}

// payload is a bad request's body: a start on the command endpoint or an
// approve on the interactions endpoint.
func (f *flood) payload(t testing.TB, i int) (path, ctype string, body []byte) {
	var p any
	kind := "slash_commands"
	if i%2 == 0 {
		sp := f.h.slack.SlashPayload(flooder, channel, "start prod")
		f.res.mu.Lock()
		f.res.urls[sp["response_url"]] = true
		f.res.mu.Unlock()
		p = sp
	} else {
		cp := f.h.slack.ClickPayload(t, flooder, f.card, "sdbmaint:approve")
		f.res.mu.Lock()
		f.res.urls[cp["response_url"].(string)] = true
		f.res.mu.Unlock()
		p, kind = cp, "interactive"
	}
	path, ctype, body, err := slackfake.EncodeHTTP(kind, p)
	if err != nil {
		panic(err)
	}
	return path, ctype, body
}

func (f *flood) one(t testing.TB, kind string, i int) {
	path, ctype, body := f.payload(t, i)
	now := time.Now()
	var req *http.Request
	switch kind {
	case "unsigned":
		req = slackfake.SignedRequest(f.base+path, nil, now, ctype, body)
	case "forged":
		req = slackfake.SignedRequest(f.base+path, []byte("not-the-signing-secret"), now, ctype, body)
	case "stale":
		req = slackfake.SignedRequest(f.base+path, []byte(secret), now.Add(-6*time.Minute), ctype, body)
	case "oversized":
		req = slackfake.SignedRequest(f.base+"/slack/commands", []byte(secret), now, "application/x-www-form-urlencoded", f.bigBody)
		req.Header.Set(bigHeader, "1")
	case "slow":
		f.slowloris(path, ctype, body)
		return
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.res.add(kind, 0, err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	f.res.add(kind, resp.StatusCode, nil)
}

// slowloris sends a correctly signed request's headers at once and its
// body a byte at a time, until the server answers or closes.
func (f *flood) slowloris(path, ctype string, body []byte) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.base, "http://"))
	if err != nil {
		f.res.add("slow", 0, err)
		return
	}
	defer conn.Close()
	ts := time.Now().Unix()
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: sdbmaint\r\nContent-Type: %s\r\nContent-Length: %d\r\n"+
		"X-Slack-Request-Timestamp: %d\r\nX-Slack-Signature: %s\r\n%s: 1\r\n\r\n",
		path, ctype, len(body), ts, slackfake.Sign([]byte(secret), ts, body), slowHeader)
	if _, err := io.WriteString(conn, head); err != nil {
		f.res.add("slow", 0, err)
		return
	}
	answered := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- 0 // closed without an answer
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(body); i++ {
		select {
		case status := <-answered:
			f.res.mu.Lock()
			f.res.cut++
			f.res.mu.Unlock()
			f.res.add("slow", status, nil)
			return
		case <-tick.C:
			if _, err := conn.Write(body[i : i+1]); err != nil {
				f.res.mu.Lock()
				f.res.cut++
				f.res.mu.Unlock()
				f.res.add("slow", <-answered, nil)
				return
			}
		}
	}
	f.res.mu.Lock()
	f.res.uncut++
	f.res.mu.Unlock()
	f.res.add("slow", <-answered, nil)
}

// floodSetup starts an HTTP-mode bot on a timeline listener, opens a run
// and approves its first gate: the card it returns has a live Approve
// button (snapshot) for forged clicks, stale the outdated one (backup) for
// genuine clicks that the engine refuses.
func floodSetup(t testing.TB) (h *harness, ln *timelineListener, card, stale slackfake.Message) {
	h = newHarness(t, bot.ModeHTTP, harnessOptions{})
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = &timelineListener{Listener: raw}
	startHTTPOn(h, ln)
	h.command(operator, "start prod")
	stale = h.waitGate(runbook.PhaseBackup, "approve")
	h.click(approver, stale, "approve")
	card = h.waitGate(runbook.PhaseSnapshot, "approve")
	return h, ln, card, stale
}

// goodRequest sends the i-th genuine request and checks its
// acknowledgement: a help command answers with the help at once; status
// acknowledges empty and answers on its response_url (returned, to be
// checked later); a click on the outdated card acknowledges empty (the
// refusal follows in private).
func goodRequest(t testing.TB, h *harness, stale slackfake.Message, i int) (r slackfake.Reply, responseURL string) {
	t.Helper()
	want := ""
	switch i % 3 {
	case 0:
		r, want = h.slack.Command(t, h.tr, operator, channel, "help"), "/sdbmaint start CLUSTER"
	case 1:
		p := h.slack.SlashPayload(approver, channel, "status prod")
		r, responseURL = h.tr.Deliver(t, "slash_commands", p), p["response_url"]
	case 2:
		r = h.slack.Click(t, h.tr, approver, stale, "sdbmaint:approve")
	}
	switch {
	case r.Status != http.StatusOK:
		t.Errorf("good request %d: status %d %s", i, r.Status, r.Body)
	case want != "" && !strings.Contains(string(r.Body), want):
		t.Errorf("good request %d: answer %s, want it to contain %q", i, r.Body, want)
	case want == "" && len(r.Body) != 0:
		t.Errorf("good request %d: answer %s, want an empty acknowledgement", i, r.Body)
	}
	return r, responseURL
}

func TestHTTPFloodKeepsGoodRequestsAnswered(t *testing.T) {
	t.Parallel()
	h, ln, card, stale := floodSetup(t)
	ctx := context.Background()
	auditBefore, err := h.engine.AuditLog(ctx, "")
	if err != nil {
		t.Fatal(err)
	}

	f := newFlood(h, card)
	stop := make(chan struct{})
	wait := f.run(t, 2, stop)
	// Good requests go out while every kind of bad one is in flight.
	waitUntil(t, "the flood under way", func() bool {
		for _, k := range floodKinds {
			if f.res.count(k) < 2 {
				return false
			}
		}
		return true
	})
	const good = 60
	statusURLs := map[string]bool{}
	for i := range good {
		if _, u := goodRequest(t, h, stale, i); u != "" {
			statusURLs[u] = true
		}
	}
	close(stop)
	wait()

	// Every bad request was refused: 401, 413 for the oversized, and the
	// slow ones cut by the read timeout before their body was through.
	for _, k := range floodKinds {
		f.res.mu.Lock()
		st, errs := f.res.statuses[k], f.res.errs[k]
		f.res.mu.Unlock()
		t.Logf("%s: %v, transport errors %d", k, st, len(errs))
		want := map[string]int{"unsigned": 401, "forged": 401, "stale": 401, "oversized": 413, "slow": 400}[k]
		if len(errs) > 0 {
			t.Errorf("%s: %d transport errors, e.g. %s", k, len(errs), errs[0])
		}
		for status, n := range st {
			if status != want && !(k == "slow" && status == 0) {
				t.Errorf("%s: %d answered %d, want %d", k, n, status, want)
			}
		}
	}
	if f.res.uncut > 0 || f.res.cut == 0 {
		t.Errorf("slow requests: %d cut by the server, %d sent their whole body", f.res.cut, f.res.uncut)
	}

	// The refusals are counted by reason, each request once.
	rejected := map[string]float64{}
	mfs, err := h.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sdbmaint_slack_requests_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					rejected[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	f.res.mu.Lock()
	for reason, kind := range map[string]string{"unsigned": "unsigned", "forged": "forged", "stale": "stale", "too_large": "oversized"} {
		if got, want := rejected[reason], float64(f.res.statuses[kind][map[bool]int{true: 413, false: 401}[kind == "oversized"]]); got != want {
			t.Errorf("rejected{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got, want := rejected["unreadable"], float64(f.res.statuses["slow"][400]); got != want {
		t.Errorf("rejected{reason=\"unreadable\"} = %v, want %v (slow bodies answered 400)", got, want)
	}
	urls := f.res.urls
	f.res.mu.Unlock()

	// No work for any of them: nothing in the audit log from the flooder,
	// no Slack call about them, and the run is where it was.
	waitUntil(t, "the refusals of the good clicks in the audit log", func() bool {
		audit, _ := h.engine.AuditLog(ctx, "")
		n := 0
		for _, a := range audit[len(auditBefore):] {
			if a.Who == approver && a.What == "refused approve" {
				n++
			}
		}
		return n == good/3
	})
	h.slack.WaitFor(t, "every status answered on its response_url", func() bool {
		n := 0
		for _, r := range h.slack.Responses() {
			if statusURLs[r.URL] && strings.Contains(r.Text+slackfake.Texts(r.Blocks), "prod") {
				n++
			}
		}
		return n == len(statusURLs)
	})
	audit, _ := h.engine.AuditLog(ctx, "")
	for _, a := range audit {
		if a.Who == flooder {
			t.Errorf("a bad request reached the engine: %+v", a)
		}
	}
	for _, c := range h.slack.Calls("") {
		if strings.Contains(c.Form.Encode()+string(c.JSON), flooder) {
			t.Errorf("a Slack call about the flooder: %s %v %s", c.Method, c.Form, c.JSON)
		}
	}
	for _, r := range h.slack.Responses() {
		if urls[r.URL] {
			t.Errorf("an answer went to a bad request's response_url: %+v", r)
		}
	}
	if r := h.openRun(); r == nil || r.Current != runbook.PhaseSnapshot || r.CurrentPhase().Status != runbook.PhaseWaiting || r.StartedBy != operator {
		t.Errorf("the run moved under the flood: %+v", r)
	}

	// The server's timeouts, as it set them on the connections: a header
	// and a whole-request read deadline, a write deadline, an idle one; the
	// oversized bodies read no further than the limit before the answer.
	var reads, writes []time.Duration
	bigConns, slowConns := 0, 0
	for _, c := range ln.snapshot() {
		c.mu.Lock()
		for _, d := range c.deadlines {
			if d.ahead <= 0 {
				continue
			}
			if d.read {
				reads = append(reads, d.ahead)
			} else {
				writes = append(writes, d.ahead)
			}
		}
		if c.big {
			bigConns++
			if c.readBefore > bodyLimit+64<<10 {
				t.Errorf("the server read %d bytes of an oversized request before answering; the limit is %d", c.readBefore, bodyLimit)
			}
		}
		if c.slow && c.scaledReads > 0 {
			slowConns++
		}
		c.mu.Unlock()
	}
	if len(reads) == 0 || len(writes) == 0 || bigConns == 0 || slowConns == 0 {
		t.Fatalf("read deadlines %d, write deadlines %d, oversized connections %d, slow connections %d", len(reads), len(writes), bigConns, slowConns)
	}
	lo, hi := minMax(reads)
	wlo, whi := minMax(writes)
	t.Logf("read deadlines %v..%v ahead, write deadlines %v..%v ahead", lo.Round(time.Second), hi.Round(time.Second), wlo.Round(time.Second), whi.Round(time.Second))
	if hi > 5*time.Minute || whi > 5*time.Minute || hi <= lo {
		t.Errorf("the server's deadlines do not bound a connection: reads %v..%v, writes %v..%v", lo, hi, wlo, whi)
	}
}

func minMax(ds []time.Duration) (lo, hi time.Duration) {
	lo, hi = ds[0], ds[0]
	for _, d := range ds {
		lo, hi = min(lo, d), max(hi, d)
	}
	return lo, hi
}

// waitUntil polls cond every few milliseconds until it holds; it fails the
// test after 20 s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
