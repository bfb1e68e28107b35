// Package slackfake is a local stand-in for Slack, for tests: it serves the
// Web API methods sdbmaint's bot uses and records every call, fails the test
// on any other method, checks every message against Slack's limits, runs a
// Socket Mode websocket (hello, pings, envelopes, acks by envelope id),
// signs HTTP-mode requests, keeps user groups, and answers 429 with
// Retry-After where a test asks for it.
//
// It is an outside system's fake, written by hand: slacktest's built-in
// routes cannot read messages back and leak goroutines (see
// shared/reference/slack-go.md), so this one stands alone on httptest.
package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tokens the fake accepts.
const (
	BotToken = "xoxb-sdbmaint-test"
	AppToken = "xapp-sdbmaint-test"
	BotUser  = "UBOT0001"
	TeamURL  = "https://sdbmaint-test.slack.com/"
)

// Call is one recorded request.
type Call struct {
	Method string // "chat.postMessage", or "response_url", "upload"
	At     time.Time
	Form   url.Values      // form-encoded methods
	JSON   json.RawMessage // JSON-bodied methods
	Status int             // the HTTP status answered
	Error  string          // the "error" of an ok:false answer
}

// Message is a message as the channel shows it now.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string // "" for top-level messages
	Text     string
	Blocks   json.RawMessage // the latest blocks
	Updates  int             // chat.update calls applied
	FileID   string          // set for a file share's message
}

// Ephemeral is a message only one user saw.
type Ephemeral struct {
	Channel, User, Text string
	Blocks              json.RawMessage
}

// Response is a post to a response_url.
type Response struct {
	URL          string
	ResponseType string
	Text         string
	Blocks       json.RawMessage
}

// View is a modal opened with views.open.
type View struct {
	ID        string
	TriggerID string
	View      json.RawMessage
}

// File is an uploaded file.
type File struct {
	ID, Name, Title, Channel, ThreadTS, Comment string
	Content                                     string
}

// Option configures a Server.
type Option func(*Server)

// WithClock makes the fake read time for call timestamps and the
// per-channel post limit from now (trigger_ids expire in wall-clock time).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithPingInterval sets how often the websocket pings the client; default
// 200ms.
func WithPingInterval(d time.Duration) Option { return func(s *Server) { s.pingEvery = d } }

// Server is the fake Slack.
type Server struct {
	t         testing.TB
	srv       *httptest.Server
	now       func() time.Time
	pingEvery time.Duration

	mu         sync.Mutex
	calls      []Call
	msgs       []*Message // in post order
	byTS       map[string]*Message
	ephemerals []Ephemeral
	responses  []Response
	views      []View
	files      map[string]*File
	fileOrder  []string
	uploads    map[string]string // file id -> content
	groups     map[string][]string
	throttle   map[string]*throttle
	postGap    time.Duration
	lastPost   map[string]time.Time
	seq        int
	tsBase     int64
	changed    chan struct{}
	triggers   map[string]time.Time

	sock *socketHub
}

type throttle struct {
	every, n   int
	retryAfter int
}

// New starts a fake Slack; it stops at the end of the test.
func New(t testing.TB, opts ...Option) *Server {
	s := &Server{
		t: t, now: time.Now, pingEvery: 200 * time.Millisecond,
		byTS: map[string]*Message{}, files: map[string]*File{}, uploads: map[string]string{},
		groups: map[string][]string{}, throttle: map[string]*throttle{}, lastPost: map[string]time.Time{},
		changed: make(chan struct{}), triggers: map[string]time.Time{},
	}
	for _, o := range opts {
		o(s)
	}
	s.tsBase = s.now().Unix()
	s.sock = newSocketHub(s)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and its websockets.
func (s *Server) Close() {
	s.sock.close()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// URL is the Web API base URL, for slack.OptionAPIURL (ends with "/").
func (s *Server) URL() string { return s.srv.URL + "/" }

// SetGroup sets the members of a user group.
func (s *Server) SetGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = members
}

// Throttle makes calls of method answer 429 with Retry-After seconds: the
// first call, and every n-th one after it (n = 2: the 1st, 3rd, 5th...), so
// a retry after the wait gets through.
func (s *Server) Throttle(method string, every, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle[method] = &throttle{every: every, retryAfter: retryAfter}
}

// LimitChannelPosts answers 429 (Retry-After: 1) to a chat.postMessage or
// file share that comes sooner than gap after the last one in the same
// channel, as Slack's one-post-per-second limit does.
func (s *Server) LimitChannelPosts(gap time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.postGap = gap
}

// Changed returns a channel closed at the next recorded call.
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// WaitFor waits until cond holds, re-checking after every call the fake
// records; it fails the test after 20 s.
func (s *Server) WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		ch := s.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("slackfake: timed out waiting for %s", what)
		}
	}
}

