package sim_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

// The real mariadb command-line client reads SHOW LEAVES from the MA: the
// proof that the listener speaks the MySQL protocol, not just what
// go-sql-driver tolerates.
func TestMariaDBClientReadsShowLeaves(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("mariadb")
	if err != nil {
		if bin, err = exec.LookPath("mysql"); err != nil {
			t.Skip("no mariadb or mysql client installed (CI installs mariadb-client)")
		}
	}
	c := startSim(t, sim.Options{})
	host, port, _ := strings.Cut(c.MySQLAddr(), ":")
	run := func(password, stmt string) (string, error) {
		cmd := exec.CommandContext(t.Context(), bin, "--skip-ssl", "-h", host, "-P", port, "-u", sim.DefaultUser, "-p"+password, "-e", stmt)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(sim.DefaultPassword, "SHOW LEAVES")
	if err != nil {
		t.Fatalf("%s SHOW LEAVES: %v\n%s", bin, err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "Host\tPort\tAvailability_Group\tPair_Host\tPair_Port\tState") {
		t.Fatalf("output:\n%s", out)
	}
	for _, l := range lines[1:] {
		if f := strings.Split(l, "\t"); len(f) != 12 || f[5] != "online" || f[9] != "NULL" {
			t.Errorf("row %q", l)
		}
	}
	// several statements in one go, as the CLI sends them
	out, err = run(sim.DefaultPassword, "SNAPSHOT DATABASE `sales`; SELECT @@leaf_failure_detection")
	if err != nil || !strings.Contains(out, "@@leaf_failure_detection\n1") {
		t.Errorf("multi-statement: %v\n%s", err, out)
	}
	out, err = run(sim.DefaultPassword, "FLUSH EVERYTHING")
	if err == nil || !strings.Contains(out, "ERROR 1064") || !strings.Contains(out, "FLUSH EVERYTHING") {
		t.Errorf("unknown statement: %v\n%s", err, out)
	}
	out, err = run("wrong", "SELECT 1")
	if err == nil || !strings.Contains(out, "ERROR 1045") {
		t.Errorf("wrong password: %v\n%s", err, out)
	}
}
