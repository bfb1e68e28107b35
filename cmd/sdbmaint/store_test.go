package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sdbmaint/sdbmaint/bot"
	"github.com/sdbmaint/sdbmaint/bot/slackfake"
	"github.com/sdbmaint/sdbmaint/cluster/sim"
	"github.com/sdbmaint/sdbmaint/config"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
)

// testMySQLServerDSN is the MySQL-compatible server the shared store's
// tests use, as in runbook/mysqlstore: SDBMAINT_TEST_MYSQL_DSN (a DSN
// without a database; .ci/run sets it when root cannot log in over TCP), or
// root without a password on the local MariaDB that .ci/run starts.
func testMySQLServerDSN() string {
	if dsn := os.Getenv("SDBMAINT_TEST_MYSQL_DSN"); dsn != "" {
		return dsn
	}
	return "root@tcp(127.0.0.1:3306)/"
}

// testMySQLDatabase creates a database on that server for one test, drops
// it when the test ends, and returns its DSN; it skips the test when no
// server answers.
func testMySQLDatabase(t *testing.T) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(testMySQLServerDSN())
	if err != nil {
		t.Fatalf("SDBMAINT_TEST_MYSQL_DSN: %v", err)
	}
	cfg.Timeout = 3 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Skipf("no MySQL-compatible server as %s@%s (set SDBMAINT_TEST_MYSQL_DSN, or start MariaDB as .ci/run does): %v", cfg.User, cfg.Addr, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	cfg.DBName = "sdbmaint_test_" + hex.EncodeToString(b[:])
	if _, err := db.Exec("CREATE DATABASE `" + cfg.DBName + "` CHARACTER SET utf8mb4"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE `" + cfg.DBName + "`"); err != nil {
			t.Error(err)
		}
	})
	return cfg.FormatDSN()
}