// Calls returns the recorded calls of method ("" = all).
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// CallCounts counts the recorded calls by method.
func (s *Server) CallCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, c := range s.calls {
		out[c.Method]++
	}
	return out
}

// Messages returns the top-level messages of channel, oldest first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.msgs {
		if m.Channel == channel && m.ThreadTS == "" {
			out = append(out, *m)
		}
	}
	return out
}

// Message returns the message at ts, as it looks now.
func (s *Server) Message(ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byTS[ts]
	if !ok {
		return Message{}, false
	}
	return *m, true
}

// Thread returns the replies under ts, oldest first.
func (s *Server) Thread(ts string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.msgs {
		if m.ThreadTS == ts {
			out = append(out, *m)
		}
	}
	return out
}

// Ephemerals returns what user saw privately through chat.postEphemeral.
func (s *Server) Ephemerals(user string) []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Ephemeral
	for _, e := range s.ephemerals {
		if e.User == user {
			out = append(out, e)
		}
	}
	return out
}

// Responses returns the posts to response_url, oldest first.
func (s *Server) Responses() []Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Response(nil), s.responses...)
}

// Views returns the modals opened.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]View(nil), s.views...)
}

// Files returns the uploaded files, in order.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []File
	for _, id := range s.fileOrder {
		out = append(out, *s.files[id])
	}
	return out
}

// nextTS returns a unique "sec.usec" message timestamp.
func (s *Server) nextTSLocked() string {
	s.seq++
	return fmt.Sprintf("%d.%06d", s.tsBase, s.seq)
}

// newTrigger issues a trigger_id valid for 3 s of wall-clock time, as
// Slack's are (whatever clock the test gave the fake).
func (s *Server) newTrigger() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("trig.%d", s.seq)
	s.triggers[id] = time.Now().Add(3 * time.Second)
	return id
}

func (s *Server) newResponseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("%sresp/%d", s.URL(), s.seq)
}

func (s *Server) record(c Call) {
	s.calls = append(s.calls, c)
	close(s.changed)
	s.changed = make(chan struct{})
}

// apiHandlers are the Web API methods the bot may call.
var apiHandlers = map[string]func(*Server, *request) any{
	"auth.test":                    (*Server).authTest,
	"chat.postMessage":             (*Server).postMessage,
	"chat.update":                  (*Server).update,
	"chat.postEphemeral":           (*Server).postEphemeral,
	"views.open":                   (*Server).viewsOpen,
	"usergroups.users.list":        (*Server).groupMembers,
	"files.getUploadURLExternal":   (*Server).uploadURL,
	"files.completeUploadExternal": (*Server).completeUpload,
	"apps.connections.open":        (*Server).connectionsOpen,
}

// request is one parsed Web API call.
type request struct {
	method string
	form   url.Values
	json   map[string]json.RawMessage
	raw    []byte
	token  string
}

