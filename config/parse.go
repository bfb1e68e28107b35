package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds the config file; a real one is a few kilobytes.
const maxFileSize = 1 << 20

// Parse reads a config file from r, expands ${VAR} with getenv (os.Getenv
// when nil), applies defaults and validates everything. Relative file paths
// are left relative to the working directory; Load resolves them against
// the file's directory instead. When the file is not valid the error is an
// Errors listing every problem.
//
// Besides the keys DESIGN.md documents, the file may use YAML anchors,
// aliases and merge keys (<<), and top-level keys starting with x- are
// ignored so that they can hold shared blocks for clusters to merge in.
func Parse(r io.Reader, getenv func(string) string) (*Config, error) {
	return parse(r, getenv, "")
}

// Load reads the config file at path as Parse does, resolving relative file
// paths in it (key files, known_hosts, the store, the trusted root) against
// the file's own directory, so a config with its key files beside it works
// from any working directory.
func Load(path string, getenv func(string) string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	cfg, err := parse(f, getenv, filepath.Dir(abs))
	if err != nil {
		return nil, err
	}
	cfg.Path = path
	return cfg, nil
}

func parse(r io.Reader, getenv func(string) string, dir string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, Errors{{Msg: fmt.Sprintf("the file is larger than %d bytes; is it the right file?", maxFileSize)}}
	}
	doc, ferr := decodeYAML(data)
	if ferr != nil {
		return nil, Errors{*ferr}
	}
	d := &decoder{getenv: getenv, dir: dir, checkedRoots: map[string]bool{}}
	cfg := d.config(doc)
	if d.exhausted != nil {
		return nil, Errors{*d.exhausted}
	}
	if len(d.errs) > 0 {
		return nil, d.errs.sorted()
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decodeYAML parses data into its one document node.
func decodeYAML(data []byte) (doc *yaml.Node, ferr *FieldError) {
	defer func() {
		// The YAML library has panicked on hostile input in past
		// releases; a config file must never crash the program.
		if r := recover(); r != nil {
			doc, ferr = nil, &FieldError{Msg: fmt.Sprintf("not valid YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{Msg: "the file is empty; it needs at least a clusters list"}
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(err)
		}
		return nil, &FieldError{Line: extra.Line, Msg: "a second YAML document (---) in the file; put everything in one"}
	}
	return &n, nil
}

func yamlError(err error) *FieldError {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if strings.HasPrefix(m[2], "did not find expected") {
			// The YAML parser counts lines from 0 in these (its scanner
			// errors count from 1); report the line a person sees.
			line++
		}
		return &FieldError{Line: line, Msg: "not valid YAML: " + m[2]}
	}
	return &FieldError{Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

func (d *decoder) config(doc *yaml.Node) *Config {
	root := doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if r := d.resolve(root); r == nil || r.Kind != yaml.MappingNode {
		d.errorf("", root.Line, "expected a mapping with store, slack, verify and clusters at the top of the file")
		return nil
	}
	// Top-level keys starting with x- are ignored, so a file can hold
	// anchors (&defaults) that clusters merge in with <<.
	root = d.withoutExtensions(d.resolve(root))
	f := d.mapping("", root, 0, "store", "slack", "verify", "clusters")
	cfg := &Config{}
	cfg.Store = d.store(f)
	cfg.Slack = d.slack(f)
	cfg.Verify = d.verify("verify", f.node("verify"), f.lineOf("verify"), defaultVerify())
	cfg.Clusters = d.clusters(f, cfg)
	return cfg
}

func (d *decoder) withoutExtensions(m *yaml.Node) *yaml.Node {
	out := *m
	out.Content = nil
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && strings.HasPrefix(k.Value, "x-") {
			continue
		}
		out.Content = append(out.Content, m.Content[i], m.Content[i+1])
	}
	return &out
}

func (d *decoder) store(top *fields) Store {
	f := d.mapping("store", top.node("store"), top.lineOf("store"), "path", "mysql_dsn")
	var s Store
	switch {
	case f.has("path") && f.has("mysql_dsn"):
		d.errorf("store", f.line, "set either path (SQLite) or mysql_dsn (a shared MySQL-compatible database), not both")
	case f.has("mysql_dsn"):
		s.MySQLDSN = f.secret("mysql_dsn")
		if s.MySQLDSN != "" {
			if msg := checkDSN(s.MySQLDSN.Reveal()); msg != "" {
				d.errorf(f.at("mysql_dsn"), f.lineOf("mysql_dsn"), "%s", msg)
			}
		}
	default:
		p := DefaultStorePath
		if f.has("path") {
			p = f.str("path")
			if p == "" {
				d.errorf(f.at("path"), f.lineOf("path"), "must not be empty")
				return s
			}
		}
		s.Path = d.abs(p)
		if dir := filepath.Dir(s.Path); !isDir(dir) {
			d.errorf(f.at("path"), f.lineOf("path"), "directory %s not found", dir)
		}
	}
	return s
}

// checkDSN returns what is wrong with a MySQL DSN, without its password.
func checkDSN(dsn string) string {
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		msg := err.Error()
		if pw := dsnPassword(dsn); pw != "" {
			msg = strings.ReplaceAll(msg, pw, redacted)
		}
		return "not a valid MySQL DSN (user:password@tcp(host:port)/dbname): " + msg
	}
	if c.DBName == "" {
		return "names no database: end it with /DBNAME, for example user:password@tcp(db:3306)/sdbmaint"
	}
	return ""
}

// dsnPassword returns the password part of user:password@..., if any.
func dsnPassword(dsn string) string {
	slash := strings.LastIndex(dsn, "/")
	if slash < 0 {
		slash = len(dsn)
	}
	at := strings.LastIndex(dsn[:slash], "@")
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(dsn[:at], ":")
	return pw
}

var (
	approverID = regexp.MustCompile(`^[UWS][A-Z0-9]{2,}$`)
	channelID  = regexp.MustCompile(`^([CGD][A-Z0-9]{2,}|#[a-z0-9][a-z0-9_-]{0,79})$`)
)

func (d *decoder) slack(top *fields) Slack {
	if !top.has("slack") {
		return Slack{}
	}
	f := d.mapping("slack", top.node("slack"), top.lineOf("slack"),
		"mode", "bot_token", "app_token", "signing_secret", "listen", "api_url", "channel", "approvers", "two_person_rule")
	s := Slack{Mode: DefaultSlackMode, Listen: DefaultSlackListen, TwoPersonRule: true}
	if f.has("mode") {
		switch m := SlackMode(f.str("mode")); m {
		case SlackSocket, SlackHTTP:
			s.Mode = m
		case "":
		default:
			d.errorf(f.at("mode"), f.lineOf("mode"), "%q is not a mode: use socket (Socket Mode) or http (Slack posts to slack.listen)", m)
		}
	}
	d.token(f, "bot_token", "xoxb-", "a bot token", true, &s.BotToken)
	d.token(f, "app_token", "xapp-", "an app-level token", s.Mode == SlackSocket, &s.AppToken)
	d.token(f, "signing_secret", "", "", s.Mode == SlackHTTP, &s.SigningSecret)
	if f.has("listen") {
		s.Listen = f.str("listen")
		if _, msg := hostPort(s.Listen, "", true); msg != "" {
			d.errorf(f.at("listen"), f.lineOf("listen"), "%s", msg)
		}
	}
	if f.has("api_url") {
		s.APIURL = f.str("api_url")
		if s.APIURL != "" {
			if u, err := url.Parse(s.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.errorf(f.at("api_url"), f.lineOf("api_url"), "%q is not an http(s) URL such as https://slack.com/api/", s.APIURL)
			}
		}
	}
	if f.has("channel") {
		s.Channel = f.str("channel")
		if s.Channel != "" && !channelID.MatchString(s.Channel) {
			d.errorf(f.at("channel"), f.lineOf("channel"), "%q is not a channel ID (C0123456) or name (#ops)", s.Channel)
		}
	}
	if items, ok := f.list("approvers"); ok {
		seen := map[string]bool{}
		for i, n := range items {
			p := index(f.at("approvers"), i)
			a, ok := d.scalar(p, n, false)
			switch {
			case !ok: // reported by list or scalar
			case a == "":
				d.errorf(p, n.Line, "empty entry")
			case !approverID.MatchString(a):
				d.errorf(p, n.Line, "%q is not a Slack user ID (U..., W...) or user-group ID (S...); copy it from the member's profile", a)
			case seen[a]:
				d.errorf(p, n.Line, "%s is listed twice", a)
			default:
				seen[a] = true
				s.Approvers = append(s.Approvers, a)
			}
		}
	}
	if len(s.Approvers) == 0 && !d.failedAt(f.at("approvers")) {
		d.errorf(f.at("approvers"), f.lineOf("approvers"), "at least one approver is required: nobody could approve a gate")
	}
	s.TwoPersonRule = f.boolean("two_person_rule", true)
	return s
}

// failedAt reports whether a problem was already recorded at path or below.
func (d *decoder) failedAt(path string) bool {
	for _, e := range d.errs {
		if e.Path == path || strings.HasPrefix(e.Path, path+"[") || strings.HasPrefix(e.Path, path+".") {
			return true
		}
	}
	return false
}

// token reads a secret that must start with prefix. It never echoes the value.
func (d *decoder) token(f *fields, key, prefix, what string, required bool, dst *Secret) {
	if !f.has(key) {
		if required {
			f.required(key)
		}
		return
	}
	raw, _ := d.scalarEnv(f.at(key), f.node(key), true, !required)
	v := Secret(raw)
	if v == "" {
		if required && !d.failedAt(f.at(key)) {
			d.errorf(f.at(key), f.lineOf(key), "must not be empty")
		}
		return
	}
	if prefix != "" && !strings.HasPrefix(v.Reveal(), prefix) {
		d.errorf(f.at(key), f.lineOf(key), "must be %s (it starts with %s)", what, prefix)
		return
	}
	*dst = v
}

func defaultVerify() Verify {
	return Verify{TrustedRoot: DefaultTrustedRoot, Identity: DefaultIdentity, Issuer: DefaultIssuer, Signed: DefaultSigned}
}

// verify reads a verify block over base: the defaults at the top level,
// the top-level block in a cluster.
func (d *decoder) verify(path string, n *yaml.Node, line int, base Verify) Verify {
	f := d.mapping(path, n, line, "trusted_root", "identity", "issuer", "signed")
	v := base
	if f.has("trusted_root") {
		if p := f.str("trusted_root"); p != "" {
			v.TrustedRoot = d.file(f.at("trusted_root"), f.lineOf("trusted_root"), p)
			d.checkedRoots[v.TrustedRoot] = true
		} else if !d.failedAt(f.at("trusted_root")) {
			d.errorf(f.at("trusted_root"), f.lineOf("trusted_root"), "must not be empty")
		}
	}
	if f.has("identity") {
		v.Identity = f.str("identity")
		if v.Identity == "" || strings.ContainsAny(v.Identity, " \t") {
			d.errorf(f.at("identity"), f.lineOf("identity"), "must be the signing certificate's identity, such as %s", DefaultIdentity)
		}
	}
	if f.has("issuer") {
		v.Issuer = f.str("issuer")
		if u, err := url.Parse(v.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			d.errorf(f.at("issuer"), f.lineOf("issuer"), "%q is not an OIDC issuer URL such as %s", v.Issuer, DefaultIssuer)
		}
	}
	if f.has("signed") {
		switch s := Signed(f.str("signed")); s {
		case SignedDigest, SignedFile:
			v.Signed = s
		default:
			d.errorf(f.at("signed"), f.lineOf("signed"), "%q is not one of digest (the hex SHA-256 is signed, as SingleStore's instructions do) or file (the bytes are signed)", s)
		}
	}
	return v
}

// abs resolves a local path against the config file's directory.
func (d *decoder) abs(p string) string {
	if filepath.IsAbs(p) || d.dir == "" {
		return filepath.Clean(p)
	}
	return filepath.Join(d.dir, p)
}

// file resolves p and checks that it is a readable file.
func (d *decoder) file(path string, line int, p string) string {
	p = d.abs(p)
	if msg := readable(p); msg != "" {
		d.errorf(path, line, "%s", msg)
	}
	return p
}

// readable returns what keeps p from being read as a file, or "".
func readable(p string) string {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "file not found: " + p
	case err != nil:
		return "cannot read " + p + ": " + unwrapPathError(err)
	case fi.IsDir():
		return p + " is a directory, not a file"
	}
	f, err := os.Open(p)
	if err != nil {
		return "cannot read " + p + ": " + unwrapPathError(err)
	}
	f.Close()
	return ""
}

func unwrapPathError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
