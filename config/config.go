// Package config reads the sdbmaint YAML file into a validated, typed
// Config. The file is parsed from an io.Reader into YAML nodes and walked by
// hand, so that unknown keys, wrong types and bad values all become
// FieldErrors that name the field path and line, and all of them are
// reported at once. Secrets come from the environment as ${VAR} and are held
// as Secret values that redact themselves when printed or logged.
//
// Only cmd/sdbmaint reads a Config; it copies the values onto the options of
// the cluster, runbook and bot packages, which never import config.
package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/sdbmaint/sdbmaint/runbook"
)

// Defaults for optional settings, as DESIGN.md documents them.
const (
	DefaultStorePath       = "sdbmaint.db"
	DefaultSlackMode       = SlackSocket
	DefaultSlackListen     = "127.0.0.1:3000"
	DefaultSDBAdmin        = "sdb-admin"
	DefaultBackupRecent    = 24 * time.Hour
	DefaultRecoveryTimeout = 30 * time.Minute
	DefaultWindowDuration  = 3 * time.Hour
	DefaultSSHPort         = "22"
	DefaultTrustedRoot     = "/etc/sdbmaint/trusted_root.json"
	// DefaultIdentity and DefaultIssuer are the certificate identity and OIDC
	// issuer SingleStore tells operators to pass to cosign verify-blob.
	DefaultIdentity = "https://kubernetes.io/namespaces/freya-production/serviceaccounts/job-worker"
	DefaultIssuer   = "https://oidc.eks.us-east-1.amazonaws.com/id/CCDCDBA1379A5596AB5B2E46DCA385BC"
	DefaultSigned   = SignedDigest
)

// DefaultAnnounce returns the default announcement lead times of a window:
// a day, an hour and ten minutes ahead. It returns a fresh slice each time.
func DefaultAnnounce() []time.Duration {
	return []time.Duration{24 * time.Hour, time.Hour, 10 * time.Minute}
}

// Config is a validated sdbmaint configuration. Every default has been
// applied and every relative file path resolved, so the values can be used
// as they are.
type Config struct {
	// Path is the file the config was loaded from; "" when it came from Parse.
	Path     string
	Store    Store
	Slack    Slack
	Verify   Verify
	Clusters []Cluster
}

// Cluster returns the cluster called name.
func (c *Config) Cluster(name string) (*Cluster, bool) {
	for i := range c.Clusters {
		if c.Clusters[i].Name == name {
			return &c.Clusters[i], true
		}
	}
	return nil, false
}

// ClusterNames returns the names of the clusters in the order of the file.
func (c *Config) ClusterNames() []string {
	names := make([]string, len(c.Clusters))
	for i := range c.Clusters {
		names[i] = c.Clusters[i].Name
	}
	return names
}

// RequireSlack returns an error saying what is missing when the file has no
// slack block; commands that need Slack (serve) call it before anything else.
func (c *Config) RequireSlack() error {
	if c.Slack.Configured() {
		return nil
	}
	return runbook.Errorf(runbook.Invalid, "slack: not configured: add a slack block with bot_token, channel and approvers (preflight, run and demo work without one)")
}

// Store says where runs, approvals and output are kept: exactly one of an
// embedded SQLite file or a shared MySQL-compatible database.
type Store struct {
	// Path is the SQLite file; "" when MySQLDSN is set.
	Path string
	// MySQLDSN is a go-sql-driver/mysql DSN for a shared store used by
	// several bot replicas; it carries a password, so it is a Secret.
	MySQLDSN Secret
}

// SlackMode is how the bot receives events from Slack.
type SlackMode string

// Slack modes.
const (
	SlackSocket SlackMode = "socket" // Socket Mode: an outbound websocket, no public endpoint
	SlackHTTP   SlackMode = "http"   // Slack posts to our endpoints, signed with the signing secret
)

// Slack configures the bot. A file without a slack block is valid for
// terminal use; Configured then reports false.
type Slack struct {
	Mode          SlackMode
	BotToken      Secret // xoxb-...
	AppToken      Secret // xapp-..., socket mode
	SigningSecret Secret // http mode
	Listen        string // host:port for the HTTP endpoints, /healthz and /metrics
	APIURL        string // another Web API base URL; "" for Slack's own
	Channel       string // default channel for runs and announcements
	// Approvers are Slack user IDs (U..., W...) and user-group IDs (S...).
	Approvers []string
	// TwoPersonRule forbids the person who started a run from approving its gates.
	TwoPersonRule bool
}

