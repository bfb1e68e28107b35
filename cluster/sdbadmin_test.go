package cluster

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sdbmaint/sdbmaint/runbook"
)

func readListNodes(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "listnodes", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseListNodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []runbook.Node
	}{
		{"sdb_admin_9.x.json", []runbook.Node{
			{ID: "9F3A1C2B4D5E6F708192A3B4C5D6E7F801234567", Role: runbook.RoleMaster, Host: "10.0.0.10", Port: 3306, Running: true, Connectable: true, RecoveryState: "Online", Version: "8.9.3"},
			{ID: "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678", Role: runbook.RoleAggregator, Host: "10.0.0.11", Port: 3306, Running: true, Connectable: true, RecoveryState: "Online", Version: "8.9.3"},
			{ID: "B1B2C3D4E5F60718293A4B5C6D7E8F9012345678", Role: runbook.RoleLeaf, Host: "10.0.1.11", Port: 3307, RecoveryState: "Recovering", AvailabilityGroup: 1, Version: "8.9.3"},
		}},
		{"numeric_nodeid_strings.json", []runbook.Node{
			{ID: "C0FFEE00C0FFEE00", Role: runbook.RoleLeaf, Host: "127.0.0.1", Port: 3308, Running: true, Connectable: true, RecoveryState: "Online", AvailabilityGroup: 2, Version: "7.8.19"},
			{ID: "C0FFEE00C0FFEE01", Role: runbook.RoleUnknown, Host: "127.0.0.1", Port: 3309},
		}},
		{"memsqlctl_no_host.json", []runbook.Node{
			{ID: "DEADBEEF01", Role: runbook.RoleLeaf, Host: "10.0.1.11", Port: 3307, Running: true, Connectable: true, RecoveryState: "Online", AvailabilityGroup: 1, Version: "7.3.2"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseListNodes(readListNodes(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseListNodesRefusesBadOutput(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"not_json.txt":  "not JSON",
		"bad_id.json":   `memsqlId "9F3A; rm -rf /"`,
		"no_nodes.json": `no "nodes" list`,
		"bad_port.json": `"x" is not an integer`,
	}
	for file, want := range tests {
		_, err := parseListNodes(readListNodes(t, file))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error mentioning %s", file, err, want)
		}
	}
	if _, err := parseListNodes(nil); err == nil {
		t.Error("empty output parsed")
	}
}
