package slackfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Ack is an acknowledgement the bot sent for an envelope.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage // null or absent for an empty ack
	At         time.Time
}

// socketHub serves Socket Mode: apps.connections.open hands out the /ws URL,
// /ws sends hello and pings and reads acks.
type socketHub struct {
	s *Server

	mu        sync.Mutex
	conn      *websocket.Conn
	writeMu   sync.Mutex
	conns     int // connections accepted so far
	connected chan struct{}
	waiting   map[string]chan Ack
	acks      map[string][]Ack
	seq       int
	done      chan struct{}
	closed    bool
	wg        sync.WaitGroup
}

func newSocketHub(s *Server) *socketHub {
	return &socketHub{s: s, connected: make(chan struct{}), waiting: map[string]chan Ack{},
		acks: map[string][]Ack{}, done: make(chan struct{})}
}

func (s *Server) connectionsOpen(*request) any {
	u := "ws" + s.srv.URL[len("http"):] + "/ws"
	return map[string]any{"ok": true, "url": u}
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (h *socketHub) serveWS(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	h.mu.Lock()
	if old := h.conn; old != nil {
		_ = old.Close()
	}
	h.conn = conn
	h.conns++
	close(h.connected)
	h.connected = make(chan struct{})
	h.mu.Unlock()
	if err := h.write(conn, map[string]any{"type": "hello", "num_connections": 1,
		"debug_info": map[string]any{"host": "slackfake"}}); err != nil {
		return
	}

	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(h.s.pingEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-h.done:
				return
			case <-t.C:
				h.writeMu.Lock()
				err := conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second))
				h.writeMu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()
	go func() {
		select {
		case <-h.done:
			_ = conn.Close()
		case <-stop:
		}
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			h.mu.Lock()
			if h.conn == conn {
				h.conn = nil
			}
			h.mu.Unlock()
			return
		}
		var a struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(data, &a); err != nil || a.EnvelopeID == "" {
			h.s.t.Errorf("slackfake: the bot wrote a frame that is not an ack: %s", data)
			continue
		}
		ack := Ack{EnvelopeID: a.EnvelopeID, Payload: a.Payload, At: time.Now()}
		h.mu.Lock()
		h.acks[a.EnvelopeID] = append(h.acks[a.EnvelopeID], ack)
		if ch, ok := h.waiting[a.EnvelopeID]; ok {
			delete(h.waiting, a.EnvelopeID)
			ch <- ack
		}
		h.mu.Unlock()
		h.s.mu.Lock()
		h.s.record(Call{Method: "socket.ack", At: h.s.now(), JSON: data, Status: http.StatusOK})
		h.s.mu.Unlock()
	}
}

func (h *socketHub) write(conn *websocket.Conn, v any) error {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return conn.WriteJSON(v)
}

func (h *socketHub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.done)
	h.mu.Unlock()
	h.wg.Wait()
}

// Connections returns how many websocket connections the bot opened.
func (s *Server) Connections() int {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	return s.sock.conns
}

// WaitConnected waits until the bot has opened at least n websocket
// connections and one is open now.
func (s *Server) WaitConnected(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s.sock.mu.Lock()
		ok := s.sock.conns >= n && s.sock.conn != nil
		ch := s.sock.connected
		s.sock.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("slackfake: the bot did not open socket connection #%d", n)
		}
	}
}

// SendEnvelope pushes an envelope of type kind ("slash_commands",
// "interactive", "events_api") over the open websocket and returns its id
// and a channel that receives the bot's ack.
func (s *Server) SendEnvelope(kind string, payload any) (string, <-chan Ack, error) {
	h := s.sock
	h.mu.Lock()
	h.seq++
	id := fmt.Sprintf("env-%d", h.seq)
	h.mu.Unlock()
	ch, err := s.sendEnvelopeID(id, kind, payload, 0)
	return id, ch, err
}

// Redeliver sends envelope id again, as Slack does when an ack is late.
func (s *Server) Redeliver(id, kind string, payload any, attempt int) (<-chan Ack, error) {
	return s.sendEnvelopeID(id, kind, payload, attempt)
}

func (s *Server) sendEnvelopeID(id, kind string, payload any, attempt int) (<-chan Ack, error) {
	h := s.sock
	ch := make(chan Ack, 1)
	h.mu.Lock()
	conn := h.conn
	if conn == nil {
		h.mu.Unlock()
		return nil, fmt.Errorf("slackfake: no socket connection to send %s on", kind)
	}
	h.waiting[id] = ch
	h.mu.Unlock()
	env := map[string]any{"type": kind, "envelope_id": id, "payload": payload,
		"accepts_response_payload": kind == "slash_commands", "retry_attempt": attempt}
	if attempt > 0 {
		env["retry_reason"] = "timeout"
	}
	if err := h.write(conn, env); err != nil {
		h.mu.Lock()
		delete(h.waiting, id)
		h.mu.Unlock()
		return nil, fmt.Errorf("slackfake: send envelope: %w", err)
	}
	return ch, nil
}

// Acks returns every ack received for envelope id.
func (s *Server) Acks(id string) []Ack {
	s.sock.mu.Lock()
	defer s.sock.mu.Unlock()
	return append([]Ack(nil), s.sock.acks[id]...)
}

// Disconnect asks the bot to reconnect, as Slack does when it refreshes a
// socket ({"type":"disconnect","reason":"refresh_requested"}).
func (s *Server) Disconnect() error {
	h := s.sock
	h.mu.Lock()
	conn := h.conn
	h.mu.Unlock()
	if conn == nil {
		return fmt.Errorf("slackfake: no socket connection")
	}
	return h.write(conn, map[string]any{"type": "disconnect", "reason": "refresh_requested"})
}