// Whichever store the config names, serve gets the runs, the bot's card
// table and the window scheduler's store from it.
func TestOpenConfiguredStore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) config.Store
	}{
		{"sqlite", func(t *testing.T) config.Store { return config.Store{Path: filepath.Join(t.TempDir(), "sdbmaint.db")} }},
		{"mysql", func(t *testing.T) config.Store { return config.Store{MySQLDSN: config.Secret(testMySQLDatabase(t))} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cfg := &config.Config{Store: tc.store(t)}
			st, err := openConfiguredStore(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			run := runbook.NewRun("r1", runbook.StartRequest{Cluster: "prod", By: "U1"}, &runbook.Cluster{Name: "prod"}, time.Now())
			if existing, err := st.CreateRun(ctx, run); err != nil || existing != nil {
				t.Fatalf("CreateRun: %v, %v", existing, err)
			}
			cards, err := bot.NewSQLCardStore(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			if err := cards.SaveCard(ctx, "r1", "C1", "1.1"); err != nil {
				t.Fatal(err)
			}
			ws, err := st.WindowStore(ctx)
			if err != nil {
				t.Fatal(err)
			}
			w := windows.Window{ID: "w-1", Cluster: "prod", Spec: "0 2 * * SUN", Duration: time.Hour, Source: windows.FromSlack, CreatedBy: "U1", CreatedAt: time.Now()}
			if err := ws.AddWindow(ctx, w); err != nil {
				t.Fatal(err)
			}

			// A second replica (or a restart) sees all of it.
			again, err := openConfiguredStore(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if open, err := again.OpenRun(ctx, "prod"); err != nil || open == nil || open.ID != "r1" {
				t.Fatalf("OpenRun after reopening: %v, %v", open, err)
			}
			ws2, err := again.WindowStore(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if stored, err := ws2.StoredWindows(ctx); err != nil || len(stored) != 1 {
				t.Fatalf("StoredWindows after reopening: %v, %v", stored, err)
			}
		})
	}
}

func TestOpenConfiguredStoreKeepsTheDSNSecret(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{Store: config.Store{MySQLDSN: "sdbmaint:hunter2-secret@tcp(127.0.0.1:1)/sdbmaint"}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := openConfiguredStore(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v: want one that names the server and not the password", err)
	}
}

// appendConfig adds YAML to the end of the config file at path.
func appendConfig(t *testing.T, path, yaml string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(yaml); err != nil {
		t.Fatal(err)
	}
}

// responseTo waits for the reply to the slash command whose response_url
// is url and returns its text and blocks.
func responseTo(t *testing.T, fake *slackfake.Server, url string) slackfake.Response {
	t.Helper()
	var got slackfake.Response
	fake.WaitFor(t, "the reply to "+url, func() bool {
		for _, r := range fake.Responses() {
			if r.URL == url {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

// The bot keeps everything in the shared MySQL store that store.mysql_dsn
// names: the operator starts a run from Slack and an approver schedules a
// window; after a restart the bot finds the run's card in the database and
// the old card still works; history and windows read the same database; no
// SQLite file appears.
func TestServeWithSharedMySQLStore(t *testing.T) {
	t.Parallel()
	dsn := testMySQLDatabase(t)
	fake := slackfake.New(t)
	path := serveConfig(t, fake, "socket", freeAddr(t))
	appendConfig(t, path, "store:\n  mysql_dsn: ${SDBMAINT_STORE_DSN}\n")
	getenv := serveEnv("SDBMAINT_STORE_DSN", dsn)
	_, stop := startServe(t, getenv, "--config", path, "--drain-timeout", "20s")
	fake.WaitConnected(t, 1)
	tr := slackfake.SocketTransport{S: fake}

	fake.Command(t, tr, serveOperator, serveChannel, "start sim")
	var card slackfake.Message
	fake.WaitFor(t, "the run card at the backup gate", func() bool {
		for _, m := range fake.Messages(serveChannel) {
			if strings.HasPrefix(m.Text, "Maintenance of sim") && len(m.Buttons()) > 0 {
				card = m
				return true
			}
		}
		return false
	})
	sched := fake.SlashPayload(serveApprover, serveChannel, `schedule sim "CRON_TZ=UTC 0 2 * * SUN" duration=2h announce=1h`)
	tr.Deliver(t, "slash_commands", sched)
	if r := responseTo(t, fake, sched["response_url"]); !strings.Contains(r.Text+slackfake.Texts(r.Blocks), "CRON_TZ=UTC 0 2 * * SUN") {
		t.Fatalf("schedule reply: %q %s", r.Text, r.Blocks)
	}
	if code, stderr := stop(); code != 0 {
		t.Fatalf("serve exit %d:\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), config.DefaultStorePath)); !os.IsNotExist(err) {
		t.Errorf("an SQLite store appeared beside the config (stat: %v); everything belongs in MySQL", err)
	}

	// history and windows read the shared store.
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Getenv: getenv}
	if code := Main(context.Background(), env, []string{"history", "--config", path, "--cluster", "sim"}); code != 0 {
		t.Fatalf("history: exit %d: %s", code, errb.String())
	}
	wantContains(t, "history", out.String(), "sim  ACTIVE", "by "+serveOperator, "open: at backup")
	out.Reset()
	if code := Main(context.Background(), env, []string{"windows", "--config", path, "--cluster", "sim"}); code != 0 {
		t.Fatalf("windows: exit %d: %s", code, errb.String())
	}
	wantContains(t, "windows", out.String(), `"CRON_TZ=UTC 0 2 * * SUN"`, "scheduled from Slack by "+serveApprover)
	if strings.Contains(out.String(), "note:") {
		t.Errorf("windows left a note about the store:\n%s", out.String())
	}

	// Started again: the card, found in MySQL, is refreshed in place and
	// its buttons work.
	restartServeAndAbortFromOldCard(t, fake, tr, card, getenv, path)
}

// The terminal runbook with the shared store: the whole maintenance runs
// with every step recorded in MySQL, and a second run command sees no open
// run left behind.
func TestRunWithSharedMySQLStore(t *testing.T) {
	t.Parallel()
	dsn := testMySQLDatabase(t)
	c, path := startRunSim(t, sim.Options{Leaves: 2, Aggregators: 1})
	appendConfig(t, path, fmt.Sprintf("store:\n  mysql_dsn: %q\n", dsn))
	r := runCmd(t, "", nil, nil, "run", "--config", path, "--cluster", "sim", "--yes")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	wantContains(t, "stdout", r.stdout, "2/2 leaves stopped", "2/2 leaves recovered", "SUCCEEDED")
	simClean(t, c)

	h := runCmd(t, "", nil, nil, "history", "--config", path, "--json")
	if h.code != 0 {
		t.Fatalf("history: exit %d: %s", h.code, h.stderr)
	}
	var runs []historyRun
	if err := json.Unmarshal([]byte(h.stdout), &runs); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Status != string(runbook.RunSucceeded) || runs[0].StartedBy != "terminal:tester" || len(runs[0].Audit) == 0 {
		t.Fatalf("history from MySQL: %+v", runs)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), config.DefaultStorePath)); !os.IsNotExist(err) {
		t.Errorf("an SQLite store appeared beside the config (stat: %v)", err)
	}
}
