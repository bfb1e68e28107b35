package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .errors files of testdata/invalid")

// TestInvalidFiles loads every file in testdata/invalid and compares all of
// its errors, one per line, with the .errors file beside it. The absolute
// path of testdata is written as $TESTDATA there.
func TestInvalidFiles(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) < 8 {
		t.Fatalf("only %d invalid test files", len(files))
	}
	testdata := abs(t, "testdata")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(f, designEnv)
			if err == nil {
				t.Fatalf("Load(%s) succeeded: %+v", f, cfg)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load(%s) error is %T, want config.Errors: %v", f, err, err)
			}
			got := strings.ReplaceAll(errs.Error(), testdata, "$TESTDATA") + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".errors"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./config -run TestInvalidFiles -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors of %s:\n--- got\n%s--- want\n%s", f, got, want)
			}
			for _, e := range errs {
				if e.Msg == "" || (e.Path == "" && e.Line == 0 && !strings.Contains(e.Msg, "empty")) {
					t.Errorf("error without a place: %+v", e)
				}
			}
		})
	}
}

// TestUnknownKeys misspells a key at every level of the file: each is an
// error naming the full path, with the key it probably meant.
func TestUnknownKeys(t *testing.T) {
	t.Parallel()
	const slack = "slack: {bot_token: xoxb-1, app_token: xapp-1, approvers: [U0AAAAAAA]}\n"
	const cluster = "clusters:\n  - name: prod\n    sql: {addr: \"db:3306\", user: u}\n"
	const tb = "    toolbox: {local: true}\n"
	const ssh = "    toolbox:\n      ssh: {addr: h, user: u, key_file: testdata/keys/id_test, known_hosts: testdata/keys/known_hosts"
	tests := []struct {
		src, want string
	}{
		{"clsters: []\n" + cluster + tb, "clsters: unknown key (did you mean clusters?)"},
		{"store: {paht: x.db}\n" + cluster + tb, "store.paht: unknown key (did you mean path?)"},
		{"store: {mysql_dns: x}\n" + cluster + tb, "store.mysql_dns: unknown key (did you mean mysql_dsn?)"},
		{"slack: {bot_token: xoxb-1, app_token: xapp-1, approvers: [U0AAAAAAA], aprovers: []}\n" + cluster + tb, "slack.aprovers: unknown key (did you mean approvers?)"},
		{"slack: {bot_token: xoxb-1, app_token: xapp-1, approvers: [U0AAAAAAA], signing-secret: x}\n" + cluster + tb, "slack.signing-secret: unknown key (did you mean signing_secret?)"},
		{slack + "verify: {trusted_rot: x}\n" + cluster + tb, "verify.trusted_rot: unknown key (did you mean trusted_root?)"},
		{cluster + tb + "    recovery_timout: 1h\n", "clusters[0].recovery_timout: unknown key (did you mean recovery_timeout?)"},
		{cluster + tb + "    autoapprove: [start]\n", "clusters[0].autoapprove: unknown key (did you mean auto_approve?)"},
		{cluster + tb + "    window: []\n", "clusters[0].window: unknown key (did you mean windows?)"},
		{"clusters:\n  - name: prod\n    sql: {adr: \"db:3306\", user: u}\n" + tb, "clusters[0].sql.adr: unknown key (did you mean addr?)"},
		{cluster + "    toolbox: {local: true, sdbadmin: x}\n", "clusters[0].toolbox.sdbadmin: unknown key (did you mean sdb_admin?)"},
		{cluster + ssh + ", knwon_hosts: x}\n", "clusters[0].toolbox.ssh.knwon_hosts: unknown key (did you mean known_hosts?)"},
		{cluster + ssh + ", keyfile: x}\n", "clusters[0].toolbox.ssh.keyfile: unknown key (did you mean key_file?)"},
		{cluster + tb + "    backup: {too: /b}\n", "clusters[0].backup.too: unknown key (did you mean to?)"},
		{cluster + tb + "    verify: {trusted_root: testdata/keys/trusted_root.json}\n    packages: [{path: /a, bundles: /b}]\n", "clusters[0].packages[0].bundles: unknown key (did you mean bundle?)"},
		{cluster + tb + "    verify: {issuer: https://x.example, signd: file}\n", "clusters[0].verify.signd: unknown key (did you mean signed?)"},
		{cluster + tb + "    windows: [{schedule: \"@daily\"}, {schedule: \"@daily\", annouce: [1h]}]\n", "clusters[0].windows[1].annouce: unknown key (did you mean announce?)"},
		{cluster + tb + "    colour: blue\n", "clusters[0].colour: unknown key (known keys: name, sql, toolbox, backup, packages, auto_approve, recovery_timeout, stop_parallelism, verify, windows)"},
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(tt.src), env())
		var errs Errors
		if !errors.As(err, &errs) || len(errs) != 1 {
			t.Errorf("Parse(%q) = %v; want exactly one error", tt.src, err)
			continue
		}
		if got := errs[0].Path + ": " + errs[0].Msg; got != tt.want {
			t.Errorf("Parse(%q):\n got %s\nwant %s", tt.src, got, tt.want)
		}
		if errs[0].Line == 0 {
			t.Errorf("Parse(%q): error without a line: %v", tt.src, errs[0])
		}
	}
}

