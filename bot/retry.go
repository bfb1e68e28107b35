package bot

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/slack-go/slack"
)

// maxRateLimitWaits bounds how often one call waits out a 429 before the
// caller hears about it. The outbox retries its own posts without a bound.
const maxRateLimitWaits = 20

// withRetry calls f until it succeeds, waiting out 429s for their
// Retry-After and retrying transient failures (network errors, 5xx) a few
// times with backoff. Slack's own refusals ({"ok":false}) are not retried.
func withRetry(ctx context.Context, clock Clock, f func() error) error {
	transient := 0
	limited := 0
	for {
		err := f()
		if err == nil {
			return nil
		}
		wait, retry := retryAfter(err, transient)
		if !retry {
			return err
		}
		if isRateLimited(err) {
			limited++
			if limited > maxRateLimitWaits {
				return err
			}
		} else {
			transient++
			if transient > 3 {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-clock.After(wait):
		}
	}
}

func isRateLimited(err error) bool {
	var rl *slack.RateLimitedError
	return errors.As(err, &rl)
}

// retryAfter says whether err is worth retrying and after how long.
func retryAfter(err error, attempt int) (time.Duration, bool) {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		if rl.RetryAfter <= 0 {
			return time.Second, true
		}
		return rl.RetryAfter, true
	}
	backoff := time.Duration(250<<min(attempt, 5)) * time.Millisecond
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		if sc.Code == 429 || sc.Code >= 500 {
			return backoff, true
		}
		return 0, false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return backoff, true
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		// {"ok":false,"error":"ratelimited"} in a 200 is a rate limit too.
		if se.Err == "ratelimited" {
			return time.Second, true
		}
		return 0, false
	}
	return 0, false
}
