package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// Transport modes.
const (
	ModeSocket = "socket"
	ModeHTTP   = "http"
)

// ServeConfig says how Slack reaches the bot and how it shuts down.
type ServeConfig struct {
	Mode string // ModeSocket (default) or ModeHTTP
	// Listen is the address of /healthz, /readyz, /metrics and, in HTTP
	// mode, of Slack's requests. Listener, when set, is used instead.
	Listen   string
	Listener net.Listener
	// SigningSecret checks HTTP-mode requests.
	SigningSecret []byte
	// Socket is the Socket Mode client; nil = socketmode.New(Options.API).
	Socket *socketmode.Client
	// DrainTimeout bounds the shutdown: in-flight work, Engine.Drain and the
	// last posts; 0 = 2 min.
	DrainTimeout time.Duration
	// StoreReady reports whether the store is usable, for /readyz; nil = ready.
	StoreReady func(ctx context.Context) error
	// Started, when set, is called once the endpoints listen, with their
	// address.
	Started func(addr net.Addr)
}

// Serve runs the bot until ctx ends, then drains: it stops taking requests
// (they are answered "restarting"), lets acknowledged work finish, drains
// the engine (running steps finish or are checkpointed), posts what is
// still queued, and returns. The error is nil after a clean drain.
func (b *Bot) Serve(ctx context.Context, cfg ServeConfig) error {
	if cfg.Mode == "" {
		cfg.Mode = ModeSocket
	}
	if cfg.Mode != ModeSocket && cfg.Mode != ModeHTTP {
		return fmt.Errorf("slack mode %q: want %q or %q", cfg.Mode, ModeSocket, ModeHTTP)
	}
	if cfg.Mode == ModeHTTP && len(cfg.SigningSecret) == 0 {
		return errors.New("HTTP mode needs the signing secret")
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 2 * time.Minute
	}
	auth, err := b.authTest(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.teamURL = auth.URL
	b.mu.Unlock()
	b.log.Info("connected to Slack", "team", auth.Team, "bot_user", auth.UserID, "mode", cfg.Mode)

	sub := b.engine.Subscribe()
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		for ev := range sub.C() {
			b.metrics.observeEvent(ev)
			b.board.event(ev)
		}
	}()
	if err := b.board.resume(ctx); err != nil {
		b.log.Error("refreshing the cards of open runs failed", "err", err)
	}

	ln := cfg.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", cfg.Listen)
		if err != nil {
			sub.Close()
			return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
	}
	srv := &http.Server{
		Handler:           b.Handler(cfg),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelWarn),
	}
	fatal := make(chan error, 2)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fatal <- fmt.Errorf("http server: %w", err)
		}
	}()
	b.log.Info("listening", "addr", ln.Addr().String())

	sockCtx, stopSocket := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSocket()
	sockDone := make(chan struct{})
	if cfg.Mode == ModeSocket {
		client := cfg.Socket
		if client == nil {
			client = socketmode.New(b.api, socketmode.OptionLog(slog.NewLogLogger(b.log.Handler(), slog.LevelDebug)))
		}
		go func() {
			defer close(sockDone)
			if err := b.runSocket(sockCtx, client); err != nil {
				fatal <- err
			}
		}()
	} else {
		close(sockDone)
		b.ready.Store(true)
		b.log.Info("ready for Slack requests", "commands", "/slack/commands", "interactions", "/slack/interactions")
	}
	if cfg.Started != nil {
		cfg.Started(ln.Addr())
	}

	var runErr error
	select {
	case <-ctx.Done():
		b.log.Info("shutting down: draining")
	case runErr = <-fatal:
		b.log.Error("stopping", "err", runErr)
	}

	// Drain, in order: no new requests; acknowledged work finishes; the
	// engine finishes or checkpoints its steps; their last events reach the
	// cards; queued posts go out; the endpoints close.
	b.closing.Store(true)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
	defer cancel()
	if err := b.work.Drain(dctx); err != nil {
		b.log.Warn("in-flight requests did not finish before the drain deadline", "err", err)
	}
	if err := b.engine.Drain(dctx); err != nil {
		b.log.Warn("engine drain", "err", err)
	}
	// Nothing is published after Drain; Finish hands over what the
	// subscription still holds and closes it, so every last event reaches
	// the cards before they are flushed.
	sub.Finish()
	select {
	case <-pumpDone:
	case <-dctx.Done():
		b.log.Warn("the drain deadline passed before the last engine events reached the cards; dropping the rest")
		sub.Close()
		<-pumpDone
	}
	b.board.close(dctx)
	stopSocket()
	<-sockDone
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	b.log.Info("stopped")
	return runErr
}

