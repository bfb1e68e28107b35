package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// SSHOptions says how to reach the toolbox host.
type SSHOptions struct {
	Addr           string // host:port; ":22" is added when the port is missing
	User           string
	KeyFile        string // unencrypted private key (OpenSSH or PEM format)
	KnownHostsFile string // the host's key must be listed here; nothing is ever added
	// DialTimeout bounds connecting, the key exchange and authentication
	// (default 10s).
	DialTimeout time.Duration
	// CommandTimeout bounds each command; 0 leaves it to the context.
	CommandTimeout time.Duration
	// MaxSessions is how many commands run at once over the one
	// connection; more wait for a free session. OpenSSH allows 10 per
	// connection by default (default 8).
	MaxSessions int
	Logger      *slog.Logger
}

// DefaultDialTimeout bounds connecting to the toolbox host.
const DefaultDialTimeout = 10 * time.Second

// SSHRunner runs commands on the toolbox host over SSH. It keeps one
// connection, opens a session per command and reconnects when the
// connection breaks. Host keys are checked against KnownHostsFile on every
// connect: an unknown or changed key is refused, never accepted. It is
// safe for concurrent use.
type SSHRunner struct {
	opts   SSHOptions
	auth   ssh.Signer
	log    *slog.Logger
	dialMu chan struct{} // held while dialing; a channel so waiting honours ctx
	slots  chan struct{} // one per running session

	mu     sync.Mutex
	client *ssh.Client
	closed bool
}

var _ Runner = (*SSHRunner)(nil)

// NewSSHRunner reads the key and known_hosts files and returns a runner.
// It does not connect; the first command does. Unreadable or malformed
// files are an Invalid error that names the file.
func NewSSHRunner(opts SSHOptions) (*SSHRunner, error) {
	if opts.Addr == "" {
		return nil, runbook.Errorf(runbook.Invalid, "ssh address is empty")
	}
	if _, _, err := net.SplitHostPort(opts.Addr); err != nil {
		opts.Addr = net.JoinHostPort(opts.Addr, "22")
	}
	if opts.User == "" {
		return nil, runbook.Errorf(runbook.Invalid, "ssh user for %s is empty", opts.Addr)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 8
	}
	pem, err := os.ReadFile(opts.KeyFile)
	if err != nil {
		return nil, runbook.Wrap(runbook.Invalid, err, "ssh key file %q: cannot read it", opts.KeyFile)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		var pass *ssh.PassphraseMissingError
		if errors.As(err, &pass) {
			return nil, runbook.Wrap(runbook.Invalid, err, "ssh key file %q is protected by a passphrase; sdbmaint needs a key without one", opts.KeyFile)
		}
		return nil, runbook.Wrap(runbook.Invalid, err, "ssh key file %q: not a private key", opts.KeyFile)
	}
	if opts.KnownHostsFile == "" {
		return nil, runbook.Errorf(runbook.Invalid, "ssh known_hosts file for %s is not set; host keys are always verified", opts.Addr)
	}
	if _, err := knownhosts.New(opts.KnownHostsFile); err != nil {
		return nil, runbook.Wrap(runbook.Invalid, err, "ssh known_hosts file %q: %v", opts.KnownHostsFile, err)
	}
	return &SSHRunner{
		opts:   opts,
		auth:   signer,
		log:    logger(opts.Logger).With("ssh", opts.Addr),
		dialMu: make(chan struct{}, 1),
		slots:  make(chan struct{}, opts.MaxSessions),
	}, nil
}

// Close closes the connection; later commands fail.
func (r *SSHRunner) Close() error {
	r.mu.Lock()
	c := r.client
	r.client, r.closed = nil, true
	r.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}

