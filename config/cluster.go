package config

import (
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/windows"

	// Windows name zones with CRON_TZ=; the binary must know every zone
	// even on a host without /usr/share/zoneinfo.
	_ "time/tzdata"
)

var clusterName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// autoApprovable are the phases whose gate config may pass automatically.
// Stop is deliberately absent: taking a cluster down is always a person's call.
var autoApprovable = []string{
	string(runbook.PhaseBackup), string(runbook.PhaseSnapshot), string(runbook.PhaseSyncSnapshot),
	string(runbook.PhaseMaintenance), string(runbook.PhaseStart),
}

func (d *decoder) clusters(top *fields, cfg *Config) []Cluster {
	if !top.required("clusters") {
		return nil
	}
	items, ok := top.list("clusters")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		d.errorf("clusters", top.lineOf("clusters"), "at least one cluster is required")
	}
	var out []Cluster
	first := map[string]string{} // name -> path of its first definition
	for i, n := range items {
		p := index("clusters", i)
		if n == nil {
			continue
		}
		c := d.cluster(p, n, cfg)
		if c.Name != "" {
			if prev, dup := first[c.Name]; dup {
				d.errorf(child(p, "name"), n.Line, "cluster name %q is already used by %s", c.Name, prev)
			} else {
				first[c.Name] = p
			}
		}
		out = append(out, c)
	}
	return out
}

func (d *decoder) cluster(p string, n *yaml.Node, cfg *Config) Cluster {
	f := d.mapping(p, n, n.Line, "name", "sql", "toolbox", "backup", "packages", "auto_approve",
		"recovery_timeout", "stop_parallelism", "verify", "windows")
	var c Cluster
	if f.required("name") {
		c.Name = f.str("name")
		if c.Name != "" && !clusterName.MatchString(c.Name) {
			d.errorf(f.at("name"), f.lineOf("name"), "%q must be 1-63 lower-case letters, digits, - or _, starting with a letter or digit", c.Name)
			c.Name = ""
		}
	}
	c.SQL = d.sql(f)
	c.Toolbox = d.toolbox(f)
	c.Backup = d.backup(f)
	c.Verify = d.verify(f.at("verify"), f.node("verify"), f.lineOf("verify"), cfg.Verify)
	c.Packages = d.packages(f, c.Verify)
	c.AutoApprove = d.autoApprove(f)
	c.RecoveryTimeout = f.duration("recovery_timeout", DefaultRecoveryTimeout)
	c.StopParallelism = f.integer("stop_parallelism", 0)
	if c.StopParallelism < 0 {
		d.errorf(f.at("stop_parallelism"), f.lineOf("stop_parallelism"), "must be 0 (all nodes of a tier at once) or more, got %d", c.StopParallelism)
		c.StopParallelism = 0
	}
	c.Windows = d.windows(f, cfg.Slack)
	return c
}

func (d *decoder) sql(cf *fields) SQL {
	if !cf.required("sql") {
		return SQL{}
	}
	f := d.mapping(cf.at("sql"), cf.node("sql"), cf.lineOf("sql"), "addr", "user", "password")
	var s SQL
	if f.required("addr") {
		addr, msg := hostPort(f.str("addr"), "", false)
		if msg != "" && !d.failedAt(f.at("addr")) {
			d.errorf(f.at("addr"), f.lineOf("addr"), "%s", msg)
		}
		s.Addr = addr
	}
	if f.required("user") {
		s.User = f.str("user")
	}
	s.Password = f.secret("password")
	return s
}

func (d *decoder) toolbox(cf *fields) Toolbox {
	if !cf.required("toolbox") {
		return Toolbox{}
	}
	p := cf.at("toolbox")
	f := d.mapping(p, cf.node("toolbox"), cf.lineOf("toolbox"), "ssh", "local", "sdb_admin")
	t := Toolbox{SDBAdmin: DefaultSDBAdmin}
	t.Local = f.boolean("local", false)
	switch {
	case f.has("ssh") && t.Local:
		d.errorf(p, f.line, "set either ssh (the toolbox is another host) or local: true (it is this host), not both")
	case t.Local:
	case f.has("ssh"):
		t.SSH = d.ssh(f)
	case !d.failedAt(p):
		d.errorf(p, f.line, "needs ssh: {addr, user, key_file, known_hosts}, or local: true when sdbmaint runs on the toolbox host")
	}
	if f.has("sdb_admin") {
		t.SDBAdmin = f.str("sdb_admin")
		if strings.TrimSpace(t.SDBAdmin) == "" && !d.failedAt(f.at("sdb_admin")) {
			d.errorf(f.at("sdb_admin"), f.lineOf("sdb_admin"), "must not be empty (the default is %s)", DefaultSDBAdmin)
		}
	}
	return t
}

