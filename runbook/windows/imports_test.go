package windows_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoOutsideTechnology: the scheduler is runbook code and knows
// nothing of Slack, SSH, MySQL or SQLite; the bot and the store adapt it.
func TestImportsNoOutsideTechnology(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "github.com/sdbmaint/sdbmaint/runbook/windows").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/slack-go/", "golang.org/x/crypto/ssh", "github.com/go-sql-driver/", "modernc.org/sqlite", "github.com/sdbmaint/sdbmaint/bot", "github.com/sdbmaint/sdbmaint/cluster"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("runbook/windows depends on %s", dep)
			}
		}
	}
}