// Run runs cmd on the toolbox host. Canceling ctx (or CommandTimeout)
// closes the session; the error then says the outcome is unknown. A
// session that ends without an exit status wraps ErrSessionDropped.
func (r *SSHRunner) Run(ctx context.Context, cmd string, out func(stream, line string)) error {
	if r.opts.CommandTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.CommandTimeout)
		defer cancel()
	}
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-ctx.Done():
		return r.ctxErr(ctx, cmd)
	}
	sess, err := r.session(ctx)
	if err != nil {
		return err
	}
	defer sess.Close()

	sink := newLineSink(out)
	stdout, stderr := sink.writer("stdout"), sink.writer("stderr")
	sess.Stdout, sess.Stderr = stdout, stderr
	start := time.Now()
	if err := sess.Start(cmd); err != nil {
		return runbook.Wrap(runbook.Unavailable, err, "ssh %s: cannot start %q", r.opts.Addr, cmd)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL) // best effort: many servers ignore signals
		_ = sess.Close()
		// Output that still arrives belongs to nobody.
		sink.detach()
		r.log.Warn("ssh command canceled", "cmd", cmd, "after", time.Since(start))
		return r.ctxErr(ctx, cmd)
	}
	stdout.flush()
	stderr.flush()
	r.log.Debug("ssh command", "cmd", cmd, "took", time.Since(start), "err", err)

	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit):
		return sink.exitError(cmd, exit.ExitStatus())
	case errors.As(err, &missing):
		return runbook.Wrap(runbook.Unavailable, ErrSessionDropped, "ssh %s: %q: the session dropped before the command exited; whether it did its work is unknown", r.opts.Addr, cmd)
	default:
		// The connection itself broke (io.EOF and the like).
		r.forget(nil)
		return runbook.Wrap(runbook.Unavailable, fmt.Errorf("%w: %v", ErrSessionDropped, err), "ssh %s: %q: the connection dropped before the command exited; whether it did its work is unknown", r.opts.Addr, cmd)
	}
}

func (r *SSHRunner) ctxErr(ctx context.Context, cmd string) error {
	return runbook.Wrap(runbook.Unavailable, ctx.Err(), "ssh %s: %q: %s; whether it did its work is unknown", r.opts.Addr, cmd, ctxReason(ctx, r.opts.CommandTimeout))
}

// session opens a session on the current connection, dialing first if
// there is none and once more if the connection turns out to be dead.
func (r *SSHRunner) session(ctx context.Context) (*ssh.Session, error) {
	for attempt := 0; ; attempt++ {
		c, err := r.connect(ctx)
		if err != nil {
			return nil, err
		}
		sess, err := c.NewSession()
		if err == nil {
			return sess, nil
		}
		var refused *ssh.OpenChannelError
		if errors.As(err, &refused) || attempt > 0 {
			return nil, runbook.Wrap(runbook.Unavailable, err, "ssh %s: cannot open a session", r.opts.Addr)
		}
		r.log.Info("ssh connection broken; reconnecting", "err", err)
		r.forget(c)
	}
}

// forget drops c (or whatever connection is current, for nil) so that the
// next command dials again.
func (r *SSHRunner) forget(c *ssh.Client) {
	r.mu.Lock()
	if c == nil || r.client == c {
		c, r.client = r.client, nil
	}
	r.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// connect returns the current connection or dials a new one.
func (r *SSHRunner) connect(ctx context.Context) (*ssh.Client, error) {
	select {
	case r.dialMu <- struct{}{}:
		defer func() { <-r.dialMu }()
	case <-ctx.Done():
		return nil, r.ctxErr(ctx, "connect")
	}
	r.mu.Lock()
	c, closed := r.client, r.closed
	r.mu.Unlock()
	if closed {
		return nil, runbook.Errorf(runbook.Unavailable, "ssh %s: runner is closed", r.opts.Addr)
	}
	if c != nil {
		return c, nil
	}
	c, err := r.dial(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.client = c
	r.mu.Unlock()
	go func() {
		_ = c.Wait()
		r.forget(c)
	}()
	return c, nil
}

func (r *SSHRunner) dial(ctx context.Context) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.DialTimeout)
	defer cancel()
	start := time.Now()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", r.opts.Addr)
	if err != nil {
		return nil, runbook.Wrap(runbook.Unavailable, err, "ssh %s: cannot connect: %s", r.opts.Addr, netReason(ctx, r.opts.DialTimeout, err))
	}
	// The handshake has no context of its own: a deadline bounds it and
	// cancellation closes the connection under it.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	var hostErr error
	cfg := &ssh.ClientConfig{
		User: r.opts.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(r.auth)},
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			hostErr = r.checkHostKey(host, remote, key)
			return hostErr
		},
		HostKeyAlgorithms: r.hostKeyAlgorithms(),
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, r.opts.Addr, cfg)
	if !stop() {
		err = errors.Join(err, r.ctxErr(ctx, "connect"))
	}
	if err != nil {
		conn.Close()
		switch {
		case hostErr != nil:
			return nil, hostErr
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, runbook.Wrap(runbook.Unavailable, err, "ssh %s: the host refused key %s for user %q (check toolbox.ssh.user and key_file, and the user's authorized_keys on the host)", r.opts.Addr, r.opts.KeyFile, r.opts.User)
		default:
			return nil, runbook.Wrap(runbook.Unavailable, err, "ssh %s: handshake failed: %s", r.opts.Addr, netReason(ctx, r.opts.DialTimeout, err))
		}
	}
	_ = conn.SetDeadline(time.Time{})
	r.log.Info("ssh connected", "user", r.opts.User, "took", time.Since(start))
	return ssh.NewClient(sc, chans, reqs), nil
}