// Configured reports whether the file had a slack block.
func (s *Slack) Configured() bool { return s.BotToken != "" }

// ApproverUsers returns the approvers that are user IDs.
func (s *Slack) ApproverUsers() []string { return s.approvers(false) }

// ApproverGroups returns the approvers that are user-group IDs.
func (s *Slack) ApproverGroups() []string { return s.approvers(true) }

func (s *Slack) approvers(groups bool) []string {
	var out []string
	for _, a := range s.Approvers {
		if strings.HasPrefix(a, "S") == groups {
			out = append(out, a)
		}
	}
	return out
}

// Signed says what a package's Sigstore signature covers.
type Signed string

// What may be signed. SingleStore's instructions echo the file's hex SHA-256
// into cosign, so by default the signature covers that digest string.
const (
	SignedDigest Signed = "digest" // the lower-case hex SHA-256 of the file, as text
	SignedFile   Signed = "file"   // the file's bytes
)

// Verify configures package signature checks.
type Verify struct {
	TrustedRoot string // local path of the pinned Sigstore trusted root JSON
	Identity    string // expected certificate identity (SAN URI)
	Issuer      string // expected OIDC issuer URL
	Signed      Signed
}

// Cluster is one SingleStore cluster under maintenance.
type Cluster struct {
	Name    string
	SQL     SQL
	Toolbox Toolbox
	Backup  Backup
	// Packages are files on the toolbox host that preflight verifies.
	Packages []Package
	// AutoApprove lists the phases whose gates pass without a person.
	// It never contains stop.
	AutoApprove     []runbook.PhaseName
	RecoveryTimeout time.Duration
	// StopParallelism bounds how many nodes of one tier stop at once;
	// 0 means all of them.
	StopParallelism int
	// Verify is the top-level verify block with this cluster's overrides applied.
	Verify  Verify
	Windows []Window
}

// AutoApproves reports whether phase passes its gate without a person.
func (c *Cluster) AutoApproves(phase runbook.PhaseName) bool {
	for _, p := range c.AutoApprove {
		if p == phase {
			return true
		}
	}
	return false
}

// SQL is how to reach the master aggregator.
type SQL struct {
	Addr     string // host:port
	User     string
	Password Secret
}

// Toolbox is the host that runs sdb-admin: over SSH, or this machine when Local.
type Toolbox struct {
	// SSH is the zero value when Local is true.
	SSH      SSH
	Local    bool
	SDBAdmin string // the sdb-admin command on the toolbox host
}

// SSH is how to log in to the toolbox host. Host keys are always verified
// against KnownHosts.
type SSH struct {
	Addr       string // host:port, port 22 unless the file says otherwise
	User       string
	KeyFile    string
	KnownHosts string
}

// Backup configures the backup phase and preflight's recent-backup check.
type Backup struct {
	// To is the BACKUP DATABASE target; "" skips the backup phase.
	To     string
	Recent time.Duration
}

// Package is a file on the toolbox host and its Sigstore bundle.
type Package struct {
	Path   string
	Bundle string
}

// Window is a recurring maintenance window.
type Window struct {
	// Spec is the cron expression as written, with any CRON_TZ= prefix.
	Spec string
	// Schedule is Spec parsed by cron.ParseStandard; without a CRON_TZ=
	// prefix it runs in the host's local time zone.
	Schedule cron.Schedule `json:"-"`
	Duration time.Duration
	// Announce holds the lead times of announcements, longest first.
	Announce []time.Duration
	// Channel is where announcements go; slack.channel unless set.
	Channel string
}

// Secret is a string that must never reach a log, a terminal or Slack. It
// prints, formats, marshals and logs as "[redacted]"; Reveal returns the value
// for the one place that needs it.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]".
func (s Secret) GoString() string { return redacted }

// Format writes "[redacted]" whatever the verb, so %s, %q, %x and %#v are
// as safe as %v.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON returns "[redacted]" as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText returns "[redacted]", for encoders that use text marshaling.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue returns "[redacted]" for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

var (
	_ fmt.Formatter  = Secret("")
	_ slog.LogValuer = Secret("")
	_ json.Marshaler = Secret("")
)
