package verify

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// Runner runs one command line on the toolbox host; out gets each stdout and
// stderr line as it arrives (stream is "stdout" or "stderr"), and a non-zero
// exit is an error. cluster.SSHRunner and cluster.LocalRunner satisfy it.
type Runner interface {
	Run(ctx context.Context, cmd string, out func(stream, line string)) error
}

// MaxBundleSize is the largest bundle read from the toolbox host. A real
// Sigstore bundle is a few kilobytes; anything near this is not one.
const MaxBundleSize = 1 << 20

// maxPathLen is PATH_MAX on Linux.
const maxPathLen = 4096

// missingMarker is what the bundle-reading script prints on stderr when the
// bundle does not exist, so "missing" does not depend on the host's locale
// or on how the runner reports exit codes.
const (
	missingMarker    = "sdbmaint-verify: no such file"
	unreadableMarker = "sdbmaint-verify: not a readable regular file"
)

// checkPath accepts an absolute path on the toolbox host that can be passed
// to a shell inside single quotes and printed to an operator: no NUL, no
// newline, no other control characters.
func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is not an absolute path on the toolbox host", p)
	case len(p) > maxPathLen:
		return fmt.Errorf("path is longer than %d bytes", maxPathLen)
	case !utf8.ValidString(p):
		return fmt.Errorf("%q is not valid UTF-8", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q contains a control character", p)
		}
	}
	return nil
}

// shellQuote quotes s for a POSIX shell: inside single quotes nothing is
// special except the single quote itself, which is closed, escaped and
// reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// hashCommand is the command that hashes path on the toolbox host.
func hashCommand(path string) string {
	return "LC_ALL=C sha256sum -- " + shellQuote(path)
}

// bundleCommand prints the first MaxBundleSize+1 bytes of path, base64
// encoded: the runner carries lines, and a bundle is one long JSON line that
// a line reader may cut or trim; base64 lines are short and survive. The
// extra byte tells "too large" from "exactly at the limit".
func bundleCommand(path string) string {
	return fmt.Sprintf(`f=%s; if [ ! -e "$f" ]; then echo '%s' >&2; exit 3; fi; `+
		`if [ ! -f "$f" ] || [ ! -r "$f" ]; then echo '%s' >&2; exit 4; fi; `+
		`head -c %d -- "$f" | base64`,
		shellQuote(path), missingMarker, unreadableMarker, MaxBundleSize+1)
}

// capture collects a command's output; the runner may call it from the
// goroutines that read stdout and stderr.
type capture struct {
	mu       sync.Mutex
	stdout   []string
	stderr   []string
	outBytes int
	errBytes int
	limit    int // bytes of stdout kept; more marks overflow
	overflow bool
}

const maxStderr = 2048

func (c *capture) add(stream, line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stream == "stderr" {
		if c.errBytes < maxStderr {
			c.stderr = append(c.stderr, line)
			c.errBytes += len(line) + 1
		}
		return
	}
	c.outBytes += len(line) + 1
	if c.outBytes > c.limit {
		c.overflow = true
		return
	}
	c.stdout = append(c.stdout, line)
}

func (c *capture) stderrText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := strings.TrimSpace(strings.Join(c.stderr, "; "))
	if len(s) > maxStderr {
		s = s[:maxStderr] + "..."
	}
	return s
}

func (c *capture) hasStderr(marker string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.stderr {
		if strings.TrimSpace(l) == marker {
			return true
		}
	}
	return false
}

// hostError is a failure to run or read something on the toolbox host.
type hostError struct {
	what   string // "hash", "read bundle"
	path   string
	stderr string
	err    error
}

func (e *hostError) Error() string {
	// What the host said is the operator's answer; the runner's own error
	// (exit status, the command line) only when the host said nothing.
	msg := fmt.Sprintf("%s %s on the toolbox host", e.what, e.path)
	switch {
	case e.stderr != "":
		msg += ": " + e.stderr
	case e.err != nil:
		msg += ": " + e.err.Error()
	}
	return msg
}