// checkHostKey accepts key only if known_hosts lists it for the host. The
// file is read on every connect so that a key added by the operator counts
// without a restart.
func (r *SSHRunner) checkHostKey(host string, remote net.Addr, key ssh.PublicKey) error {
	file := r.opts.KnownHostsFile
	cb, err := knownhosts.New(file)
	if err != nil {
		return runbook.Wrap(runbook.Unavailable, err, "ssh %s: cannot read known_hosts %q", r.opts.Addr, file)
	}
	err = cb(host, remote, key)
	if err == nil {
		return nil
	}
	name := knownhosts.Normalize(host)
	fp := ssh.FingerprintSHA256(key)
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.As(err, &keyErr) && len(keyErr.Want) == 0:
		return runbook.Wrap(runbook.Unavailable, err,
			"ssh: host key for %s is not in %s, so sdbmaint refuses to connect: verify that %s key %s is the host's (for example with ssh-keygen -lf on the host), then add it with %s >> %s",
			name, file, key.Type(), fp, keyscan(host), file)
	case errors.As(err, &keyErr):
		var lines []string
		for _, k := range keyErr.Want {
			lines = append(lines, fmt.Sprintf("%s:%d", k.Filename, k.Line))
		}
		return runbook.Wrap(runbook.Unavailable, err,
			"ssh: HOST KEY CHANGED for %s: it presented %s key %s, which does not match %s; this may be a man-in-the-middle attack, so sdbmaint refuses to connect. If the host was rebuilt, verify its new key and replace that line",
			name, key.Type(), fp, strings.Join(lines, ", "))
	case errors.As(err, &revoked):
		return runbook.Wrap(runbook.Unavailable, err, "ssh: host key %s for %s is marked @revoked in %s; refusing to connect", fp, name, file)
	}
	return runbook.Wrap(runbook.Unavailable, err, "ssh: host key for %s: %v", name, err)
}

// knownAlgorithms lists the key algorithms known_hosts has keys of for
// this host, so that the server presents a key we can check rather than
// another type that would look like a changed key. Nil when none are
// known: the callback then refuses the key with the unknown-key message.
func (r *SSHRunner) knownAlgorithms() []string {
	cb, err := knownhosts.New(r.opts.KnownHostsFile)
	if err != nil {
		return nil
	}
	probe := probeKey{}
	var keyErr *knownhosts.KeyError
	if err := cb(r.opts.Addr, &net.TCPAddr{}, probe); !errors.As(err, &keyErr) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range keyErr.Want {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

// hostKeyAlgorithms is knownAlgorithms followed by every other algorithm
// the client supports, as OpenSSH's client orders them: a host that still
// has a key of a known type presents that one, and a host that was rebuilt
// with only a key of another type presents it and is refused as a changed
// key, rather than failing the negotiation with a message that does not say
// why.
func (r *SSHRunner) hostKeyAlgorithms() []string {
	algos := r.knownAlgorithms()
	if algos == nil {
		return nil
	}
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		if !slices.Contains(algos, a) {
			algos = append(algos, a)
		}
	}
	return algos
}

func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// probeKey is a key no host has, used to ask knownhosts which keys it
// knows for a host.
type probeKey struct{}

func (probeKey) Type() string                        { return "sdbmaint-probe" }
func (probeKey) Marshal() []byte                     { return []byte("sdbmaint-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

// keyscan is the ssh-keyscan command line that fetches host's keys.
func keyscan(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port == "22" {
		return "ssh-keyscan " + strings.TrimSuffix(hostport, ":22")
	}
	return "ssh-keyscan -p " + port + " " + host
}

// netReason says in a few words why connecting failed.
func netReason(ctx context.Context, timeout time.Duration, err error) string {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return "cannot resolve host " + dns.Name
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "no answer within " + timeout.String()
	case errors.Is(ctx.Err(), context.Canceled):
		return "canceled"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused"
	}
	return err.Error()
}