// apiError is an {"ok":false,"error":...} answer.
type apiError string

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	switch {
	case path == "ws":
		s.sock.serveWS(w, r)
		return
	case strings.HasPrefix(path, "resp/"):
		s.responseURL(w, r)
		return
	case strings.HasPrefix(path, "upload/"):
		s.upload(w, r, strings.TrimPrefix(path, "upload/"))
		return
	}
	h, ok := apiHandlers[path]
	if !ok {
		s.t.Errorf("slackfake: the bot called %s, which the fake does not serve (a method the bot should not need?)", path)
		s.mu.Lock()
		s.record(Call{Method: path, At: s.now(), Status: http.StatusNotFound})
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	req, err := parseRequest(path, r)
	if err != nil {
		s.t.Errorf("slackfake: %s: %v", path, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	call := Call{Method: path, At: s.now(), Form: req.form, JSON: json.RawMessage(req.raw), Status: http.StatusOK}
	if req.form == nil {
		call.Form = nil
	} else {
		call.JSON = nil
	}
	if th := s.throttle[path]; th != nil {
		th.n++
		if (th.n-1)%th.every == 0 {
			call.Status = http.StatusTooManyRequests
			s.record(call)
			s.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(th.retryAfter))
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
	}
	wantToken := BotToken
	if path == "apps.connections.open" {
		wantToken = AppToken
	}
	if req.token != wantToken {
		call.Error = "invalid_auth"
		s.record(call)
		s.mu.Unlock()
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	s.mu.Unlock()

	out := h(s, req)

	s.mu.Lock()
	if e, ok := out.(apiError); ok {
		call.Error = string(e)
		if e == "ratelimited" {
			call.Status = http.StatusTooManyRequests
		}
	}
	s.record(call)
	s.mu.Unlock()
	if e, ok := out.(apiError); ok {
		if e == "ratelimited" {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		writeJSON(w, map[string]any{"ok": false, "error": string(e)})
		return
	}
	writeJSON(w, out)
}

func parseRequest(method string, r *http.Request) (*request, error) {
	if r.Method != http.MethodPost {
		return nil, fmt.Errorf("want POST, got %s", r.Method)
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	req := &request{method: method, raw: raw}
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") {
		req.token = strings.TrimPrefix(auth, "Bearer ")
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &req.json); err != nil {
				return nil, fmt.Errorf("JSON body: %w", err)
			}
		}
	default:
		req.form, err = url.ParseQuery(string(raw))
		if err != nil {
			return nil, fmt.Errorf("form body: %w", err)
		}
		if t := req.form.Get("token"); t != "" {
			req.token = t
		}
	}
	return req, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) authTest(*request) any {
	return map[string]any{"ok": true, "url": TeamURL, "team": "sdbmaint test", "user": "sdbmaint",
		"team_id": "T0TEST", "user_id": BotUser, "bot_id": "B0TEST"}
}

// checkPostGap enforces the per-channel post limit (mu held).
func (s *Server) checkPostGapLocked(channel string) bool {
	if s.postGap <= 0 {
		return true
	}
	now := s.now()
	if last, ok := s.lastPost[channel]; ok && now.Sub(last) < s.postGap {
		return false
	}
	s.lastPost[channel] = now
	return true
}

func (s *Server) postMessage(r *request) any {
	ch, text, blocks := r.form.Get("channel"), r.form.Get("text"), r.form.Get("blocks")
	if ch == "" {
		return apiError("channel_not_found")
	}
	if text == "" && blocks == "" {
		return apiError("no_text")
	}
	if err := CheckMessage(text, []byte(blocks)); err != nil {
		s.t.Errorf("slackfake: chat.postMessage breaks Slack's limits: %v", err)
		return apiError("invalid_blocks")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	thread := r.form.Get("thread_ts")
	if thread != "" {
		if _, ok := s.byTS[thread]; !ok {
			return apiError("thread_not_found")
		}
	}
	if !s.checkPostGapLocked(ch) {
		return apiError("ratelimited")
	}
	m := &Message{Channel: ch, TS: s.nextTSLocked(), ThreadTS: thread, Text: text}
	if blocks != "" {
		m.Blocks = json.RawMessage(blocks)
	}
	s.msgs = append(s.msgs, m)
	s.byTS[m.TS] = m
	return map[string]any{"ok": true, "channel": ch, "ts": m.TS}
}

func (s *Server) update(r *request) any {
	ch, ts, text, blocks := r.form.Get("channel"), r.form.Get("ts"), r.form.Get("text"), r.form.Get("blocks")
	if err := CheckMessage(text, []byte(blocks)); err != nil {
		s.t.Errorf("slackfake: chat.update breaks Slack's limits: %v", err)
		return apiError("invalid_blocks")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byTS[ts]
	if !ok || m.Channel != ch {
		return apiError("message_not_found")
	}
	m.Text = text
	if blocks != "" {
		m.Blocks = json.RawMessage(blocks)
	} else {
		m.Blocks = nil
	}
	m.Updates++
	return map[string]any{"ok": true, "channel": ch, "ts": ts, "text": text}
}

func (s *Server) postEphemeral(r *request) any {
	ch, user, text, blocks := r.form.Get("channel"), r.form.Get("user"), r.form.Get("text"), r.form.Get("blocks")
	if user == "" {
		return apiError("user_not_in_channel")
	}
	if err := CheckMessage(text, []byte(blocks)); err != nil {
		s.t.Errorf("slackfake: chat.postEphemeral breaks Slack's limits: %v", err)
		return apiError("invalid_blocks")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := Ephemeral{Channel: ch, User: user, Text: text}
	if blocks != "" {
		e.Blocks = json.RawMessage(blocks)
	}
	s.ephemerals = append(s.ephemerals, e)
	return map[string]any{"ok": true, "message_ts": s.nextTSLocked()}
}

func (s *Server) viewsOpen(r *request) any {
	var trigger string
	_ = json.Unmarshal(r.json["trigger_id"], &trigger)
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.triggers[trigger]
	if !ok {
		return apiError("invalid_trigger_id")
	}
	if time.Now().After(exp) {
		return apiError("expired_trigger_id")
	}
	delete(s.triggers, trigger)
	s.seq++
	v := View{ID: fmt.Sprintf("V%06d", s.seq), TriggerID: trigger, View: r.json["view"]}
	s.views = append(s.views, v)
	return map[string]any{"ok": true, "view": map[string]any{"id": v.ID}}
}

func (s *Server) groupMembers(r *request) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	members, ok := s.groups[r.form.Get("usergroup")]
	if !ok {
		return apiError("no_such_subteam")
	}
	return map[string]any{"ok": true, "users": append([]string{}, members...)}
}

func (s *Server) uploadURL(r *request) any {
	name := r.form.Get("filename")
	n, err := strconv.Atoi(r.form.Get("length"))
	if name == "" || err != nil || n <= 0 {
		return apiError("invalid_arguments")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("F%06d", s.seq)
	s.files[id] = &File{ID: id, Name: name}
	return map[string]any{"ok": true, "upload_url": s.URL() + "upload/" + id, "file_id": id}
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request, id string) {
	content, err := readUpload(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Method: "upload", At: s.now(), Status: http.StatusOK}
	if _, ok := s.files[id]; !ok || err != nil {
		call.Status = http.StatusBadRequest
		s.record(call)
		s.t.Errorf("slackfake: upload to %s: unknown file or bad body (%v)", id, err)
		http.Error(w, "bad upload", http.StatusBadRequest)
		return
	}
	s.uploads[id] = content
	s.record(call)
	_, _ = io.WriteString(w, "OK - "+strconv.Itoa(len(content)))
}

func readUpload(r *http.Request) (string, error) {
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if !strings.HasPrefix(ct, "multipart/") {
		b, err := io.ReadAll(r.Body)
		return string(b), err
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			return "", fmt.Errorf("no file part: %w", err)
		}
		if p.FormName() == "file" {
			b, err := io.ReadAll(p)
			return string(b), err
		}
	}
}

func (s *Server) completeUpload(r *request) any {
	var files []struct{ ID, Title string }
	if err := json.Unmarshal([]byte(r.form.Get("files")), &files); err != nil || len(files) == 0 {
		return apiError("invalid_arguments")
	}
	ch, thread, comment := r.form.Get("channel_id"), r.form.Get("thread_ts"), r.form.Get("initial_comment")
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, f := range files {
		file, ok := s.files[f.ID]
		content, uploaded := s.uploads[f.ID]
		if !ok || !uploaded {
			return apiError("file_not_found")
		}
		if ch != "" && !s.checkPostGapLocked(ch) {
			return apiError("ratelimited")
		}
		file.Title, file.Channel, file.ThreadTS, file.Comment, file.Content = f.Title, ch, thread, comment, content
		s.fileOrder = append(s.fileOrder, f.ID)
		if ch != "" {
			m := &Message{Channel: ch, TS: s.nextTSLocked(), ThreadTS: thread, Text: comment, FileID: f.ID}
			s.msgs = append(s.msgs, m)
			s.byTS[m.TS] = m
		}
		out = append(out, map[string]any{"id": f.ID, "title": f.Title})
	}
	return map[string]any{"ok": true, "files": out}
}

func (s *Server) responseURL(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var body struct {
		ResponseType string          `json:"response_type"`
		Text         string          `json:"text"`
		Blocks       json.RawMessage `json:"blocks"`
	}
	err := json.Unmarshal(raw, &body)
	if err == nil {
		err = CheckMessage(body.Text, body.Blocks)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Method: "response_url", At: s.now(), JSON: raw, Status: http.StatusOK}
	if err != nil {
		call.Status = http.StatusBadRequest
		s.record(call)
		s.t.Errorf("slackfake: response_url post is bad: %v", err)
		http.Error(w, "invalid_blocks", http.StatusBadRequest)
		return
	}
	s.responses = append(s.responses, Response{URL: s.srv.URL + r.URL.Path, ResponseType: body.ResponseType,
		Text: body.Text, Blocks: body.Blocks})
	s.record(call)
	_, _ = io.WriteString(w, "ok")
}

// FileContents returns the contents of every uploaded file, in order.
func (s *Server) FileContents() []string {
	var out []string
	for _, f := range s.Files() {
		out = append(out, f.Content)
	}
	return out
}

// Methods lists the Web API methods the fake serves, sorted.
func Methods() []string {
	var out []string
	for m := range apiHandlers {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
