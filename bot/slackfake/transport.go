package slackfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// Reply is the bot's acknowledgement of one request.
type Reply struct {
	Status  int             // HTTP status (200 for a Socket Mode ack)
	Body    json.RawMessage // the ack's payload; empty for an empty ack
	Latency time.Duration   // from sending the request to receiving the ack
}

// Text returns the "text" of the acknowledgement body, if any.
func (r Reply) Text() string {
	var b struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Text
}

// Transport delivers Slack requests to the bot the way one of Slack's
// transports does. Scenario tests run over both.
type Transport interface {
	Name() string
	// Deliver sends one request of kind ("slash_commands", "interactive",
	// "events_api") and waits for the acknowledgement.
	Deliver(t testing.TB, kind string, payload any) Reply
}

// SocketTransport delivers requests as Socket Mode envelopes.
type SocketTransport struct{ S *Server }

// Name is "socket".
func (SocketTransport) Name() string { return "socket" }

// Deliver sends an envelope and waits for its ack; more than 3 s fails the
// test, as Slack would give up.
func (st SocketTransport) Deliver(t testing.TB, kind string, payload any) Reply {
	t.Helper()
	start := time.Now()
	_, ch, err := st.S.SendEnvelope(kind, payload)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-ch:
		r := Reply{Status: http.StatusOK, Latency: time.Since(start)}
		if len(a.Payload) > 0 && string(a.Payload) != "null" {
			r.Body = a.Payload
		}
		return r
	case <-time.After(3 * time.Second):
		t.Fatalf("slackfake: no ack for %s within Slack's 3 s", kind)
		return Reply{}
	}
}

// HTTPTransport delivers requests as signed HTTP POSTs to the bot.
type HTTPTransport struct {
	BaseURL string // "http://127.0.0.1:PORT"
	Secret  []byte
	Client  *http.Client
}

// Name is "http".
func (HTTPTransport) Name() string { return "http" }

// Deliver signs and posts the request; more than 3 s fails the test.
func (ht HTTPTransport) Deliver(t testing.TB, kind string, payload any) Reply {
	t.Helper()
	path, ctype, body, err := EncodeHTTP(kind, payload)
	if err != nil {
		t.Fatal(err)
	}
	req := SignedRequest(ht.BaseURL+path, ht.Secret, time.Now(), ctype, body)
	c := ht.Client
	if c == nil {
		c = &http.Client{Timeout: 3 * time.Second}
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("slackfake: POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := Reply{Status: resp.StatusCode, Latency: time.Since(start)}
	if len(bytes.TrimSpace(raw)) > 0 {
		r.Body = raw
	}
	return r
}

// EncodeHTTP encodes a request the way Slack posts it in HTTP mode: slash
// commands as a form, interactions as a form with a JSON payload field,
// events as JSON.
func EncodeHTTP(kind string, payload any) (path, contentType string, body []byte, err error) {
	switch kind {
	case "slash_commands":
		form := url.Values{}
		var m map[string]string
		raw, _ := json.Marshal(payload)
		if err := json.Unmarshal(raw, &m); err != nil {
			return "", "", nil, fmt.Errorf("slash command payload must be flat strings: %w", err)
		}
		for k, v := range m {
			form.Set(k, v)
		}
		return "/slack/commands", "application/x-www-form-urlencoded", []byte(form.Encode()), nil
	case "interactive":
		raw, err := json.Marshal(payload)
		if err != nil {
			return "", "", nil, err
		}
		return "/slack/interactions", "application/x-www-form-urlencoded", []byte(url.Values{"payload": {string(raw)}}.Encode()), nil
	case "events_api":
		raw, err := json.Marshal(payload)
		return "/slack/events", "application/json", raw, err
	}
	return "", "", nil, fmt.Errorf("unknown request kind %q", kind)
}

// Sign computes X-Slack-Signature for body sent at ts.
func Sign(secret []byte, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "v0:%d:", ts)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// SignedRequest builds a POST signed with secret as if sent at ts. A nil
// secret leaves it unsigned.
func SignedRequest(target string, secret []byte, ts time.Time, contentType string, body []byte) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if secret != nil {
		unix := ts.Unix()
		req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(unix, 10))
		req.Header.Set("X-Slack-Signature", Sign(secret, unix, body))
	}
	return req
}

