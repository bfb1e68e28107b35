package cluster

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// QuoteIdent returns name as a backtick-quoted SQL identifier, with every
// backtick inside it doubled. It is the one way a database name reaches a
// statement.
func QuoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

var clusterDR = regexp.MustCompile(`^cluster_[0-9]+$`)

// IsSystemDatabase reports whether name is a system database that the
// runbook never snapshots, backs up or explains: information_schema,
// memsql, cluster and its DR copies cluster_N, and the older names
// sharding and sharding_*.
func IsSystemDatabase(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "information_schema", "memsql", "cluster", "sharding":
		return true
	}
	return clusterDR.MatchString(n) || (strings.HasPrefix(n, "sharding_") && len(n) > len("sharding_"))
}

// quoteBackupPath returns path as a double-quoted string literal for
// BACKUP DATABASE ... TO "path". Backslashes mean different things under
// different sql_modes (NO_BACKSLASH_ESCAPES), so rather than escape we
// refuse the characters that would need it.
func quoteBackupPath(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("backup target is empty")
	}
	for _, r := range path {
		switch {
		case r == '"' || r == '\\':
			return "", fmt.Errorf("backup target %q contains %q, which cannot be quoted safely", path, r)
		case r == unicode.ReplacementChar || unicode.IsControl(r):
			return "", fmt.Errorf("backup target %q contains a control or invalid character", path)
		}
	}
	return `"` + path + `"`, nil
}

var nodeIDPattern = regexp.MustCompile(`^[0-9A-Fa-f]{8,64}$`)

// ValidNodeID reports whether id looks like a memsqlId (8 to 64 hex
// digits): only such IDs are put on an sdb-admin command line.
func ValidNodeID(id string) bool {
	return nodeIDPattern.MatchString(id)
}

// shellWord matches one word that needs no shell quoting.
var shellWord = regexp.MustCompile(`^[A-Za-z0-9_./+:=@%-]+$`)

// validCommand checks a configured command (such as "sdb-admin" or
// "sudo -n /opt/bin/sdb-admin"): words separated by single spaces, each
// free of shell metacharacters, so it can be put in front of arguments
// without quoting.
func validCommand(cmd string) error {
	if strings.TrimSpace(cmd) == "" {
		return fmt.Errorf("command is empty")
	}
	for _, w := range strings.Split(cmd, " ") {
		if w != "" && !shellWord.MatchString(w) {
			return fmt.Errorf("command %q: word %q contains characters a shell would interpret; use a plain path", cmd, w)
		}
	}
	return nil
}
