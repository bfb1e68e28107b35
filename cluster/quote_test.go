package cluster

import (
	"strings"
	"testing"
)

func TestQuoteIdent(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"sales", "`sales`"},
		{"we`b", "`we``b`"},
		{"``", "``````"},
		{"with space", "`with space`"},
		{`it's "q"`, "`it's \"q\"`"},
		{"Müller_数据", "`Müller_数据`"},
		{"x`; DROP DATABASE y; --", "`x``; DROP DATABASE y; --`"},
		{"", "``"},
	}
	for _, tt := range tests {
		if got := QuoteIdent(tt.in); got != tt.want {
			t.Errorf("QuoteIdent(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestIsSystemDatabase(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"information_schema", "INFORMATION_SCHEMA", "memsql", "cluster", "cluster_1", "cluster_18446744073709551615", "sharding", "sharding_dr"} {
		if !IsSystemDatabase(name) {
			t.Errorf("IsSystemDatabase(%q) = false", name)
		}
	}
	for _, name := range []string{"sales", "clusters", "cluster_", "cluster_x1", "cluster_backup", "sharding_", "mysql", "metrics", "memsql2"} {
		if IsSystemDatabase(name) {
			t.Errorf("IsSystemDatabase(%q) = true", name)
		}
	}
}

func TestBackupStmtQuotesOrRefuses(t *testing.T) {
	t.Parallel()
	got, err := BackupStmt("we`b", "/backups/2024 May/ü")
	if err != nil {
		t.Fatal(err)
	}
	if want := "BACKUP DATABASE `we``b` TO \"/backups/2024 May/ü\""; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for _, bad := range []string{"", `/b"ackups`, `/back\ups`, "/backups\n", "/b\x00"} {
		if _, err := BackupStmt("sales", bad); err == nil {
			t.Errorf("BackupStmt accepted target %q", bad)
		}
	}
}

func TestValidNodeID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"DEADBEEF", "9F3A1C2B4D5E6F708192A3B4C5D6E7F801234567", "c0ffee00c0ffee00"} {
		if !ValidNodeID(id) {
			t.Errorf("ValidNodeID(%q) = false", id)
		}
	}
	for _, id := range []string{"", "DEADBEE", "9F3A; rm -rf /", "-h", "DEADBEEF ", "XYZ12345", strings.Repeat("A", 65)} {
		if ValidNodeID(id) {
			t.Errorf("ValidNodeID(%q) = true", id)
		}
	}
}

func TestValidCommand(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"sdb-admin", "/opt/singlestore/bin/sdb-admin", "sudo -n -u memsql sdb-admin"} {
		if err := validCommand(c); err != nil {
			t.Errorf("validCommand(%q): %v", c, err)
		}
	}
	for _, c := range []string{"", "  ", "sdb-admin; rm -rf /", "sdb-admin $(id)", "sdb-admin|tee", "sdb-admin `x`", "sdb-admin > f", "a\nb", "'sdb-admin'"} {
		if err := validCommand(c); err == nil {
			t.Errorf("validCommand(%q) accepted", c)
		}
	}
}
