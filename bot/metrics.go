package bot

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// Metrics are the bot's Prometheus metrics, on their own registry so that
// several bots (in tests) do not collide.
type Metrics struct {
	Registry *prometheus.Registry

	runs          *prometheus.CounterVec
	phaseSeconds  *prometheus.HistogramVec
	stepSeconds   *prometheus.HistogramVec
	stepFailures  *prometheus.CounterVec
	slackCalls    *prometheus.CounterVec
	slackLimited  *prometheus.CounterVec
	ackSeconds    *prometheus.HistogramVec
	rejected      *prometheus.CounterVec
	droppedOutput prometheus.Counter
}

// NewMetrics registers the bot's metrics (and the Go runtime's) on a new
// registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sdbmaint_runs_finished_total", Help: "Maintenance runs finished, by outcome.",
		}, []string{"outcome"}),
		phaseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sdbmaint_phase_duration_seconds", Help: "How long each phase ran, from approval to end.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"phase"}),
		stepSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sdbmaint_step_duration_seconds", Help: "How long each step ran.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
		}, []string{"phase"}),
		stepFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sdbmaint_step_failures_total", Help: "Steps that failed or were interrupted.",
		}, []string{"phase"}),
		slackCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sdbmaint_slack_api_calls_total", Help: "Slack Web API calls, by method and HTTP status.",
		}, []string{"method", "code"}),
		slackLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sdbmaint_slack_rate_limited_total", Help: "Slack Web API calls answered 429, by method.",
		}, []string{"method"}),
		ackSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sdbmaint_slack_ack_seconds", Help: "Time from receiving a Slack request to acknowledging it.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 3},
		}, []string{"kind", "transport"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sdbmaint_slack_requests_rejected_total", Help: "HTTP requests refused before any work, by reason.",
		}, []string{"reason"}),
		droppedOutput: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sdbmaint_slack_posts_failed_total", Help: "Thread posts or card updates given up after non-retryable errors.",
		}),
	}
	m.Registry.MustRegister(m.runs, m.phaseSeconds, m.stepSeconds, m.stepFailures, m.slackCalls,
		m.slackLimited, m.ackSeconds, m.rejected, m.droppedOutput,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

func (m *Metrics) observeAck(kind, transport string, d time.Duration) {
	m.ackSeconds.WithLabelValues(kind, transport).Observe(d.Seconds())
}

// observeEvent turns engine events into run, phase and step metrics.
func (m *Metrics) observeEvent(ev runbook.Event) {
	switch ev.Kind {
	case runbook.EventRunFinished:
		if ev.Run != nil {
			m.runs.WithLabelValues(string(ev.Run.Status)).Inc()
		}
	case runbook.EventPhaseFinished:
		if ev.Run == nil {
			return
		}
		if p := ev.Run.Phase(ev.Phase); p != nil && !p.StartedAt.IsZero() && !p.EndedAt.IsZero() {
			m.phaseSeconds.WithLabelValues(string(p.Name)).Observe(p.EndedAt.Sub(p.StartedAt).Seconds())
		}
	case runbook.EventStepFinished:
		s := ev.Step
		if s == nil {
			return
		}
		if !s.StartedAt.IsZero() && !s.EndedAt.IsZero() {
			m.stepSeconds.WithLabelValues(string(s.Phase)).Observe(s.EndedAt.Sub(s.StartedAt).Seconds())
		}
		if s.Status == runbook.StepFailed || s.Status == runbook.StepInterrupted {
			m.stepFailures.WithLabelValues(string(s.Phase)).Inc()
		}
	}
}

// countingTransport counts Slack calls and 429s as they go out.
type countingTransport struct {
	next http.RoundTripper
	m    *Metrics
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	method := apiMethod(r.URL.Path)
	code := "error"
	if err == nil {
		code = http.StatusText(resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			t.m.slackLimited.WithLabelValues(method).Inc()
		}
	}
	t.m.slackCalls.WithLabelValues(method, code).Inc()
	return resp, err
}

// apiMethod names a Slack call for metrics: the Web API method
// ("chat.update"), or "webhook" for response_url and upload URLs, so labels
// stay few.
func apiMethod(path string) string {
	last := path[strings.LastIndexByte(path, '/')+1:]
	if strings.Count(last, ".") >= 1 && len(last) < 60 {
		return last
	}
	return "webhook"
}

// HTTPClient returns an HTTP client for slack-go that counts calls into m.
// Its timeout bounds each Web API call, so a hung Slack cannot hold work
// forever.
func (m *Metrics) HTTPClient() *http.Client {
	return &http.Client{Transport: countingTransport{next: http.DefaultTransport, m: m}, Timeout: 30 * time.Second}
}
