package runbook

import (
	"errors"
	"fmt"
)

// Error kinds: the one vocabulary every layer uses for errors that may be
// shown to a person. Anything that is not an *Error is internal.
const (
	Invalid      = "invalid"      // the request is malformed or names something unknown
	Unauthorized = "unauthorized" // the person may not do this
	Conflict     = "conflict"     // the state changed underneath the request
	Unavailable  = "unavailable"  // an outside system (cluster, host, Slack) did not answer
	Internal     = "internal"     // a bug or an unexpected failure; details only in logs
)

// Error is an error whose Message is safe to show in Slack or a terminal.
type Error struct {
	Kind    string
	Message string
	Err     error // the cause, for logs; never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind with a formatted message.
func Errorf(kind, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind with message that keeps err as its cause.
func Wrap(kind string, err error, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorKind returns the kind of err, Internal for errors that are not *Error
// and "" for nil.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// ErrorMessage returns the part of err that is safe to show a person.
// Internal errors show a generic apology; the caller logs the full error.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal {
		return e.Message
	}
	return "internal error; see the sdbmaint log"
}