func (d *decoder) ssh(tf *fields) SSH {
	f := d.mapping(tf.at("ssh"), tf.node("ssh"), tf.lineOf("ssh"), "addr", "user", "key_file", "known_hosts")
	var s SSH
	if f.required("addr") {
		addr, msg := hostPort(f.str("addr"), DefaultSSHPort, false)
		if msg != "" && !d.failedAt(f.at("addr")) {
			d.errorf(f.at("addr"), f.lineOf("addr"), "%s", msg)
		}
		s.Addr = addr
	}
	if f.required("user") {
		s.User = f.str("user")
	}
	if f.required("key_file") {
		if v := f.str("key_file"); v != "" {
			s.KeyFile = d.file(f.at("key_file"), f.lineOf("key_file"), v)
		}
	}
	if !f.has("known_hosts") && !f.suggested["known_hosts"] {
		d.errorf(f.at("known_hosts"), f.lineOf("known_hosts"), "required: host keys are always verified (ssh-keyscan -H HOST > known_hosts, then check the fingerprint)")
	} else if v := f.str("known_hosts"); v != "" {
		s.KnownHosts = d.file(f.at("known_hosts"), f.lineOf("known_hosts"), v)
	}
	return s
}

func (d *decoder) backup(cf *fields) Backup {
	f := d.mapping(cf.at("backup"), cf.node("backup"), cf.lineOf("backup"), "to", "recent")
	b := Backup{Recent: DefaultBackupRecent}
	if f.has("to") {
		b.To = f.str("to")
	}
	b.Recent = f.duration("recent", DefaultBackupRecent)
	return b
}

func (d *decoder) packages(cf *fields, v Verify) []Package {
	items, ok := cf.list("packages")
	if !ok {
		return nil
	}
	var out []Package
	for i, n := range items {
		p := index(cf.at("packages"), i)
		if n == nil {
			continue
		}
		var pkg Package
		if n.Kind == yaml.ScalarNode { // a bare path is {path: PATH}
			pkg.Path, _ = d.scalar(child(p, "path"), n, false)
		} else {
			f := d.mapping(p, n, n.Line, "path", "bundle")
			if f.required("path") {
				pkg.Path = f.str("path")
			}
			if f.has("bundle") {
				pkg.Bundle = f.str("bundle")
				if !path.IsAbs(pkg.Bundle) {
					d.errorf(f.at("bundle"), f.lineOf("bundle"), "%q must be an absolute path on the toolbox host", pkg.Bundle)
				}
			}
		}
		if pkg.Path != "" && !path.IsAbs(pkg.Path) {
			d.errorf(child(p, "path"), n.Line, "%q must be an absolute path on the toolbox host", pkg.Path)
		}
		if pkg.Bundle == "" && pkg.Path != "" {
			pkg.Bundle = pkg.Path + ".sig"
		}
		out = append(out, pkg)
	}
	// Packages are verified against the trusted root at preflight; a
	// default root that is not there would fail every preflight.
	if len(out) > 0 && !d.checkedRoots[v.TrustedRoot] {
		if msg := readable(v.TrustedRoot); msg != "" {
			d.errorf(cf.at("packages"), cf.lineOf("packages"), "verifying packages needs the Sigstore trusted root, and the default one is missing (%s); set verify.trusted_root", msg)
			d.checkedRoots[v.TrustedRoot] = true // say it once, not once per cluster
		}
	}
	return out
}

func (d *decoder) autoApprove(cf *fields) []runbook.PhaseName {
	items, ok := cf.list("auto_approve")
	if !ok {
		return nil
	}
	var out []runbook.PhaseName
	seen := map[string]bool{}
	for i, n := range items {
		p := index(cf.at("auto_approve"), i)
		s, ok := d.scalar(p, n, false)
		switch {
		case !ok: // reported by list or scalar
		case s == string(runbook.PhaseStop):
			d.errorf(p, n.Line, "stop can never be approved automatically: a person must decide to take the cluster down")
		case s == string(runbook.PhasePreflight) || s == string(runbook.PhaseFinalize):
			d.errorf(p, n.Line, "%s has no gate to approve; phases with gates: %s", s, strings.Join(autoApprovable, ", "))
		case !contains(autoApprovable, s):
			msg := fmt.Sprintf("%q is not a phase that can be approved automatically (%s)", s, strings.Join(autoApprovable, ", "))
			if g := suggest(s, autoApprovable); g != "" {
				msg = fmt.Sprintf("%q is not a phase (did you mean %s?)", s, g)
			}
			d.errorf(p, n.Line, "%s", msg)
		case seen[s]:
			d.errorf(p, n.Line, "%s is listed twice", s)
		default:
			seen[s] = true
			out = append(out, runbook.PhaseName(s))
		}
	}
	return out
}

