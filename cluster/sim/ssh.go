package sim

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// This file is the toolbox host: an SSH server with its own host key that
// accepts one generated client key and runs sdb-admin exec requests.

// SSHUser is the toolbox host's SSH user.
const SSHUser = "ops"

type sshServer struct {
	c         *Cluster
	ln        net.Listener
	config    *ssh.ServerConfig
	hostKey   ssh.Signer
	clientKey ed25519.PrivateKey
	clientPub ssh.PublicKey

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newSSHServer(c *Cluster) (*sshServer, error) {
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ssh host key: %w", err)
	}
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return nil, fmt.Errorf("ssh host key: %w", err)
	}
	clientPubRaw, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ssh client key: %w", err)
	}
	clientPub, err := ssh.NewPublicKey(clientPubRaw)
	if err != nil {
		return nil, fmt.Errorf("ssh client key: %w", err)
	}
	s := &sshServer{c: c, hostKey: hostKey, clientKey: clientPriv, clientPub: clientPub, conns: map[net.Conn]struct{}{}}
	want := clientPub.Marshal()
	s.config = &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if meta.User() == SSHUser && string(key.Marshal()) == string(want) {
				return &ssh.Permissions{}, nil
			}
			return nil, fmt.Errorf("public key of %s@%s not authorized", meta.User(), meta.RemoteAddr())
		},
		ServerVersion: "SSH-2.0-OpenSSH_9.6p1 sdbmaint-sim",
	}
	s.config.AddHostKey(hostKey)
	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ssh listen: %w", err)
	}
	c.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *sshServer) addr() string { return s.ln.Addr().String() }

func (s *sshServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for conn := range s.conns {
		conn.Close()
	}
	s.mu.Unlock()
}

func (s *sshServer) accept() {
	defer s.c.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[conn] = struct{}{}
		s.mu.Unlock()
		s.c.wg.Add(1)
		go s.serve(conn)
	}
}

func (s *sshServer) serve(conn net.Conn) {
	defer s.c.wg.Done()
	defer func() {
		conn.Close()
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
	}()
	select {
	case <-s.c.done:
		return
	default:
	}
	sconn, chans, reqs, err := ssh.NewServerConn(conn, s.config)
	if err != nil {
		s.c.logger.Debug("ssh handshake failed", "remote", conn.RemoteAddr().String(), "err", err)
		return
	}
	defer sconn.Close()
	s.c.wg.Add(1)
	go func() {
		defer s.c.wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		s.c.wg.Add(1)
		go s.session(sconn, ch, creqs)
	}
}

// session serves one channel: exec requests only.
func (s *sshServer) session(conn ssh.Conn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer s.c.wg.Done()
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "exec":
			var payload struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			s.c.wg.Add(1)
			go func() {
				defer s.c.wg.Done()
				ssh.DiscardRequests(reqs)
			}()
			w := &output{ch: ch, conn: conn}
			code := s.run(w, payload.Command)
			if w.dropped {
				return
			}
			status := struct{ Status uint32 }{uint32(code)}
			ch.SendRequest("exit-status", false, ssh.Marshal(&status))
			return
		case "env":
			req.Reply(true, nil)
		default: // shell, pty-req, subsystem: this host runs commands only
			req.Reply(false, nil)
		}
	}
}

// output writes a command's lines to the channel; with dropAfter set it
// drops the connection after that many writes, as a lost network does.
type output struct {
	ch        ssh.Channel
	conn      ssh.Conn
	dropAfter int // 0: never
	writes    int
	dropped   bool
}

func (w *output) write(stderr bool, s string) {
	if w.dropped {
		return
	}
	if stderr {
		w.ch.Stderr().Write([]byte(s))
	} else {
		w.ch.Write([]byte(s))
	}
	w.writes++
	if w.dropAfter > 0 && w.writes >= w.dropAfter {
		w.dropped = true
		w.conn.Close()
	}
}

func (w *output) out(format string, args ...any) { w.write(false, fmt.Sprintf(format, args...)+"\n") }
func (w *output) err(format string, args ...any) { w.write(true, fmt.Sprintf(format, args...)+"\n") }

// splitWords splits a command line like a POSIX shell does for simple
// words: single quotes, double quotes and backslashes.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated quoted string")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated quoted string")
			}
			inWord = true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.IndexByte(";&|<>$`", ch) >= 0:
			return nil, fmt.Errorf("shell syntax %q is not supported on this host", ch)
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// adminArgs is a parsed sdb-admin command line.
type adminArgs struct {
	sub  string
	ids  []string
	yes  bool
	json bool
}