func (e *hostError) Unwrap() error { return e.err }

// errMissingBundle says the bundle file does not exist on the toolbox host.
var errMissingBundle = errors.New("bundle does not exist")

// hashOnHost returns the lower-case hex SHA-256 of path, computed on the
// toolbox host so the package never travels.
func hashOnHost(ctx context.Context, r Runner, path string) (string, error) {
	c := &capture{limit: 4 * maxPathLen}
	err := r.Run(ctx, hashCommand(path), c.add)
	if err != nil {
		return "", &hostError{what: "could not hash", path: path, stderr: c.stderrText(), err: err}
	}
	c.mu.Lock()
	lines, overflow := append([]string(nil), c.stdout...), c.overflow
	c.mu.Unlock()
	if overflow || len(lines) != 1 {
		return "", &hostError{what: "could not hash", path: path,
			err: fmt.Errorf("sha256sum printed %d lines, want exactly 1", len(lines))}
	}
	sum, err := parseSHA256Sum(lines[0], path)
	if err != nil {
		return "", &hostError{what: "could not hash", path: path, err: err}
	}
	return sum, nil
}

// parseSHA256Sum reads one line of `sha256sum -- path` output strictly:
// 64 lower-case hex digits, two separator characters (" " then " " or "*"),
// and the very path asked for. GNU sha256sum prefixes a backslash and escapes
// backslashes when a name holds one (newlines cannot occur: checkPath).
func parseSHA256Sum(line, path string) (string, error) {
	escaped := strings.HasPrefix(line, `\`)
	if escaped {
		line = line[1:]
	}
	if len(line) < 66 {
		return "", fmt.Errorf("unexpected sha256sum output %q", truncate(line, 100))
	}
	sum := line[:64]
	for i := 0; i < len(sum); i++ {
		ch := sum[i]
		if (ch < '0' || ch > '9') && (ch < 'a' || ch > 'f') {
			return "", fmt.Errorf("unexpected sha256sum output %q: not a hex digest", truncate(line, 100))
		}
	}
	if line[64] != ' ' || (line[65] != ' ' && line[65] != '*') {
		return "", fmt.Errorf("unexpected sha256sum output %q", truncate(line, 100))
	}
	want := path
	if escaped {
		want = strings.ReplaceAll(path, `\`, `\\`)
	}
	if name := line[66:]; name != want {
		return "", fmt.Errorf("sha256sum reported file %q, not %q", truncate(name, 200), path)
	}
	return sum, nil
}

// readBundleOnHost returns the bundle's bytes (at most MaxBundleSize+1, so
// an oversized one can be told apart), or errMissingBundle.
func readBundleOnHost(ctx context.Context, r Runner, path string) ([]byte, error) {
	// base64 grows 4/3 plus a newline per 76 characters.
	c := &capture{limit: (MaxBundleSize+1)*4/3 + (MaxBundleSize+1)/57 + 1024}
	err := r.Run(ctx, bundleCommand(path), c.add)
	switch {
	case c.hasStderr(missingMarker):
		return nil, errMissingBundle
	case c.hasStderr(unreadableMarker):
		return nil, &hostError{what: "could not read bundle", path: path, stderr: "not a readable regular file", err: err}
	case err != nil:
		return nil, &hostError{what: "could not read bundle", path: path, stderr: c.stderrText(), err: err}
	}
	c.mu.Lock()
	joined, overflow := strings.Join(c.stdout, ""), c.overflow
	c.mu.Unlock()
	if overflow {
		return nil, &hostError{what: "could not read bundle", path: path, err: errors.New("more output than a bundle can be")}
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(joined))
	if err != nil {
		return nil, &hostError{what: "could not read bundle", path: path, stderr: c.stderrText(),
			err: fmt.Errorf("decode base64 from the host: %w", err)}
	}
	return raw, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
