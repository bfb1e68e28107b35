package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/memstore"
)

// Fuzz targets for what a click or a dialog sends the bot: the reason
// dialog's metadata, and whole interaction payloads delivered to the HTTP
// endpoint with a valid signature (what a compromised or buggy Slack
// workspace app could send). Nothing may panic, and no click on one of the
// bot's own buttons may be dropped without the person hearing about it.

func FuzzDecodeReasonMeta(f *testing.F) {
	good := reasonMeta{Action: runbook.ActSkip, Value: gateValue{RunID: "7f3c9a1be0d24c55", Phase: runbook.PhaseStop, Version: 12}, Channel: "C0OPS"}
	f.Add(good.encode())
	f.Add(reasonMeta{Action: runbook.ActSkipPhase, Value: gateValue{RunID: "r", Phase: runbook.PhaseBackup}, Channel: ""}.encode())
	f.Add("skip|r|stop|+7|C1")
	f.Add("skip|r|stop|007|C1")
	f.Add("approve|r|stop|1|C1")
	f.Add("skip|||")
	f.Add("skip|r|stop|1|C1|C2")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := decodeReasonMeta(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if !needsReason(m.Action) {
			t.Fatalf("%q: action %q takes no reason", s, m.Action)
		}
		if m.Value.RunID == "" || strings.Contains(m.Value.RunID, "|") || m.Value.Version < 0 || strings.Contains(m.Channel, "|") {
			t.Fatalf("%q decoded to %+v", s, m)
		}
		known := false
		for _, p := range runbook.Phases {
			known = known || p == m.Value.Phase
		}
		if !known {
			t.Fatalf("%q: unknown phase %q accepted", s, m.Value.Phase)
		}
		// What the bot writes back decodes to the same thing.
		back, err := decodeReasonMeta(m.encode())
		if err != nil || back != m {
			t.Fatalf("%q decoded to %+v, which encodes to %q and decodes to %+v, %v", s, m, m.encode(), back, err)
		}
	})
}

// recordingTB hands slackfake a testing.TB whose Errorf can be called from
// the fake's handlers while a fuzz input runs: complaints are kept and the
// fuzz function fails with them.
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

func (r *recordingTB) Helper()                   {}
func (r *recordingTB) Logf(string, ...any)       {}
func (r *recordingTB) Fatalf(f string, a ...any) { r.Errorf(f, a...) }

func (r *recordingTB) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	errs := r.errs
	r.errs = nil
	return errs
}

// unreachableClusters knows the name "prod" but cannot reach it: a click that
// starts maintenance goes as far as the engine and is refused there.
type unreachableClusters struct{}

func (unreachableClusters) Cluster(_ context.Context, name string) (*runbook.Cluster, error) {
	return nil, runbook.Errorf(runbook.Invalid, "cluster %q is not reachable in this test", name)
}

func (unreachableClusters) Names() []string { return []string{"prod"} }

const fuzzSecret = "fuzz-signing-secret"

// fuzzBot is a bot on an in-memory engine with no runs, talking to a fake
// Slack, and its HTTP endpoints.
type fuzzBot struct {
	bot     *Bot
	handler http.Handler
	fake    *slackfake.Server
	tb      *recordingTB
}

func newFuzzBot(f *testing.F) *fuzzBot {
	tb := &recordingTB{TB: f}
	fake := slackfake.New(tb)
	api := slack.New(slackfake.BotToken, slack.OptionAPIURL(fake.URL()))
	engine := runbook.NewEngine(runbook.EngineConfig{Store: memstore.New(), Clusters: unreachableClusters{}})
	b, err := New(Options{Engine: engine, Clusters: unreachableClusters{}, API: api})
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzBot{bot: b, fake: fake, tb: tb,
		handler: b.Handler(ServeConfig{Mode: ModeHTTP, SigningSecret: []byte(fuzzSecret)})}
}

// deliver posts payload as Slack does (a form with a payload field),
// signed, and waits until the work the acknowledgement started is done.
func (fb *fuzzBot) deliver(payload string) *httptest.ResponseRecorder {
	body := []byte(url.Values{"payload": {payload}}.Encode())
	req := slackfake.SignedRequest("http://bot/slack/interactions", []byte(fuzzSecret), time.Now(),
		"application/x-www-form-urlencoded", body)
	rec := httptest.NewRecorder()
	fb.handler.ServeHTTP(rec, req)
	fb.bot.work.wg.Wait()
	return rec
}

