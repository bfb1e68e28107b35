package bot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Request signing (HTTP mode). Slack signs "v0:TIMESTAMP:BODY" with the
// signing secret (HMAC-SHA256, hex, "v0=" prefix); a timestamp more than
// five minutes from now is a replay and is refused as well.
const (
	signatureHeader = "X-Slack-Signature"
	timestampHeader = "X-Slack-Request-Timestamp"
	maxClockSkew    = 5 * time.Minute
)

// Reasons verifySignature refuses a request. They go to logs and metrics,
// never to the client, which only ever sees 401.
var (
	errUnsigned = errors.New("request is not signed")
	errStale    = errors.New("request timestamp is more than 5 minutes away")
	errForged   = errors.New("request signature does not match")
)

// Sign returns the X-Slack-Signature value for body sent at ts. The bot
// uses it to check requests; tests and the local Slack stand-in use it to
// make them.
func Sign(secret []byte, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "v0:%d:", ts)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// verifySignature checks the headers of a request against its raw body.
func verifySignature(secret []byte, h http.Header, body []byte, now time.Time) error {
	sig, tsText := h.Get(signatureHeader), h.Get(timestampHeader)
	if sig == "" || tsText == "" {
		return errUnsigned
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return errUnsigned
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxClockSkew || d < -maxClockSkew {
		return errStale
	}
	want := Sign(secret, ts, body)
	// hmac.Equal compares in constant time, so the answer's timing tells an
	// attacker nothing about how much of a forged signature was right.
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return errForged
	}
	return nil
}
