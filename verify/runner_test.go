package verify

import (
	"net"
	"testing"

	"github.com/sdbmaint/sdbmaint/cluster"
	"github.com/sdbmaint/sdbmaint/verify/verifytest"
)

// The toolbox host in these tests is this machine, through the runner the
// bot uses when it runs on the toolbox host itself.
var local Runner = &cluster.LocalRunner{}

// Both runners the bot uses satisfy verify's Runner.
var (
	_ Runner = (*cluster.LocalRunner)(nil)
	_ Runner = (*cluster.SSHRunner)(nil)
)

// sshHost starts a toolbox host over real SSH and returns a runner for it.
func sshHost(t *testing.T) (*verifytest.SSHHost, *cluster.SSHRunner) {
	t.Helper()
	h, err := verifytest.StartSSHHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	r, err := cluster.NewSSHRunner(cluster.SSHOptions{Addr: h.Addr, User: h.User, KeyFile: h.KeyFile, KnownHostsFile: h.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return h, r
}

// unreachableHost returns a real SSH runner for a port nothing listens on.
func unreachableHost(t *testing.T) *cluster.SSHRunner {
	t.Helper()
	h, _ := sshHost(t) // for a key and a known_hosts file
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r, err := cluster.NewSSHRunner(cluster.SSHOptions{Addr: addr, User: "ops", KeyFile: h.KeyFile, KnownHostsFile: h.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