// clickPayload is a block_actions payload of user pressing one button.
func clickPayload(user, actionID, value string) string {
	p := map[string]any{
		"type": "block_actions", "user": map[string]any{"id": user, "username": user},
		"api_app_id": "A0TEST", "team": map[string]any{"id": "T0TEST"},
		"channel":    map[string]any{"id": "C0OPS", "name": "ops"},
		"container":  map[string]any{"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0OPS"},
		"trigger_id": "1.2.trigger", "response_url": "http://127.0.0.1:1/response",
		"actions": []map[string]any{{"type": "button", "action_id": actionID, "block_id": "b",
			"value": value, "text": map[string]any{"type": "plain_text", "text": "Approve"}, "action_ts": "1700000000.1"}},
	}
	raw, _ := json.Marshal(p)
	return string(raw)
}

func submissionPayload(user, meta, reason string) string {
	p := map[string]any{
		"type": "view_submission", "user": map[string]any{"id": user}, "api_app_id": "A0TEST",
		"team": map[string]any{"id": "T0TEST"}, "trigger_id": "1.2.trigger",
		"view": map[string]any{
			"id": "V1", "type": "modal", "callback_id": reasonCallbackID, "private_metadata": meta,
			"state": map[string]any{"values": map[string]any{
				reasonBlockID: map[string]any{reasonActionID: map[string]any{"type": "plain_text_input", "value": reason}},
			}},
		},
	}
	raw, _ := json.Marshal(p)
	return string(raw)
}

// gateClick is what the bot must answer: the user and whether the payload
// is a click on one of the bot's own buttons.
func gateClick(payload string) (user string, ok bool) {
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(payload), &cb); err != nil || cb.Type != slack.InteractionTypeBlockActions || cb.User.ID == "" {
		return "", false
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if a == nil {
			continue
		}
		if _, gate := gateActions[a.ActionID]; gate || a.ActionID == actionID(actStartMaintenance) {
			return cb.User.ID, true
		}
	}
	return "", false
}

func FuzzInteraction(f *testing.F) {
	value := encodeValue("7f3c9a1be0d24c55", runbook.PhaseStop, 3)
	f.Add(clickPayload("U0OPS", actionID(string(runbook.ActApprove)), value))
	f.Add(clickPayload("U0OPS", actionID(string(runbook.ActAbort)), "7f3c|nosuch|1"))
	f.Add(clickPayload("U0OPS", actionID(string(runbook.ActSkip)), value))
	f.Add(clickPayload("U0OPS", actionID(actStartMaintenance), "prod"))
	f.Add(clickPayload("U0OPS", actionID(actStartMaintenance), "staging`<!channel>"))
	f.Add(clickPayload("U0OPS", "other-app:button", "x"))
	f.Add(clickPayload("", actionID(string(runbook.ActApprove)), value))
	meta := reasonMeta{Action: runbook.ActSkip, Value: gateValue{RunID: "7f3c9a1be0d24c55", Phase: runbook.PhaseStop, Version: 3}, Channel: "C0OPS"}.encode()
	f.Add(submissionPayload("U0OPS", meta, "disk replaced"))
	f.Add(submissionPayload("U0OPS", meta, "   "))
	f.Add(submissionPayload("U0OPS", "skip|damaged", "why"))
	f.Add(`{"type":"block_actions","user":{"id":"U1"},"actions":[null]}`)
	f.Add(`{"type":"block_actions","actions":[{}]}`)
	f.Add(`{"type":"view_submission","view":null}`)
	f.Add(`{"type":"view_submission","view":{"callback_id":"sdbmaint:reason","state":{"values":{"reason":null}}}}`)
	f.Add(`{"type":"shortcut"}`)
	f.Add(`{}`)
	f.Add(`[]`)
	f.Add(``)
	f.Add(`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"sdbmaint:approve","value":"` + strings.Repeat("a|", 1500) + `"}]}`)

	fb := newFuzzBot(f)
	f.Fuzz(func(t *testing.T, payload string) {
		user, mustAnswer := gateClick(payload)
		before := len(fb.fake.Ephemerals(user))
		rec := fb.deliver(payload)
		if errs := fb.tb.take(); len(errs) > 0 {
			t.Fatalf("the fake Slack refused what the bot sent: %s", strings.Join(errs, "; "))
		}
		switch rec.Code {
		case http.StatusOK:
			if b := strings.TrimSpace(rec.Body.String()); b != "" && !json.Valid([]byte(b)) {
				t.Fatalf("acknowledged with a body that is not JSON: %q", b)
			}
		case http.StatusBadRequest:
			var cb slack.InteractionCallback
			if json.Unmarshal([]byte(payload), &cb) == nil && mustAnswer {
				t.Fatalf("a parsable click refused with 400")
			}
			return
		default:
			t.Fatalf("status %d for a signed payload", rec.Code)
		}
		if mustAnswer && len(fb.fake.Ephemerals(user)) == before {
			t.Fatalf("a click on a bot button by %s got no answer", user)
		}
	})
}

