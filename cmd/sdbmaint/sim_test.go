package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

// simBuffer is a bytes.Buffer safe for the command's goroutine and the
// test to share.
type simBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *simBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *simBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSimCmd runs `sdbmaint sim ARGS` in-process until ctx ends and
// returns the ready line and the exit code channel.
func startSimCmd(t *testing.T, ctx context.Context, env *Env, args ...string) (simReady, <-chan int) {
	t.Helper()
	pr, pw := io.Pipe()
	env.Stdout = pw
	done := make(chan int, 1)
	go func() {
		code := Main(ctx, env, append([]string{"sim"}, args...))
		pw.Close()
		done <- code
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no ready line: %v (stderr: %s)", err, env.Stderr)
	}
	go io.Copy(io.Discard, pr) // nothing else is printed, but never block the command
	var ready simReady
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ready); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	return ready, done
}

func TestSimCommandPrintsReadyLineAndWritesConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "conf", "sdbmaint.yaml")
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o755); err != nil {
		t.Fatal(err)
	}
	stderr := &simBuffer{}
	env := &Env{Stderr: stderr, Getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r, done := startSimCmd(t, ctx, env, "--leaves", "2", "--aggregators", "0", "--databases", "orders, metrics",
		"--fault", "rebalance-pending:orders", "--stop-time", "5ms", "--write-config", cfgPath)
	ready := map[string]string{"mysql": r.MySQL, "ssh": r.SSH, "control": r.Control, "config": r.Config}
	if ready["config"] != cfgPath || !strings.HasPrefix(ready["control"], "http://127.0.0.1:") || !strings.HasPrefix(ready["mysql"], "127.0.0.1:") {
		t.Errorf("ready = %v", ready)
	}

	// the cluster behind the line is the one configured
	db, err := sql.Open("mysql", sim.DefaultUser+":"+sim.DefaultPassword+"@tcp("+ready["mysql"]+")/?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var dbName string
	if err := db.QueryRowContext(ctx, "SHOW DATABASES LIKE 'orders'").Scan(&dbName); err != nil || dbName != "orders" {
		t.Errorf("SHOW DATABASES LIKE 'orders': %q %v", dbName, err)
	}
	resp, err := http.Get(ready["control"] + "/state")
	if err != nil {
		t.Fatal(err)
	}
	var st sim.State
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if len(st.Nodes) != 3 || len(st.Faults) != 1 {
		t.Errorf("state: %d nodes, faults %v", len(st.Nodes), st.Faults)
	}

	// the written config: the key files beside it, named relatively
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, want := range []string{"name: sim", "addr: " + ready["mysql"], "password: " + sim.DefaultPassword,
		"addr: " + ready["ssh"], "key_file: " + sim.KeyFileName, "known_hosts: " + sim.KnownHostsName, "to: /backups", "sdb_admin: sdb-admin"} {
		if !strings.Contains(text, want) {
			t.Errorf("config lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "slack") {
		t.Errorf("config has a slack block:\n%s", text)
	}
	for _, f := range []string{sim.KeyFileName, sim.KnownHostsName} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(cfgPath), f)); err != nil {
			t.Errorf("beside the config: %v", err)
		}
	}
	// and the rest of the program accepts it
	var out, errOut bytes.Buffer
	if code := Main(ctx, &Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }},
		[]string{"config", "check", "--config", cfgPath}); code != 0 {
		t.Errorf("config check on the written config: exit %d\n%s%s\n%s", code, out.String(), errOut.String(), text)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after cancel; stderr: %s", code, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sim did not stop after ctx cancel")
	}
	if !strings.Contains(stderr.String(), "simulated cluster ready") {
		t.Errorf("stderr: %s", stderr)
	}
}

func TestSimCommandStopsOnInterrupt(t *testing.T) {
	t.Parallel()
	sigs := make(chan os.Signal, 1)
	env := &Env{Stderr: &simBuffer{}, Getenv: func(string) string { return "" }, Interrupts: sigs}
	ready, done := startSimCmd(t, t.Context(), env, "--leaves", "2")
	if ready.Config != "" || ready.SSH == "" {
		t.Errorf("ready = %+v", ready)
	}
	sigs <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sim did not stop on SIGTERM")
	}
}

func TestSimCommandRefusesBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--fault", "meltdown"}, "valid forms"},
		{[]string{"--fault", "leaf-offline:NOPE"}, "no node NOPE"},
		{[]string{"--leaves", "3"}, "even"},
		{[]string{"--aggregators", "-1"}, "--aggregators"},
		{[]string{"--stop-time", "0s"}, "--stop-time"},
		{[]string{"--databases", " , "}, "--databases"},
		{[]string{"--databases", "memsql"}, "system database"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
	} {
		var out, errOut bytes.Buffer
		code := Main(t.Context(), &Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}, append([]string{"sim"}, tc.args...))
		if code != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("sim %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out.String(), errOut.String(), tc.want)
		}
	}
}

// sdbmaint sim takes the service log flags: --log-format json gives JSON
// lines on stderr; an unknown format is a usage error naming the flag.
func TestSimLogFormat(t *testing.T) {
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := Main(context.Background(), env, []string{"sim", "--log-format", "xml"}); code != 2 || !strings.Contains(errb.String(), "--log-format") {
		t.Fatalf("exit %d, stderr %q; want 2 naming --log-format", code, errb.String())
	}
}