func parseAdminArgs(args []string) (adminArgs, error) {
	var a adminArgs
	for i := 0; i < len(args); i++ {
		arg := args[i]
		name, value, hasValue := strings.Cut(arg, "=")
		switch {
		case arg == "--yes" || arg == "-y":
			a.yes = true
		case arg == "--json" || arg == "-j":
			a.json = true
		case arg == "--disable-colors" || arg == "--disable-spinner":
		case name == "--memsql-id":
			if !hasValue {
				if i+1 >= len(args) {
					return a, errors.New("flag needs an argument: --memsql-id")
				}
				i++
				value = args[i]
			}
			a.ids = append(a.ids, value)
		case strings.HasPrefix(arg, "-"):
			return a, fmt.Errorf("unknown flag: %s", arg)
		case a.sub == "":
			a.sub = arg
		default:
			return a, fmt.Errorf("unexpected argument %q", arg)
		}
	}
	return a, nil
}

// run executes one command line and returns its exit status.
func (s *sshServer) run(w *output, cmdline string) int {
	c := s.c
	words, perr := splitWords(cmdline)
	target := "toolbox"
	var args adminArgs
	var aerr error
	if perr == nil && len(words) > 0 {
		args, aerr = parseAdminArgs(words[1:])
		if len(args.ids) == 1 {
			if n := c.nodeByIDLocked(args.ids[0]); n != nil {
				target = n.id
			}
		}
	}
	c.mu.Lock()
	idx := len(c.entries)
	drop := c.takeSSHDrop()
	var dropErr error
	if drop {
		// recorded before the drop, which the client may see first
		dropErr = errors.New("session dropped")
	}
	c.record("ssh", target, cmdline, dropErr)
	c.mu.Unlock()
	if drop {
		w.dropAfter = 1
		c.logger.Info("ssh session dropped by fault", "command", cmdline)
	}
	code, errText := s.dispatch(w, words, perr, args, aerr)
	if errText != "" && !drop {
		c.mu.Lock()
		if idx < len(c.entries) {
			c.entries[idx].Error = errText
			c.notify()
		}
		c.mu.Unlock()
	}
	return code
}

func (c *Cluster) nodeByIDLocked(id string) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodeByID(id)
}

func (s *sshServer) dispatch(w *output, words []string, perr error, a adminArgs, aerr error) (int, string) {
	switch {
	case perr != nil:
		w.err("bash: %v", perr)
		return 2, perr.Error()
	case len(words) == 0:
		return 0, ""
	case path.Base(words[0]) != "sdb-admin":
		w.err("bash: line 1: %s: command not found", words[0])
		return 127, "command not found"
	case aerr != nil:
		w.err("Error: %v", aerr)
		return 1, aerr.Error()
	}
	switch a.sub {
	case "list-nodes":
		s.listNodes(w, a.json)
		return 0, ""
	case "stop-node", "start-node":
		if len(a.ids) != 1 {
			msg := "exactly one --memsql-id is required"
			w.err("Error: %s", msg)
			return 1, msg
		}
		if !a.yes {
			w.out("Would you like to continue? [y/N]: ")
			msg := "no TTY to confirm on; pass --yes"
			w.err("Error: %s", msg)
			return 1, msg
		}
		return s.stopStart(w, a.sub == "start-node", a.ids[0])
	case "":
		w.err("Error: sdb-admin needs a command (list-nodes, stop-node, start-node)")
		return 1, "no command"
	}
	w.err("Error: unknown command %q for \"sdb-admin\"", a.sub)
	w.err("Run 'sdb-admin --help' for usage.")
	return 1, "unknown command " + a.sub
}

// listedNode is one node of list-nodes --json.
type listedNode struct {
	MemsqlID          string `json:"memsqlId"`
	Role              string `json:"role"`
	Host              string `json:"host"`
	Port              int    `json:"port"`
	ProcessState      string `json:"processState"`
	IsConnectable     bool   `json:"isConnectable"`
	Version           string `json:"version"`
	RecoveryState     string `json:"recoveryState"`
	AvailabilityGroup int    `json:"availabilityGroup"`
	BindAddress       string `json:"bindAddress"`
	NodeID            string `json:"nodeID"`
}

