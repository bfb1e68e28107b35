package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/sdbmaint/sdbmaint/bot"
	"github.com/sdbmaint/sdbmaint/config"
	"github.com/sdbmaint/sdbmaint/runbook"
)

func init() {
	register(&command{name: "serve", summary: "the Slack bot: /sdbmaint, run cards with approval buttons, threaded output", run: runServe})
}

// serveDeps is what serve has built when the hooks run.
type serveDeps struct {
	cfg    *config.Config
	store  configStore
	engine *runbook.Engine
	bot    *bot.Bot
	log    *slog.Logger
}

// serveHook adds to the bot before it serves (verbs with Bot.AddVerb,
// buttons with Bot.AddAction). It may return a loop that runs beside the
// bot until SIGTERM cancels its context. Other files register hooks in init
// (for example /sdbmaint verify).
type serveHook func(ctx context.Context, d *serveDeps) (loop func(context.Context) error, err error)

var serveHooks []serveHook

// runServe runs the Slack bot until SIGINT/SIGTERM, then drains: no new
// requests, in-flight work finishes, running steps finish or are
// checkpointed, queued posts go out.
func runServe(ctx context.Context, env *Env, args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	configPath := fs.String("config", "", "the sdbmaint config `FILE`")
	drain := fs.Duration("drain-timeout", 2*time.Minute, "how long SIGTERM waits for running steps and queued posts")
	lf := addLogFlags(fs, "info")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: sdbmaint serve --config FILE [--drain-timeout D] [--log-format text|json] [--log-level L]")
		fmt.Fprintln(env.Stderr)
		fmt.Fprintln(env.Stderr, "Serves /sdbmaint in Slack (Socket Mode, or HTTP with slack.mode: http) and")
		fmt.Fprintln(env.Stderr, "/healthz, /readyz and /metrics on slack.listen.")
		fmt.Fprintln(env.Stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "sdbmaint serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	log, err := lf.logger(env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint serve: %v\n", err)
		return exitUsage
	}
	cfg, err := loadConfig(env, *configPath)
	if err == nil {
		err = cfg.RequireSlack()
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint serve: %v\n", err)
		return exitUsage
	}
	if err := serve(ctx, env, cfg, *drain, log); err != nil {
		fmt.Fprintf(env.Stderr, "sdbmaint serve: %v\n", err)
		return exitNotOK
	}
	return exitOK
}

// serve wires store, clusters, engine and bot from cfg and serves until an
// interrupt arrives or ctx ends.
func serve(ctx context.Context, env *Env, cfg *config.Config, drain time.Duration, log *slog.Logger) error {
	sc := cfg.Slack
	store, err := openConfiguredStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	cards, err := bot.NewSQLCardStore(ctx, store)
	if err != nil {
		return err
	}
	src := newClusterSource(cfg, log)
	defer src.Close()
	src.seedFromHistory(ctx, store)

	metrics := bot.NewMetrics()
	opts := []slack.Option{slack.OptionHTTPClient(metrics.HTTPClient())}
	if sc.APIURL != "" {
		// slack-go appends the method to the base URL as is.
		opts = append(opts, slack.OptionAPIURL(strings.TrimRight(sc.APIURL, "/")+"/"))
	}
	if sc.AppToken != "" {
		opts = append(opts, slack.OptionAppLevelToken(sc.AppToken.Reveal()))
	}
	api := slack.New(sc.BotToken.Reveal(), opts...)
	approvers, err := bot.NewApprovers(sc.Approvers, api, time.Minute, nil)
	if err != nil {
		return err
	}
	engine := runbook.NewEngine(runbook.EngineConfig{Store: store, Clusters: src, Approvers: approvers,
		TwoPersonRule: sc.TwoPersonRule, Logger: log.With("component", "engine")})
	if err := engine.Resume(ctx); err != nil {
		return fmt.Errorf("resume open runs: %w", err)
	}
	b, err := bot.New(bot.Options{Engine: engine, Clusters: src, API: api, Approvers: approvers, Cards: cards,
		Channel: sc.Channel, Logger: log.With("component", "bot"), Metrics: metrics})
	if err != nil {
		return err
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case sig := <-env.Interrupts:
			log.Info("signal: draining", "signal", sig.String())
			cancel()
		case <-sctx.Done():
		}
	}()

	var loops []func(context.Context) error
	windowsLoop, err := startWindows(sctx, cfg, store, b, log)
	if err != nil {
		return err
	}
	loops = append(loops, windowsLoop)
	deps := &serveDeps{cfg: cfg, store: store, engine: engine, bot: b, log: log}
	for _, hook := range serveHooks {
		loop, err := hook(sctx, deps)
		if err != nil {
			return err
		}
		if loop != nil {
			loops = append(loops, loop)
		}
	}
	var wg sync.WaitGroup
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(sctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("background loop stopped", "err", err)
			}
		}()
	}

	scfg := bot.ServeConfig{
		Mode: string(sc.Mode), Listen: sc.Listen, DrainTimeout: drain,
		StoreReady: func(ctx context.Context) error { return store.DB().PingContext(ctx) },
	}
	switch sc.Mode {
	case config.SlackHTTP:
		scfg.SigningSecret = []byte(sc.SigningSecret.Reveal())
	default:
		scfg.Socket = socketmode.New(api, socketmode.OptionLog(slog.NewLogLogger(log.With("component", "socketmode").Handler(), slog.LevelDebug)))
	}
	err = b.Serve(sctx, scfg)
	cancel()
	wg.Wait()
	return err
}
