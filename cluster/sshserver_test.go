package cluster

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshServer is a real SSH server (x/crypto/ssh) on 127.0.0.1 that runs
// exec requests through a handler instead of a shell: the toolbox host as
// SSHRunner sees it.
type sshServer struct {
	t       *testing.T
	ln      net.Listener
	Addr    string
	HostKey ssh.Signer
	// KeyFile is a client key the server accepts; KnownHosts lists the
	// server's host key.
	KeyFile    string
	KnownHosts string
	handler    func(s *execSession)
	conns      atomic.Int32

	mu   sync.Mutex
	open []net.Conn
}

// execSession is one command the server received.
type execSession struct {
	Cmd    string
	Stdout io.Writer
	Stderr io.Writer
	// Closed is closed when the client closes the session.
	Closed <-chan struct{}
	exit   int
	drop   bool
}

// Exit sets the exit status the server reports when the handler returns.
func (s *execSession) Exit(code int) { s.exit = code }

// Drop makes the server close the session without an exit status.
func (s *execSession) Drop() { s.drop = true }

func newSigner(t testing.TB) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

func startSSHServer(t *testing.T, handler func(s *execSession)) *sshServer {
	t.Helper()
	hostKey, _ := newSigner(t)
	clientKey, clientPriv := newSigner(t)
	dir := t.TempDir()
	block, err := ssh.MarshalPrivateKey(clientPriv, "sdbmaint test")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sshServer{t: t, ln: ln, Addr: ln.Addr().String(), HostKey: hostKey, KeyFile: keyFile, handler: handler}
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	s.writeKnownHosts(hostKey.PublicKey())

	authorized := clientKey.PublicKey().Marshal()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(authorized) {
				return nil, nil
			}
			return nil, fmt.Errorf("unknown key")
		},
	}
	cfg.AddHostKey(hostKey)
	go s.serve(cfg)
	t.Cleanup(func() {
		ln.Close()
		s.dropConnections()
	})
	return s
}

// writeKnownHosts makes the known_hosts file list key for this server.
func (s *sshServer) writeKnownHosts(keys ...ssh.PublicKey) {
	var data []byte
	for _, k := range keys {
		data = append(data, knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, k)+"\n"...)
	}
	if err := os.WriteFile(s.KnownHosts, data, 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// dropConnections cuts every open connection, as a network failure would.
func (s *sshServer) dropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.open {
		c.Close()
	}
	s.open = nil
}

func (s *sshServer) serve(cfg *ssh.ServerConfig) {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.open = append(s.open, nc)
		s.mu.Unlock()
		go func() {
			conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
			if err != nil {
				nc.Close()
				return
			}
			s.conns.Add(1)
			defer conn.Close()
			go ssh.DiscardRequests(reqs)
			for nch := range chans {
				if nch.ChannelType() != "session" {
					_ = nch.Reject(ssh.UnknownChannelType, "only sessions")
					continue
				}
				ch, creqs, err := nch.Accept()
				if err != nil {
					continue
				}
				go s.session(ch, creqs)
			}
		}()
	}
}

func (s *sshServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	closed := make(chan struct{})
	execs := make(chan string, 1)
	go func() {
		defer close(closed)
		for req := range reqs {
			if req.Type != "exec" {
				_ = req.Reply(req.Type == "signal", nil)
				continue
			}
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			execs <- p.Command
		}
	}()
	var cmd string
	select {
	case cmd = <-execs:
	case <-closed:
		return
	}
	es := &execSession{Cmd: cmd, Stdout: ch, Stderr: ch.Stderr(), Closed: closed}
	s.handler(es)
	if !es.drop {
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(es.exit)}))
	}
	ch.Close()
}

func (s *sshServer) options() SSHOptions {
	return SSHOptions{Addr: s.Addr, User: "ops", KeyFile: s.KeyFile, KnownHostsFile: s.KnownHosts}
}