// TestAllErrorsAtOnce checks that one bad file yields every problem, in
// file order, each on its own line.
func TestAllErrorsAtOnce(t *testing.T) {
	t.Parallel()
	src := `
clusters:
  - name: a
    sql: {addr: db, user: u}
    toolbox: {local: true}
    recovery_timeout: soon
  - name: b
    sql: {addr: "db:3306", user: u}
    toolbox: {local: true}
    auto_approve: [stop]
  - name: a
    sql: {addr: "db:3306"}
    toolbox: {local: true}
`
	_, err := Parse(strings.NewReader(src), env())
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse = %v, want Errors", err)
	}
	want := []string{
		`clusters[0].sql.addr: missing port (write host:port, such as 10.0.0.10:3306) (line 4)`,
		`clusters[0].recovery_timeout: expected a duration such as 10m, 3h or 24h, got "soon" (line 6)`,
		`clusters[1].auto_approve[0]: stop can never be approved automatically: a person must decide to take the cluster down (line 10)`,
		`clusters[2].name: cluster name "a" is already used by clusters[0] (line 11)`,
		`clusters[2].sql.user: required (line 12)`,
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDefaultTrustedRootNeededForPackages(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(DefaultTrustedRoot); err == nil {
		t.Skipf("%s exists on this host", DefaultTrustedRoot)
	}
	src := `
clusters:
  - name: prod
    sql: {addr: "db:3306", user: u}
    toolbox: {local: true}
    packages: [/opt/pkgs/a.tgz]
  - name: qa
    sql: {addr: "db:3306", user: u}
    toolbox: {local: true}
    packages: [/opt/pkgs/a.tgz]
`
	_, err := Parse(strings.NewReader(src), env())
	want := "clusters[0].packages: verifying packages needs the Sigstore trusted root, and the default one is missing (file not found: /etc/sdbmaint/trusted_root.json); set verify.trusted_root (line 6)"
	if err == nil || err.Error() != want {
		t.Errorf("Parse = %v\nwant %s (once, not once per cluster)", err, want)
	}
	// Without packages nothing needs the root, so its absence is fine.
	if _, err := Parse(strings.NewReader(minimal), env()); err != nil {
		t.Errorf("Parse(minimal) = %v", err)
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	known := []string{"addr", "user", "key_file", "known_hosts"}
	for got, want := range map[string]string{
		"knwon_hosts": "known_hosts", "KEY_FILE": "key_file", "adr": "addr", "usr": "user",
		"password": "", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz": "",
	} {
		if s := suggest(got, known); s != want {
			t.Errorf("suggest(%q) = %q, want %q", got, s, want)
		}
	}
}

// TestManyErrors checks that a file full of mistakes is reported in
// bounded time and size.
func TestManyErrors(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("slack: {bot_token: xoxb-1, app_token: xapp-1, approvers: [U0AAAAAAA]}\n" + minimal + "    windows:\n")
	for range 5_000 { // under the size limit and the alias budget
		b.WriteString("      - {schedule: bad, channel: bad, duration: bad}\n")
	}
	_, err := Parse(strings.NewReader(b.String()), env())
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != maxErrors+1 {
		t.Fatalf("got %d errors, want %d and a last line saying there are more", len(errs), maxErrors+1)
	}
	if last := errs[len(errs)-1]; !strings.Contains(last.Msg, "more than 100 problems") {
		t.Errorf("last error = %v", last)
	}
}

// TestAliasBomb nests aliases so that expanding them would visit billions
// of values; the walk gives up after maxNodes with an error instead.
func TestAliasBomb(t *testing.T) {
	t.Parallel()
	src := `
x-a: &a ["1h", "2h", "3h", "4h", "5h", "6h", "7h", "8h", "9h", "10h"]
x-w: &w {schedule: "@daily", announce: *a}
x-b: &b [*w, *w, *w, *w, *w, *w, *w, *w, *w, *w, *w, *w, *w, *w, *w, *w, *w, *w, *w, *w]
x-c: &c {name: x, sql: {addr: "db:3306", user: u}, toolbox: {local: true}, windows: *b}
clusters: [` + strings.Repeat("*c, ", 2000) + `*c]
`
	_, err := Parse(strings.NewReader(src), env())
	if err == nil || !strings.Contains(err.Error(), "the file expands to more than 100000 values") {
		t.Fatalf("Parse(alias bomb) = %v", err)
	}
}

// config check refuses what the window scheduler would refuse at startup.
func TestWindowLimitsCheckedAtParse(t *testing.T) {
	src := "clusters:\n  - name: prod\n    sql: {addr: \"127.0.0.1:3306\", user: u, password: p}\n    toolbox: {local: true}\n" +
		"    windows: [{schedule: \"0 * * * *\", duration: 3h}]\n"
	_, err := Parse(strings.NewReader(src), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "clusters[0].windows[0]: duration 3h is longer than the 1h between two starts") {
		t.Fatalf("err = %v, want the overlap named at clusters[0].windows[0]", err)
	}
}