// SlashPayload is a /sdbmaint invocation with a fresh response_url and
// trigger_id.
func (s *Server) SlashPayload(user, channel, text string) map[string]string {
	return map[string]string{
		"command": "/sdbmaint", "text": text, "user_id": user, "user_name": user,
		"channel_id": channel, "channel_name": "ops", "team_id": "T0TEST", "team_domain": "sdbmaint-test",
		"response_url": s.newResponseURL(), "trigger_id": s.newTrigger(), "api_app_id": "A0TEST",
	}
}

// Command types /sdbmaint TEXT as user in channel.
func (s *Server) Command(t testing.TB, tr Transport, user, channel, text string) Reply {
	t.Helper()
	return tr.Deliver(t, "slash_commands", s.SlashPayload(user, channel, text))
}

// ClickPayload is the block_actions payload of user pressing the button
// with actionID on msg. It fails the test if msg has no such button.
func (s *Server) ClickPayload(t testing.TB, user string, msg Message, actionID string) map[string]any {
	t.Helper()
	for _, b := range msg.Buttons() {
		if b.ActionID != actionID {
			continue
		}
		return map[string]any{
			"type": "block_actions", "user": map[string]any{"id": user, "username": user},
			"api_app_id": "A0TEST", "team": map[string]any{"id": "T0TEST"},
			"channel":    map[string]any{"id": msg.Channel, "name": "ops"},
			"container":  map[string]any{"type": "message", "message_ts": msg.TS, "channel_id": msg.Channel},
			"trigger_id": s.newTrigger(), "response_url": s.newResponseURL(),
			"actions": []map[string]any{{"type": "button", "action_id": b.ActionID, "block_id": b.BlockID,
				"value": b.Value, "text": map[string]any{"type": "plain_text", "text": b.Text},
				"action_ts": strconv.FormatInt(time.Now().UnixMicro(), 10)}},
		}
	}
	var have []string
	for _, b := range msg.Buttons() {
		have = append(have, b.ActionID)
	}
	t.Fatalf("slackfake: message %s has no button %q (it has %v)", msg.TS, actionID, have)
	return nil
}

// Click presses the button with actionID on msg as user.
func (s *Server) Click(t testing.TB, tr Transport, user string, msg Message, actionID string) Reply {
	t.Helper()
	return tr.Deliver(t, "interactive", s.ClickPayload(t, user, msg, actionID))
}

// Submit submits the modal v as user with one text input filled in.
func (s *Server) Submit(t testing.TB, tr Transport, user string, v View, blockID, actionID, value string) Reply {
	t.Helper()
	var view struct {
		CallbackID      string `json:"callback_id"`
		PrivateMetadata string `json:"private_metadata"`
	}
	if err := json.Unmarshal(v.View, &view); err != nil {
		t.Fatalf("slackfake: view %s: %v", v.ID, err)
	}
	payload := map[string]any{
		"type": "view_submission", "user": map[string]any{"id": user}, "api_app_id": "A0TEST",
		"team": map[string]any{"id": "T0TEST"}, "trigger_id": s.newTrigger(),
		"view": map[string]any{
			"id": v.ID, "type": "modal", "callback_id": view.CallbackID, "private_metadata": view.PrivateMetadata,
			"state": map[string]any{"values": map[string]any{
				blockID: map[string]any{actionID: map[string]any{"type": "plain_text_input", "value": value}},
			}},
		},
	}
	return tr.Deliver(t, "interactive", payload)
}
