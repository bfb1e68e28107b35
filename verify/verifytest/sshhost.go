package verifytest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHHost is a toolbox host reached over real SSH: an x/crypto/ssh server
// on 127.0.0.1 that runs every exec request with /bin/sh -c on this
// machine, so sha256sum and the bundle reads really happen over SSH.
type SSHHost struct {
	Addr       string // 127.0.0.1:port
	User       string
	KeyFile    string // a client key the host accepts
	KnownHosts string // lists the host's key

	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// StartSSHHost starts a host and writes its client key and known_hosts
// file into dir.
func StartSSHHost(dir string) (*SSHHost, error) {
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return nil, err
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "sdbmaint verify test")
	if err != nil {
		return nil, err
	}
	h := &SSHHost{User: "ops", KeyFile: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts")}
	if err := os.WriteFile(h.KeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	authorized, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(hostKey)

	h.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h.Addr = h.ln.Addr().String()
	line := knownhosts.Line([]string{knownhosts.Normalize(h.Addr)}, hostKey.PublicKey()) + "\n"
	if err := os.WriteFile(h.KnownHosts, []byte(line), 0o600); err != nil {
		h.ln.Close()
		return nil, err
	}
	h.wg.Add(1)
	go h.serve(cfg)
	return h, nil
}

// Close stops the host and cuts its connections.
func (h *SSHHost) Close() error {
	err := h.ln.Close()
	h.mu.Lock()
	for _, c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
	return err
}

func (h *SSHHost) serve(cfg *ssh.ServerConfig) {
	defer h.wg.Done()
	for {
		nc, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.conns = append(h.conns, nc)
		h.mu.Unlock()
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
			if err != nil {
				nc.Close()
				return
			}
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
				h.wg.Add(1)
				go func() {
					defer h.wg.Done()
					session(ch, creqs)
				}()
			}
		}()
	}
}

// session answers the first exec request by running it with /bin/sh -c.
func session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(false, nil)
			continue
		}
		var p struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &p); err != nil {
			_ = req.Reply(false, nil)
			continue
		}
		_ = req.Reply(true, nil)
		go ssh.DiscardRequests(reqs)
		cmd := exec.Command("/bin/sh", "-c", p.Command)
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		status := 0
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				fmt.Fprintf(ch.Stderr(), "sh: %v\n", err)
				status = 127
			} else {
				status = ee.ExitCode()
			}
		}
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
		return
	}
}