func (s *sshServer) listNodes(w *output, asJSON bool) {
	c := s.c
	c.mu.Lock()
	var nodes []listedNode
	for _, n := range c.nodes {
		ps := "Stopped"
		if n.running {
			ps = "Running"
		}
		nodes = append(nodes, listedNode{MemsqlID: n.id, Role: n.adminRole(), Host: "127.0.0.1", Port: n.port,
			ProcessState: ps, IsConnectable: n.running, Version: serverVersion, RecoveryState: n.recoveryState(),
			AvailabilityGroup: n.ag, BindAddress: "127.0.0.1", NodeID: fmt.Sprint(n.nodeID)})
	}
	c.mu.Unlock()
	if asJSON {
		raw, _ := json.MarshalIndent(struct {
			Nodes []listedNode `json:"nodes"`
		}{nodes}, "", "  ")
		if w.dropAfter > 0 {
			w.write(false, string(raw[:len(raw)/2]))
			return
		}
		w.write(false, string(raw)+"\n")
		return
	}
	var b strings.Builder
	sep := "+------------+------------+-----------+-------+---------------+--------------+---------+----------------+--------------------+--------------+\n"
	b.WriteString(sep)
	b.WriteString("| MemSQL ID  |    Role    |   Host    | Port  | Process State | Connectable? | Version | Recovery State | Availability Group | Bind Address |\n")
	b.WriteString(sep)
	for _, n := range nodes {
		fmt.Fprintf(&b, "| %-10s | %-10s | %-9s | %-5d | %-13s | %-12t | %-7s | %-14s | %-18d | %-12s |\n",
			n.MemsqlID[:10], n.Role, n.Host, n.Port, n.ProcessState, n.IsConnectable, n.Version, n.RecoveryState, n.AvailabilityGroup, n.BindAddress)
	}
	b.WriteString(sep)
	for _, line := range strings.SplitAfter(strings.TrimSuffix(b.String(), "\n"), "\n") {
		w.write(false, strings.TrimSuffix(line, "\n")+"\n")
	}
}

// stopStart runs stop-node or start-node for one node: progress lines spread
// over the configured duration, then the state change.
func (s *sshServer) stopStart(w *output, start bool, id string) (int, string) {
	c := s.c
	verb, past, d := "stop", "stopped", c.opts.StopTime
	if start {
		verb, past, d = "start", "started", c.opts.StartTime
	}
	c.mu.Lock()
	n := c.nodeByID(id)
	switch {
	case n == nil:
		c.mu.Unlock()
		msg := fmt.Sprintf("no node found with MemSQL ID %s", id)
		w.err("Error: %s", msg)
		return 1, msg
	case n.running == start:
		c.mu.Unlock()
		w.out("✓ %s node %s on 127.0.0.1:%d is already %s", n.adminRole(), n.id, n.port, past)
		return 0, ""
	case n.busy:
		c.mu.Unlock()
		msg := fmt.Sprintf("node %s: another operation is in progress", n.id)
		w.err("Error: %s", msg)
		return 1, msg
	}
	n.busy = true
	fails := n.stopFails
	if start {
		fails = n.startFails
	}
	role, port := n.adminRole(), n.port
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		n.busy = false
		c.mu.Unlock()
	}()

	w.out("Toolbox is about to perform the following actions on host 127.0.0.1:")
	w.out("  · Run 'memsqlctl %s-node --yes --memsql-id %s'", verb, n.id)
	w.out("")
	w.out("Would you like to continue? [y/N]: y")
	steps := []string{
		fmt.Sprintf("%s %s node on 127.0.0.1:%d", map[string]string{"start": "Starting", "stop": "Stopping"}[verb], role, port),
		"  · waiting for the memsqld process",
	}
	if !start {
		steps[1] = "  · waiting for the memsqld process to exit"
	}
	for _, line := range steps {
		if w.dropped || !c.sleep(d/time.Duration(len(steps)+1)) {
			return 1, "aborted"
		}
		w.out("%s", line)
	}
	if w.dropped || !c.sleep(d/time.Duration(len(steps)+1)) {
		return 1, "aborted"
	}
	if fails {
		msg := fmt.Sprintf("memsqlctl %s-node exited with status 1: %s", verb, map[bool]string{
			false: "the node did not exit within the timeout", true: "memsqld exited during startup"}[start])
		w.err("✘ Failed to %s %s node on 127.0.0.1:%d (0/1)", verb, role, port)
		w.err("Error: %s", msg)
		return 1, msg
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 1, "aborted"
	}
	var err error
	if start {
		if err = n.sql.start(fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.started(n)
		}
	} else {
		c.stopped(n)
	}
	c.notify()
	c.mu.Unlock()
	if err != nil {
		msg := fmt.Sprintf("memsqld could not listen on port %d: %v", port, err)
		w.err("✘ Failed to start %s node on 127.0.0.1:%d (0/1)", role, port)
		w.err("Error: %s", msg)
		return 1, msg
	}
	w.out("✓ %s %s node on 127.0.0.1:%d (1/1)", strings.ToUpper(past[:1])+past[1:], role, port)
	w.out("✓ Successfully %s node %s", past, n.id)
	return 0, ""
}