func (b *Bot) authTest(ctx context.Context) (*slack.AuthTestResponse, error) {
	var auth *slack.AuthTestResponse
	err := withRetry(ctx, b.clock, func() error {
		var e error
		auth, e = b.api.AuthTestContext(ctx)
		return e
	})
	if err != nil {
		return nil, fmt.Errorf("slack auth.test (check the bot token and slack.api_url): %w", err)
	}
	return auth, nil
}

// permalink builds a link to a message from the team URL auth.test gave.
func (b *Bot) permalink(channel, ts string) string {
	b.mu.Lock()
	base := b.teamURL
	b.mu.Unlock()
	if base == "" || channel == "" || ts == "" {
		return ""
	}
	return strings.TrimRight(base, "/") + "/archives/" + url.PathEscape(channel) + "/p" + strings.Replace(ts, ".", "", 1)
}

// runSocket reads Socket Mode events until ctx ends. Each request is
// acknowledged right here, before any work; the work goes to the drainer.
func (b *Bot) runSocket(ctx context.Context, client *socketmode.Client) error {
	errc := make(chan error, 1)
	go func() { errc <- client.RunContext(ctx) }()
	for {
		select {
		case <-ctx.Done():
			<-errc
			return nil
		case err := <-errc:
			b.ready.Store(false)
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("socket mode: %w", err)
		case evt := <-client.Events:
			if err := b.socketEvent(ctx, client, evt); err != nil {
				return err
			}
		}
	}
}

func (b *Bot) socketEvent(ctx context.Context, client *socketmode.Client, evt socketmode.Event) error {
	switch evt.Type {
	case socketmode.EventTypeConnected, socketmode.EventTypeHello:
		if !b.ready.Swap(true) {
			b.log.Info("socket mode connected")
		}
		return nil
	case socketmode.EventTypeConnecting:
		return nil
	case socketmode.EventTypeConnectionError, socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed:
		b.log.Warn("socket mode trouble; slack-go reconnects", "type", string(evt.Type))
		return nil
	case socketmode.EventTypeInvalidAuth:
		b.ready.Store(false)
		return errors.New("socket mode: Slack refused the app-level token (invalid_auth)")
	case socketmode.EventTypeErrorBadMessage:
		b.log.Warn("socket mode: a message could not be parsed")
		return nil
	}
	if evt.Request == nil {
		return nil
	}
	start := time.Now()
	req := *evt.Request
	kind := string(evt.Type)
	if !b.dedupe.first("envelope:" + req.EnvelopeID) {
		// A redelivery: acknowledge again, do nothing twice.
		_ = client.AckCtx(ctx, req.EnvelopeID, nil)
		b.log.Info("duplicate envelope acknowledged again", "envelope", req.EnvelopeID, "retry", req.RetryAttempt)
		return nil
	}
	var a ack
	switch data := evt.Data.(type) {
	case slack.SlashCommand:
		a = b.handleCommand(data)
	case slack.InteractionCallback:
		a = b.handleInteraction(data)
	case slackevents.EventsAPIEvent:
		// Nothing is subscribed beyond what Slack sends by default:
		// acknowledge, and note redeliveries by event ID.
		if cb, ok := data.Data.(*slackevents.EventsAPICallbackEvent); ok && !b.dedupe.first("event:"+cb.EventID) {
			b.log.Info("duplicate event acknowledged again", "event", cb.EventID)
		}
	}
	if err := client.AckCtx(ctx, req.EnvelopeID, a.body); err != nil {
		b.log.Warn("acknowledging an envelope failed", "envelope", req.EnvelopeID, "err", err)
	}
	b.metrics.observeAck(kind, ModeSocket, time.Since(start))
	b.spawn(a)
	return nil
}

// spawn runs the work of an acknowledged request on the drainer.
func (b *Bot) spawn(a ack) {
	if a.after != nil {
		a.after()
	}
	if a.work == nil {
		return
	}
	if !b.work.Go(a.work) {
		b.log.Warn("work dropped: the bot is draining")
	}
}
