// Package bot is sdbmaint's Slack front end: the /sdbmaint slash command,
// the run card with its approval buttons, threaded step output under Slack's
// rate limits, and the two ways Slack reaches the bot (Socket Mode and
// signed HTTP requests).
//
// The layer is thin: verify, acknowledge, parse, call the runbook engine,
// render. Both transports feed one handler core that turns a slash command
// or an interaction into an immediate acknowledgement plus work that runs
// afterwards on goroutines a drainer tracks. The engine decides everything
// (who may approve, whether a click is stale); refusals come back as data
// and are shown privately to the person who clicked.
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// Clock is the time source for the bot's timers (post pacing, card
// updates, Retry-After waits, dedupe TTLs). runbook.Clock satisfies it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options configure a Bot. cmd/sdbmaint builds them from the config.
type Options struct {
	Engine   *runbook.Engine
	Clusters runbook.ClusterSource // cluster names for the parser; adapters for a preflight without a run
	// API is the Web API client: slack.New(botToken, slack.OptionAPIURL(...),
	// slack.OptionAppLevelToken(appToken), slack.OptionHTTPClient(Metrics.HTTPClient())).
	API       *slack.Client
	Approvers *Approvers // who may approve, for refusals; the engine enforces it
	Cards     CardStore  // where each run's card is, across restarts
	Channel   string     // the channel for run cards; "" = the channel the run was started from
	Clock     Clock      // nil = the real clock
	Logger    *slog.Logger
	Metrics   *Metrics // nil = NewMetrics()
	// HTTPClient posts to response_url; nil = Metrics.HTTPClient().
	HTTPClient *http.Client

	// PostInterval is the least time between two posts in one channel
	// (Slack allows about one per second); 0 = 1s.
	PostInterval time.Duration
	// CardInterval is the least time between two updates of one card
	// between phase boundaries; 0 = 3s.
	CardInterval time.Duration
	// DownRefresh is how often a card is redrawn while the cluster is down,
	// so its downtime clock moves; 0 = 1 min.
	DownRefresh time.Duration
	// DedupeTTL is how long envelope and event IDs are remembered; 0 = 15 min.
	DedupeTTL time.Duration
}

// VerbFunc carries out a verb added with AddVerb. It runs after the slash
// command was acknowledged. The returned message goes to the person who
// typed the command (or to the channel when InChannel is set); an error is
// shown to them with runbook.ErrorMessage.
type VerbFunc func(ctx context.Context, inv Invocation) (Reply, error)

// Invocation is one use of a slash command, parsed.
type Invocation struct {
	Command   Command
	User      string // Slack user ID
	Channel   string
	TriggerID string
}

// Reply is what a VerbFunc answers.
type Reply struct {
	Message   Message
	InChannel bool // visible to the channel rather than only to the caller
}

// ActionFunc handles a click on an element whose action_id starts with the
// prefix it was registered for (see AddAction). It runs after the click
// was acknowledged.
type ActionFunc func(ctx context.Context, click Click) error

// Click is one button click, as AddAction handlers see it.
type Click struct {
	ActionID  string
	Value     string
	User      string
	Channel   string
	MessageTS string
	TriggerID string
}

// Bot is the Slack bot. Create it with New, add verbs and actions, then
// Serve.
type Bot struct {
	opts    Options
	engine  *runbook.Engine
	api     *slack.Client
	log     *slog.Logger
	clock   Clock
	metrics *Metrics
	hc      *http.Client

	verbs   []Verb
	runVerb map[string]VerbFunc
	actions map[string]ActionFunc // by action_id prefix

	work    *drainer
	dedupe  *dedupe
	board   *board
	ready   atomic.Bool // Slack connected
	closing atomic.Bool // draining: new requests get a "restarting" answer

	teamURL string // from auth.test, for card permalinks
	mu      sync.Mutex
}

// New returns a bot; it does nothing until Serve.
func New(opts Options) (*Bot, error) {
	if opts.Engine == nil || opts.API == nil || opts.Clusters == nil {
		return nil, errors.New("bot: Engine, API and Clusters are required")
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = opts.Metrics.HTTPClient()
	}
	if opts.PostInterval <= 0 {
		opts.PostInterval = time.Second
	}
	if opts.CardInterval <= 0 {
		opts.CardInterval = 3 * time.Second
	}
	if opts.DownRefresh <= 0 {
		opts.DownRefresh = time.Minute
	}
	if opts.DedupeTTL <= 0 {
		opts.DedupeTTL = 15 * time.Minute
	}
	b := &Bot{
		opts:    opts,
		engine:  opts.Engine,
		api:     opts.API,
		log:     opts.Logger,
		clock:   opts.Clock,
		metrics: opts.Metrics,
		hc:      opts.HTTPClient,
		verbs:   BuiltinVerbs(),
		runVerb: map[string]VerbFunc{},
		actions: map[string]ActionFunc{},
		work:    newDrainer(context.WithoutCancel(context.Background())),
		dedupe:  newDedupe(opts.DedupeTTL, opts.Clock.Now),
	}
	b.board = newBoard(b)
	return b, nil
}