// FuzzClick presses a button with any action ID and value: the shapes of
// payload Slack sends, with the contents the fuzzer picks.
func FuzzClick(f *testing.F) {
	for _, a := range []string{string(runbook.ActApprove), string(runbook.ActSkip), string(runbook.ActSkipPhase), actStartMaintenance} {
		f.Add("U0OPS", actionID(a), encodeValue("7f3c9a1be0d24c55", runbook.PhaseStop, 3))
	}
	f.Add("U0OPS", actionID(actStartMaintenance), "prod")
	f.Add("U0OPS", actionID(actStartMaintenance), "PROD")
	f.Add("U0OPS", actionID(string(runbook.ActApprove)), "r|stop|+3")
	f.Add("U0OPS", "sdbmaint:window-skip", "w1")
	fb := newFuzzBot(f)
	f.Fuzz(func(t *testing.T, user, action, value string) {
		// What the bot reads back out of the JSON payload.
		user, action, value = viaJSON(user), viaJSON(action), viaJSON(value)
		if user == "" {
			return // Slack always says who clicked
		}
		before := len(fb.fake.Ephemerals(user))
		rec := fb.deliver(clickPayload(user, action, value))
		if errs := fb.tb.take(); len(errs) > 0 {
			t.Fatalf("the fake Slack refused what the bot sent: %s", strings.Join(errs, "; "))
		}
		if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != "" {
			t.Fatalf("click acknowledged with %d %q", rec.Code, rec.Body.String())
		}
		_, gate := gateActions[action]
		if (gate || action == actionID(actStartMaintenance)) && len(fb.fake.Ephemerals(user)) == before {
			t.Fatalf("click %s %q by %s got no answer", action, value, user)
		}
	})
}

// FuzzReasonSubmission submits the skip-reason dialog with any metadata
// and reason: a damaged dialog or an empty reason is answered in the
// dialog; anything else becomes a decision, which the engine (knowing no
// runs) refuses and the person is told.
func FuzzReasonSubmission(f *testing.F) {
	meta := reasonMeta{Action: runbook.ActSkip, Value: gateValue{RunID: "7f3c9a1be0d24c55", Phase: runbook.PhaseStop, Version: 3}, Channel: "C0OPS"}
	f.Add(meta.encode(), "disk replaced")
	f.Add(meta.encode(), "")
	f.Add(meta.encode(), strings.Repeat("why ", 400))
	f.Add("skip|garbage", "why")
	fb := newFuzzBot(f)
	f.Fuzz(func(t *testing.T, metaText, reason string) {
		const user = "U0OPS"
		before := len(fb.fake.Ephemerals(user))
		rec := fb.deliver(submissionPayload(user, metaText, reason))
		if errs := fb.tb.take(); len(errs) > 0 {
			t.Fatalf("the fake Slack refused what the bot sent: %s", strings.Join(errs, "; "))
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("submission answered %d", rec.Code)
		}
		var body struct {
			Action string            `json:"response_action"`
			Errors map[string]string `json:"errors"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		_, metaErr := decodeReasonMeta(metaText)
		if metaErr != nil || strings.TrimSpace(reason) == "" {
			if body.Action != "errors" || body.Errors[reasonBlockID] == "" {
				t.Fatalf("damaged dialog or empty reason answered with %q", rec.Body.String())
			}
			return
		}
		if body.Action != "" {
			t.Fatalf("good submission answered with %q", rec.Body.String())
		}
		if len(fb.fake.Ephemerals(user)) == before {
			t.Fatalf("submission %q %q: the refusal never reached the person", metaText, reason)
		}
	})
}

// viaJSON is s as it comes out of a JSON string: invalid UTF-8 replaced.
func viaJSON(s string) string {
	raw, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(raw, &out)
	return out
}