func (d *decoder) windows(cf *fields, slack Slack) []Window {
	items, ok := cf.list("windows")
	if !ok {
		return nil
	}
	var out []Window
	for i, n := range items {
		p := index(cf.at("windows"), i)
		if n == nil {
			continue
		}
		f := d.mapping(p, n, n.Line, "schedule", "duration", "announce", "channel")
		w := Window{Duration: DefaultWindowDuration, Announce: DefaultAnnounce(), Channel: slack.Channel}
		if f.required("schedule") {
			w.Spec = f.str("schedule")
			if w.Spec != "" {
				sched, err := parseSchedule(w.Spec)
				if err != nil {
					d.errorf(f.at("schedule"), f.lineOf("schedule"), "%v", err)
				}
				w.Schedule = sched
			}
		}
		w.Duration = f.duration("duration", DefaultWindowDuration)
		if f.has("announce") {
			w.Announce = d.announce(f)
		}
		if f.has("channel") {
			w.Channel = f.str("channel")
			if !channelID.MatchString(w.Channel) && !d.failedAt(f.at("channel")) {
				d.errorf(f.at("channel"), f.lineOf("channel"), "%q is not a channel ID (C0123456) or name (#ops)", w.Channel)
			}
		} else if slack.Configured() && w.Channel == "" {
			d.errorf(f.at("channel"), f.line, "no channel for announcements: set it here or set slack.channel")
		}
		// The scheduler's own limits (duration against the gap between
		// starts, lead times, how many) are checked here too, so that
		// config check catches what serve would refuse at startup.
		if w.Schedule != nil && !d.failedAt(f.at("duration")) && !d.failedAt(f.at("announce")) {
			sw := windows.ConfigWindow("", w.Spec, w.Duration, w.Announce, w.Channel)
			if err := sw.Validate(time.Local, time.Now()); err != nil {
				d.errorf(p, f.line, "%s", runbook.ErrorMessage(err))
			}
		}
		out = append(out, w)
	}
	return out
}

func (d *decoder) announce(wf *fields) []time.Duration {
	items, ok := wf.list("announce")
	if !ok {
		return nil
	}
	out := []time.Duration{}
	seen := map[time.Duration]bool{}
	for i, n := range items {
		p := index(wf.at("announce"), i)
		if n == nil {
			continue
		}
		v, ok := d.duration(p, n)
		switch {
		case !ok:
		case seen[v]:
			d.errorf(p, n.Line, "%s is listed twice", n.Value)
		default:
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] > out[j] })
	return out
}

const cronExample = `for example "CRON_TZ=Europe/Berlin 0 2 * * SUN" (02:00 Berlin time every Sunday)`

// parseSchedule parses a window's cron spec with the standard parser: five
// fields or a descriptor such as @weekly, optionally after CRON_TZ=Zone.
func parseSchedule(spec string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil { // cron v3 panics on some malformed specs
			s, err = nil, fmt.Errorf("%q is not a valid cron schedule; %s", spec, cronExample)
		}
	}()
	rest := spec
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		_, after, _ := strings.Cut(spec, "=")
		zone, sched, ok := strings.Cut(after, " ")
		if !ok || strings.TrimSpace(sched) == "" {
			return nil, fmt.Errorf("%q names a time zone but no schedule; %s", spec, cronExample)
		}
		if zone == "" {
			return nil, fmt.Errorf("%q has an empty time zone; %s", spec, cronExample)
		}
		rest = strings.TrimSpace(sched)
	}
	if strings.HasPrefix(rest, "@every") {
		// @every counts from whenever the bot started, so the window's
		// next start (and its announcements) would move with restarts.
		return nil, fmt.Errorf("%q is not a calendar schedule: @every moves with restarts; %s", spec, cronExample)
	}
	s, err = cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid cron schedule (%v); %s", spec, err, cronExample)
	}
	return s, nil
}

// hostPort checks host:port. With defPort a bare host gets that port;
// without one a missing port is an error. listen allows an empty host (all
// interfaces) and port 0 (any free port). It returns the address and what
// is wrong with it, if anything.
func hostPort(s, defPort string, listen bool) (string, string) {
	if s == "" {
		return "", "must not be empty"
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		switch {
		case errors.As(err, &ae) && ae.Err == "missing port in address" && defPort != "":
			host, port = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), defPort
		case errors.As(err, &ae) && ae.Err == "missing port in address" && listen:
			return s, "missing port (write host:port, such as 127.0.0.1:3000, or :3000 for every interface)"
		case errors.As(err, &ae) && ae.Err == "missing port in address":
			return s, "missing port (write host:port, such as 10.0.0.10:3306)"
		case errors.As(err, &ae) && ae.Err == "too many colons in address":
			return s, fmt.Sprintf("%q is not host:port (an IPv6 address goes in brackets: [2001:db8::1]:3306)", s)
		default:
			return s, fmt.Sprintf("%q is not host:port", s)
		}
	}
	if host == "" && !listen {
		return s, "missing host"
	}
	if strings.ContainsAny(host, " \t/@") {
		return s, fmt.Sprintf("%q is not a valid host name", host)
	}
	n, err := strconv.Atoi(port)
	low := 1
	if listen {
		low = 0
	}
	if err != nil || n < low || n > 65535 {
		return s, fmt.Sprintf("port %q must be a number from %d to 65535", port, low)
	}
	return net.JoinHostPort(host, port), ""
}
