package sim

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Files are the SSH client files for the toolbox host.
type Files struct {
	KeyFile    string // OpenSSH private key, mode 0600
	KnownHosts string // one line for [127.0.0.1]:PORT with the host key
	User       string // the SSH user
}

// Key and known_hosts file names that Files writes.
const (
	KeyFileName    = "sim_id_ed25519"
	KnownHostsName = "sim_known_hosts"
)

// Files writes the client private key and a known_hosts line for the
// toolbox host into dir and returns their paths.
func (c *Cluster) Files(dir string) (Files, error) {
	block, err := ssh.MarshalPrivateKey(c.ssh.clientKey, "sdbmaint-sim")
	if err != nil {
		return Files{}, fmt.Errorf("sim: marshal client key: %w", err)
	}
	f := Files{
		KeyFile:    filepath.Join(dir, KeyFileName),
		KnownHosts: filepath.Join(dir, KnownHostsName),
		User:       SSHUser,
	}
	if err := os.WriteFile(f.KeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return Files{}, fmt.Errorf("sim: write client key: %w", err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(c.SSHAddr())}, c.ssh.hostKey.PublicKey()) + "\n"
	if err := os.WriteFile(f.KnownHosts, []byte(line), 0o644); err != nil {
		return Files{}, fmt.Errorf("sim: write known_hosts: %w", err)
	}
	return f, nil
}

// HostKey is the toolbox host's public key.
func (c *Cluster) HostKey() ssh.PublicKey { return c.ssh.hostKey.PublicKey() }

// ClientSigner is the key the toolbox host accepts, for SSH clients built
// in tests without files.
func (c *Cluster) ClientSigner() ssh.Signer {
	s, err := ssh.NewSignerFromKey(c.ssh.clientKey)
	if err != nil {
		panic(err) // an ed25519 key always makes a signer
	}
	return s
}

// The config file's shape, as DESIGN.md gives it; only the keys the sim
// fills in.
type configFile struct {
	Clusters []clusterConfig `yaml:"clusters"`
}

type clusterConfig struct {
	Name string `yaml:"name"`
	SQL  struct {
		Addr     string `yaml:"addr"`
		User     string `yaml:"user"`
		Password string `yaml:"password"`
	} `yaml:"sql"`
	Toolbox struct {
		SSH struct {
			Addr       string `yaml:"addr"`
			User       string `yaml:"user"`
			KeyFile    string `yaml:"key_file"`
			KnownHosts string `yaml:"known_hosts"`
		} `yaml:"ssh"`
		SDBAdmin string `yaml:"sdb_admin"`
	} `yaml:"toolbox"`
	Backup struct {
		To     string `yaml:"to"`
		Recent string `yaml:"recent"`
	} `yaml:"backup"`
	RecoveryTimeout string `yaml:"recovery_timeout"`
}

// WriteConfig writes a complete sdbmaint config for this cluster (named
// "sim") to path, with the SSH key and known_hosts files beside it; the
// config names them relative to its own directory.
func (c *Cluster) WriteConfig(path string) error {
	dir := filepath.Dir(path)
	if _, err := c.Files(dir); err != nil {
		return err
	}
	var cc clusterConfig
	cc.Name = "sim"
	cc.SQL.Addr, cc.SQL.User, cc.SQL.Password = c.MySQLAddr(), c.opts.User, c.opts.Password
	cc.Toolbox.SSH.Addr, cc.Toolbox.SSH.User = c.SSHAddr(), SSHUser
	cc.Toolbox.SSH.KeyFile, cc.Toolbox.SSH.KnownHosts = KeyFileName, KnownHostsName
	cc.Toolbox.SDBAdmin = "sdb-admin"
	cc.Backup.To, cc.Backup.Recent = "/backups", "24h"
	cc.RecoveryTimeout = (time.Minute + 20*c.opts.RecoveryTime).Round(time.Second).String()
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by sdbmaint sim for the simulated cluster at %s.\n", c.MySQLAddr())
	fmt.Fprintf(&b, "# Key files are relative to this file's directory.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(configFile{Clusters: []clusterConfig{cc}}); err != nil {
		return fmt.Errorf("sim: encode config: %w", err)
	}
	enc.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("sim: write config: %w", err)
	}
	return nil
}
