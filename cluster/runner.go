package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// Runner runs one command line on the toolbox host. out, if not nil, gets
// each line of stdout ("stdout") and stderr ("stderr") as it arrives,
// without its newline, from one goroutine at a time. A command that exits
// non-zero returns an *ExitError; a host that cannot be reached or whose
// session drops returns an Unavailable error.
type Runner interface {
	Run(ctx context.Context, cmd string, out func(stream, line string)) error
}

// ExitError is a command that ran and exited non-zero.
type ExitError struct {
	Cmd    string
	Code   int
	Output string // stdout and stderr as they arrived, the last maxOutput bytes
	// Stderr is the last line the command wrote to stderr: usually the
	// reason it failed.
	Stderr string
}

func (e *ExitError) Error() string {
	last := e.Stderr
	if last == "" {
		last = lastLine(e.Output)
	}
	if last == "" {
		return fmt.Sprintf("%s: exit status %d", e.Cmd, e.Code)
	}
	return fmt.Sprintf("%s: exit status %d: %s", e.Cmd, e.Code, last)
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// ErrSessionDropped is the cause of the error a Runner returns when the
// command's session ended without an exit status (the connection or the
// session was cut): whether the command did its work is unknown.
var ErrSessionDropped = errors.New("session dropped before the command exited")

// maxOutput bounds the output an ExitError keeps.
const maxOutput = 64 << 10

// lineSink serialises the lines of two streams into one callback and keeps
// the tail of the output for errors.
type lineSink struct {
	mu         sync.Mutex
	out        func(stream, line string)
	buf        strings.Builder
	lastStderr string
}

func newLineSink(out func(stream, line string)) *lineSink {
	return &lineSink{out: out}
}

// writer returns an io.Writer that cuts what is written into lines and
// hands each complete line to the sink as stream. Call flush after the
// last write for a final line without a newline.
func (s *lineSink) writer(stream string) *lineWriter {
	return &lineWriter{sink: s, stream: stream}
}

func (s *lineSink) line(stream, line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.WriteString(line)
	s.buf.WriteByte('\n')
	if stream == "stderr" && strings.TrimSpace(line) != "" {
		s.lastStderr = line
	}
	if s.buf.Len() > 2*maxOutput {
		tail := s.buf.String()[s.buf.Len()-maxOutput:]
		s.buf.Reset()
		s.buf.WriteString(tail)
	}
	if s.out != nil {
		s.out(stream, line)
	}
}

// exitError is the *ExitError for cmd that exited with code.
func (s *lineSink) exitError(cmd string, code int) *ExitError {
	out := s.output()
	s.mu.Lock()
	defer s.mu.Unlock()
	return &ExitError{Cmd: cmd, Code: code, Output: out, Stderr: s.lastStderr}
}

func (s *lineSink) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.buf.String()
	if len(out) > maxOutput {
		out = out[len(out)-maxOutput:]
	}
	return out
}

// lineWriter is one stream of a lineSink.
type lineWriter struct {
	sink    *lineSink
	stream  string
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) >= maxOutput {
				// A line this long is cut rather than held without bound.
				w.flush()
			}
			break
		}
		w.partial = append(w.partial, p[:i]...)
		w.flush()
		p = p[i+1:]
	}
	return n, nil
}

// flush hands a pending partial line to the sink.
func (w *lineWriter) flush() {
	if len(w.partial) == 0 {
		return
	}
	line := strings.TrimSuffix(string(w.partial), "\r")
	w.partial = w.partial[:0]
	w.sink.line(w.stream, line)
}

// LocalRunner runs commands on this host through /bin/sh -c, for a bot
// that runs on the toolbox host itself (toolbox: {local: true}).
type LocalRunner struct {
	// CommandTimeout bounds each command; 0 leaves it to the context.
	CommandTimeout time.Duration
	Logger         *slog.Logger
}

var _ Runner = (*LocalRunner)(nil)

// Run runs cmd with /bin/sh -c. Canceling ctx kills the command and every
// process it started.
func (r *LocalRunner) Run(ctx context.Context, cmd string, out func(stream, line string)) error {
	if r.CommandTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.CommandTimeout)
		defer cancel()
	}
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	setProcessGroup(c)
	// Grandchildren that keep the pipes open must not keep Run waiting
	// after the shell is gone.
	c.WaitDelay = time.Second
	sink := newLineSink(out)
	stdout, stderr := sink.writer("stdout"), sink.writer("stderr")
	c.Stdout, c.Stderr = stdout, stderr
	start := time.Now()
	if err := c.Start(); err != nil {
		return runbook.Wrap(runbook.Unavailable, err, "run %q locally: cannot start /bin/sh", cmd)
	}
	// Wait returns once the shell exited and its output is copied.
	err := c.Wait()
	stdout.flush()
	stderr.flush()
	logger(r.Logger).Debug("local command", "cmd", cmd, "took", time.Since(start), "err", err)
	if ctx.Err() != nil {
		return runbook.Wrap(runbook.Unavailable, ctx.Err(), "run %q locally: %s", cmd, ctxReason(ctx, r.CommandTimeout))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return sink.exitError(cmd, ee.ExitCode())
	}
	if err != nil {
		return runbook.Wrap(runbook.Unavailable, err, "run %q locally", cmd)
	}
	return nil
}

// ctxReason says why ctx ended, for messages.
func ctxReason(ctx context.Context, timeout time.Duration) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if timeout > 0 {
			return "no result within " + timeout.String()
		}
		return "timed out"
	}
	return "canceled"
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// detach stops delivering lines to the callback: a canceled command's
// late output must not reach a caller that has moved on.
func (s *lineSink) detach() {
	s.mu.Lock()
	s.out = nil
	s.mu.Unlock()
}
