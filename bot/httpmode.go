package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// maxBody bounds a Slack request body. Slash commands and clicks are a few
// kB; anything larger is not from Slack and is refused before it is read.
const maxBody = 64 << 10

// Handler returns the bot's HTTP endpoints: /healthz, /readyz and /metrics
// always; in HTTP mode also POST /slack/commands, /slack/interactions and
// /slack/events, each verified against the signing secret first.
func (b *Bot) Handler(cfg ServeConfig) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if b.closing.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		if !b.ready.Load() {
			http.Error(w, "not connected to Slack yet", http.StatusServiceUnavailable)
			return
		}
		if cfg.StoreReady != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := cfg.StoreReady(ctx); err != nil {
				http.Error(w, "store not ready", http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", b.metrics.Handler())
	if cfg.Mode == ModeHTTP {
		secret := cfg.SigningSecret
		mux.Handle("POST /slack/commands", b.signed(secret, "slash_commands", b.httpCommand))
		mux.Handle("POST /slack/interactions", b.signed(secret, "interactive", b.httpInteraction))
		mux.Handle("POST /slack/events", b.signed(secret, "events_api", b.httpEvent))
	}
	return mux
}

// signed reads the raw body (bounded), verifies the signature and the
// timestamp over it, and only then hands it on. Anything unsigned, forged or
// stale gets 401 and no work is done.
func (b *Bot) signed(secret []byte, kind string, next func(r *http.Request, body []byte) (ack, int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				b.metrics.rejected.WithLabelValues("too_large").Inc()
				http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
				return
			}
			b.metrics.rejected.WithLabelValues("unreadable").Inc()
			http.Error(w, "cannot read request", http.StatusBadRequest)
			return
		}
		// Slack's timestamps are wall-clock time, so the window is checked
		// against the wall clock, never the bot's injectable clock.
		if err := verifySignature(secret, r.Header, body, time.Now()); err != nil {
			reason := "forged"
			switch {
			case errors.Is(err, errUnsigned):
				reason = "unsigned"
			case errors.Is(err, errStale):
				reason = "stale"
			}
			b.metrics.rejected.WithLabelValues(reason).Inc()
			b.log.Warn("refused an HTTP request", "path", r.URL.Path, "reason", err.Error(), "remote", r.RemoteAddr)
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		a, status := next(r, body)
		if status != http.StatusOK {
			w.WriteHeader(status)
			return
		}
		if a.body == nil {
			w.WriteHeader(http.StatusOK)
		} else {
			w.Header().Set("Content-Type", "application/json")
			if err := json.NewEncoder(w).Encode(a.body); err != nil {
				b.log.Warn("writing the acknowledgement failed", "err", err)
			}
		}
		// Send the acknowledgement now rather than when the handler
		// returns: what follows must not delay it.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		b.metrics.observeAck(kind, ModeHTTP, time.Since(start))
		b.spawn(a)
	})
}

func withBody(r *http.Request, body []byte) *http.Request {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return r
}

func (b *Bot) httpCommand(r *http.Request, body []byte) (ack, int) {
	sc, err := slack.SlashCommandParse(withBody(r, body))
	if err != nil {
		b.log.Warn("slash command not parsable", "err", err)
		return ack{}, http.StatusBadRequest
	}
	return b.handleCommand(sc), http.StatusOK
}

func (b *Bot) httpInteraction(r *http.Request, body []byte) (ack, int) {
	cb, err := slack.InteractionCallbackParse(withBody(r, body))
	if err != nil {
		b.log.Warn("interaction not parsable", "err", err)
		return ack{}, http.StatusBadRequest
	}
	return b.handleInteraction(cb), http.StatusOK
}

// httpEvent answers Events API deliveries: the URL check, and a plain
// acknowledgement (deduplicated by event_id) for anything else.
func (b *Bot) httpEvent(r *http.Request, body []byte) (ack, int) {
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		b.log.Warn("event not parsable", "err", err)
		return ack{}, http.StatusBadRequest
	}
	switch ev.Type {
	case slackevents.URLVerification:
		if v, ok := ev.Data.(*slackevents.EventsAPIURLVerificationEvent); ok {
			return ack{body: map[string]string{"challenge": v.Challenge}}, http.StatusOK
		}
	case slackevents.CallbackEvent:
		var outer struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(body, &outer)
		if !b.dedupe.first("event:" + outer.EventID) {
			b.log.Info("duplicate event acknowledged again", "event", outer.EventID, "retry", r.Header.Get("X-Slack-Retry-Num"))
		}
	}
	return ack{}, http.StatusOK
}
