package runbook

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoOutsideSystemsInRunbook keeps the heart of sdbmaint free of Slack,
// SSH, MySQL and SQLite: it talks to them only through the interfaces it
// declares, and the adapters live in their own packages.
func TestNoOutsideSystemsInRunbook(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{"github.com/slack-go/", "golang.org/x/crypto/ssh", "github.com/go-sql-driver/", "modernc.org/sqlite",
		"github.com/sdbmaint/sdbmaint/cluster", "github.com/sdbmaint/sdbmaint/bot", "github.com/sdbmaint/sdbmaint/config"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("runbook depends on %s", dep)
			}
		}
	}
}
