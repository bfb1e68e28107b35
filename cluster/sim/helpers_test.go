package sim_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

// startSim starts a cluster that the test closes.
func startSim(t *testing.T, opts sim.Options) *sim.Cluster {
	t.Helper()
	c, err := sim.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dsn(addr, params string) string {
	d := sim.DefaultUser + ":" + sim.DefaultPassword + "@tcp(" + addr + ")/?timeout=5s&readTimeout=10s"
	if params != "" {
		d += "&" + params
	}
	return d
}

// openDB opens a go-sql-driver pool against addr.
func openDB(t *testing.T, addr string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn(addr, ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// result is a result set read as text, NULL as "NULL".
type result struct {
	cols []string
	rows [][]string
}

func (r result) col(t *testing.T, name string) int {
	t.Helper()
	for i, c := range r.cols {
		if c == name {
			return i
		}
	}
	t.Fatalf("no column %q in %v", name, r.cols)
	return -1
}

// where returns the rows whose column name equals value.
func (r result) where(t *testing.T, name, value string) [][]string {
	t.Helper()
	i := r.col(t, name)
	var out [][]string
	for _, row := range r.rows {
		if row[i] == value {
			out = append(out, row)
		}
	}
	return out
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func tryQuery(db querier, q string, args ...any) (result, error) {
	var r result
	rows, err := db.QueryContext(context.Background(), q, args...)
	if err != nil {
		return r, err
	}
	defer rows.Close()
	if r.cols, err = rows.Columns(); err != nil {
		return r, err
	}
	for rows.Next() {
		cells := make([]sql.NullString, len(r.cols))
		ptrs := make([]any, len(cells))
		for i := range cells {
			ptrs[i] = &cells[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return r, err
		}
		row := make([]string, len(cells))
		for i, c := range cells {
			row[i] = "NULL"
			if c.Valid {
				row[i] = c.String
			}
		}
		r.rows = append(r.rows, row)
	}
	return r, rows.Err()
}

func query(t *testing.T, db querier, q string, args ...any) result {
	t.Helper()
	r, err := tryQuery(db, q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// wantSQLError checks that err is a MySQL error with the number and a
// message containing want.
func wantSQLError(t *testing.T, err error, number uint16, want string) {
	t.Helper()
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		t.Fatalf("error = %v, want MySQL error %d", err, number)
	}
	if me.Number != number || !strings.Contains(me.Message, want) {
		t.Fatalf("error = %d %q, want %d containing %q", me.Number, me.Message, number, want)
	}
}

// quote is backtick quoting with doubled backticks.
func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

func node(t *testing.T, s sim.State, id string) sim.NodeState {
	t.Helper()
	for _, n := range s.Nodes {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("no node %s", id)
	return sim.NodeState{}
}

func addrOf(t *testing.T, c *sim.Cluster, id string) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", node(t, c.State(), id).Port)
}

// waitState waits for cond with a deadline.
func waitState(t *testing.T, c *sim.Cluster, what string, cond func(sim.State) bool) sim.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := c.Wait(ctx, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return s
}

// sshClient dials the toolbox host with the files the cluster writes,
// verifying its host key against known_hosts.
func sshClient(t *testing.T, c *sim.Cluster) *ssh.Client {
	t.Helper()
	f, err := c.Files(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hostKeys, err := knownhosts.New(f.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ssh.Dial("tcp", c.SSHAddr(), &ssh.ClientConfig{
		User:            f.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(c.ClientSigner())},
		HostKeyCallback: hostKeys,
		Timeout:         5 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh dial: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

type cmdResult struct {
	stdout, stderr string
	code           int
	err            error // not an ExitError: the session failed
}

// runSSH runs one command in a new session.
func runSSH(t *testing.T, cl *ssh.Client, cmd string) cmdResult {
	t.Helper()
	s, err := cl.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	err = s.Run(cmd)
	r := cmdResult{stdout: out.String(), stderr: errb.String()}
	var ee *ssh.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitStatus()
	case err != nil:
		r.err = err
	}
	return r
}

// admin runs an sdb-admin command that must succeed.
func admin(t *testing.T, cl *ssh.Client, args string) string {
	t.Helper()
	r := runSSH(t, cl, "sdb-admin "+args)
	if r.err != nil || r.code != 0 {
		t.Fatalf("sdb-admin %s: code %d err %v\nstdout: %s\nstderr: %s", args, r.code, r.err, r.stdout, r.stderr)
	}
	return r.stdout
}

func stopNode(t *testing.T, cl *ssh.Client, id string) {
	t.Helper()
	admin(t, cl, "stop-node --memsql-id "+id+" --yes")
}

func startNode(t *testing.T, cl *ssh.Client, id string) {
	t.Helper()
	admin(t, cl, "start-node --memsql-id "+id+" --yes")
}

// refuses reports whether nothing listens on addr.
func refuses(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return true
	}
	conn.Close()
	return false
}

func allRecovered(s sim.State) bool {
	for _, n := range s.Nodes {
		if n.Process != "running" || n.Recovery != "Online" {
			return false
		}
	}
	return true
}

func hasViolation(s sim.State, rule string) bool {
	for _, v := range s.Violations {
		if v.Rule == rule {
			return true
		}
	}
	return false
}
