package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sdbmaint/sdbmaint/bot"
	"github.com/sdbmaint/sdbmaint/config"
	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/windows"
)

// testMySQLDatabase creates a database on the local MariaDB (as .ci/run
// starts it) for one test and returns its DSN, or skips the test.
func testMySQLDatabase(t *testing.T) string {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.Timeout = "root", "tcp", "127.0.0.1:3306", 3*time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Skipf("no MariaDB as root on 127.0.0.1:3306 (.ci/run starts one): %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	cfg.DBName = "sdbmaint_test_" + hex.EncodeToString(b[:])
	if _, err := db.Exec("CREATE DATABASE `" + cfg.DBName + "`"); err != nil {
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