// AddVerb adds a /sdbmaint verb (schedule, windows, verify...). Call it
// before Serve. A verb's name must be new.
func (b *Bot) AddVerb(v Verb, run VerbFunc) error {
	v.Name = strings.ToLower(v.Name)
	if v.Name == "" || strings.ContainsAny(v.Name, " \t\n") || run == nil {
		return fmt.Errorf("bot: verb %q needs a one-word name and a function", v.Name)
	}
	for _, have := range b.verbs {
		if have.Name == v.Name {
			return fmt.Errorf("bot: verb %q exists already", v.Name)
		}
	}
	b.verbs = append(b.verbs, v)
	b.runVerb[v.Name] = run
	return nil
}

// AddAction routes clicks whose action_id starts with prefix to fn (for
// example "sdbmaint:window-skip"). Call it before Serve. The bot's own
// action IDs cannot be taken.
func (b *Bot) AddAction(prefix string, fn ActionFunc) error {
	if prefix == "" || fn == nil {
		return errors.New("bot: AddAction needs a prefix and a function")
	}
	if _, own := gateActions[prefix]; own || prefix == actionID(actStartMaintenance) {
		return fmt.Errorf("bot: action %q belongs to the bot", prefix)
	}
	b.actions[prefix] = fn
	return nil
}

// MayApprove tells extension verbs whether user is an approver (schedule
// and verify are for approvers only).
func (b *Bot) MayApprove(ctx context.Context, cluster, user string) (bool, error) {
	if b.opts.Approvers == nil {
		return false, nil
	}
	return b.opts.Approvers.MayApprove(ctx, cluster, user)
}

// Post puts a message into a channel through the bot's rate-limited,
// ordered outbox (for announcements by other packages). It returns once the
// message is queued.
func (b *Bot) Post(channel string, m Message) {
	if channel == "" {
		channel = b.opts.Channel
	}
	b.board.postMessage(channel, m)
}

// Verbs returns the verbs the parser knows, built-in and added.
func (b *Bot) Verbs() []Verb { return append([]Verb(nil), b.verbs...) }

// Ready reports whether the bot is connected to Slack and taking requests.
func (b *Bot) Ready() bool { return b.ready.Load() && !b.closing.Load() }

// Metrics returns the bot's metrics.
func (b *Bot) Metrics() *Metrics { return b.metrics }

// ack is the core's answer to one Slack request: the body to acknowledge
// with (nil for an empty 200), and work to run after the acknowledgement.
type ack struct {
	body  any
	work  func(ctx context.Context)
	after func() // runs once the acknowledgement is out (logging)
}

// ephemeral is an acknowledgement body that only the caller sees.
func ephemeral(m Message) map[string]any {
	body := map[string]any{"response_type": slack.ResponseTypeEphemeral, "text": m.Text}
	if len(m.Blocks) > 0 {
		body["blocks"] = m.Blocks
	}
	return body
}

var restarting = textMessage("sdbmaint is restarting and not taking new requests; try again in a minute.")

// logFor returns the logger with the fields of a run.
func (b *Bot) logFor(r *runbook.Run) *slog.Logger {
	if r == nil {
		return b.log
	}
	return b.log.With("run", r.ID, "cluster", r.Cluster, "phase", string(r.Current))
}

// showError turns an error into words for the person who caused it. Errors
// that are not safe to show are logged in full with a reference.
func (b *Bot) showError(err error, what string, attrs ...any) string {
	msg := runbook.ErrorMessage(err)
	if runbook.ErrorKind(err) == runbook.Internal {
		ref := fmt.Sprintf("%x", b.clock.Now().UnixNano()&0xffffff)
		b.log.Error(what, append(attrs, "err", err, "ref", ref)...)
		return fmt.Sprintf("Sorry, %s failed (reference `%s` in the sdbmaint log).", what, ref)
	}
	b.log.Info(what+" refused", append(attrs, "err", err)...)
	return escapeMrkdwn(msg)
}
