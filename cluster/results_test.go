package cluster

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// recorded is a result set as stored in testdata/results: what a server
// of one version returned for one statement.
type recorded struct {
	Statement string      `json:"statement"`
	Version   string      `json:"version"`
	Columns   []string    `json:"columns"`
	Rows      [][]*string `json:"rows"`
}

func loadRecorded(t testing.TB, name string) recorded {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "results", name))
	if err != nil {
		t.Fatal(err)
	}
	var r recorded
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for i, row := range r.Rows {
		if len(row) != len(r.Columns) {
			t.Fatalf("%s: row %d has %d values for %d columns", name, i+1, len(row), len(r.Columns))
		}
	}
	return r
}

func (r recorded) table() *table {
	t := &table{stmt: r.Statement, cols: r.Columns}
	for _, row := range r.Rows {
		out := make([]sql.NullString, len(row))
		for i, v := range row {
			if v != nil {
				out[i] = sql.NullString{String: *v, Valid: true}
			}
		}
		t.rows = append(t.rows, out)
	}
	return t
}

func loadTable(t testing.TB, name string) *table {
	return loadRecorded(t, name).table()
}

func TestParseLeaves(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []Leaf
	}{
		{"show_leaves_5x.json", []Leaf{
			{Host: "10.0.1.11", Port: 3306, AvailabilityGroup: 1, PairHost: "10.0.1.12", PairPort: 3306, State: "online"},
			{Host: "10.0.1.12", Port: 3306, AvailabilityGroup: 2, PairHost: "10.0.1.11", PairPort: 3306, State: "offline"},
		}},
		{"show_leaves_7.6.json", []Leaf{
			{Host: "10.0.1.11", Port: 3306, AvailabilityGroup: 1, PairHost: "10.0.1.12", PairPort: 3306, State: "online", NodeID: "3", RuntimeState: "online"},
			{Host: "10.0.1.12", Port: 3306, AvailabilityGroup: 2, PairHost: "10.0.1.11", PairPort: 3306, State: "recovering", NodeID: "4", RuntimeState: "recovering"},
		}},
		{"show_leaves_8.5.json", []Leaf{
			{Host: "127.0.0.1", Port: 3307, AvailabilityGroup: 1, PairHost: "127.0.0.1", PairPort: 3308, State: "online", NodeID: "3", RuntimeState: "online"},
			{Host: "127.0.0.1", Port: 3308, AvailabilityGroup: 2, PairHost: "127.0.0.1", PairPort: 3307, State: "online", NodeID: "4", RuntimeState: "online"},
			{Host: "127.0.0.1", Port: 3309, AvailabilityGroup: 1, State: "detached", NodeID: "5", RuntimeState: "offline"},
		}},
		{"show_leaves_info_schema.json", []Leaf{
			{Host: "10.0.1.11", Port: 3306, AvailabilityGroup: 1, PairHost: "10.0.1.12", PairPort: 3306, State: "online", NodeID: "3", RuntimeState: "online"},
			{Host: "10.0.1.12", Port: 3306, AvailabilityGroup: 2, PairHost: "10.0.1.11", PairPort: 3306, State: "offline", NodeID: "4", RuntimeState: "offline"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseLeaves(loadTable(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseAggregators(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []Aggregator
	}{
		{"show_aggregators_8.0_example.json", []Aggregator{
			{Host: "127.0.0.1", Port: 3306, State: "online", Master: true, NodeID: "4", RuntimeState: "online"},
			{Host: "192.168.1.116", Port: 3306, State: "online", NodeID: "5", RuntimeState: "online"},
		}},
		{"show_aggregators_9.1.json", []Aggregator{
			{Host: "127.0.0.1", Port: 3306, State: "online", Master: true, Role: "leader", NodeID: "1", RuntimeState: "online"},
			{Host: "127.0.0.1", Port: 3310, State: "offline", Role: "follower", NodeID: "2", RuntimeState: "offline"},
		}},
		{"show_aggregators_role_only.json", []Aggregator{
			{Host: "10.0.0.10", Port: 3306, State: "online", Master: true, Role: "leader", NodeID: "1"},
			{Host: "10.0.0.11", Port: 3306, State: "online", Role: "follower", NodeID: "2"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseAggregators(loadTable(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseClusterStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []DatabaseInstance
	}{
		{"show_cluster_status_5x.json", []DatabaseInstance{
			{Host: "10.0.1.11", Port: 3306, Database: "x_test", Role: InstanceReference, State: "replicating", Position: "0:57", Details: "stage: packet wait, state: x_streaming, err: no"},
			{Host: "10.0.1.11", Port: 3306, Database: "x_test_0", Role: InstanceMaster, State: "online", Position: "0:10"},
			{Host: "10.0.1.12", Port: 3306, Database: "x_test_0", Role: InstanceReplica, State: "replicating", Position: "0:10"},
			{Host: "10.0.1.12", Port: 3306, Database: "x_test_1", Role: InstanceOrphan, State: "online", Position: "0:10"},
		}},
		{"show_cluster_status_7col.json", []DatabaseInstance{
			{Host: "127.0.0.1", Port: 10001, Database: "x_test", Role: InstanceReference, State: "replicating", Position: "0:57", Details: "stage: packet wait, state: x_streaming, err: no"},
			{Host: "127.0.0.1", Port: 10001, Database: "x_test_0", Role: InstanceMaster, State: "online", Position: "0:10"},
			{Host: "127.0.0.1", Port: 10002, Database: "x_test_0", Role: InstanceReplica, State: "replicating", Position: "0:10"},
			{Host: "127.0.0.1", Port: 10002, Database: "x_test_1", Role: InstanceOrphan, State: "online", Position: "0:10"},
		}},
		{"show_cluster_status_8x.json", []DatabaseInstance{
			{NodeID: "3", Host: "127.0.0.1", Port: 3307, Database: "sales_0", Role: InstanceMaster, State: "online", Position: "0:1024"},
			{NodeID: "4", Host: "127.0.0.1", Port: 3308, Database: "sales_0", Role: InstanceReplica, State: "replicating", Position: "0:1024"},
			{NodeID: "3", Host: "127.0.0.1", Port: 3307, Database: "sales", Role: InstanceReference, State: "replicating", Position: "0:77"},
		}},
		{"show_cluster_status_mv.json", []DatabaseInstance{
			{NodeID: "3", Host: "127.0.0.1", Port: 3307, Database: "web_2", Role: InstanceMaster, State: "online", Position: "0:5"},
			{NodeID: "4", Host: "127.0.0.1", Port: 3308, Database: "web_2", Role: InstanceOrphan, State: "online", Position: "0:5"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseClusterStatus(loadTable(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParsePlan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []PlanStep
	}{
		{"explain_rebalance_7.3.json", []PlanStep{
			{Action: "COPY PARTITION", Ordinal: 3, TargetHost: "10.0.1.12", TargetPort: 3306, Phase: 1},
			{Action: "PROMOTE PARTITION WITH DROP", Ordinal: 3, TargetHost: "10.0.1.12", TargetPort: 3306, Phase: 2},
			{Action: "DROP PARTITION", Ordinal: 3, TargetHost: "10.0.1.11", TargetPort: 3306, Phase: 3},
		}},
		{"explain_rebalance_7.5.json", []PlanStep{
			{Action: "COPY PARTITION", Ordinal: 1, TargetHost: "127.0.0.1", TargetPort: 3308, Phase: 1},
			{Action: "DROP PARTITION WITH REPOINT", Ordinal: 1, TargetHost: "127.0.0.1", TargetPort: 3307, Phase: 2},
		}},
		{"explain_rebalance_empty.json", []PlanStep{}},
		{"explain_restore_redundancy_8.1.json", []PlanStep{
			{Action: "COPY PARTITION FORCE", Ordinal: 0, TargetHost: "127.0.0.1", TargetPort: 10002, Phase: 2},
			{Action: "COPY PARTITION FORCE", Ordinal: 1, TargetHost: "127.0.0.1", TargetPort: 10002, Phase: 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parsePlan(loadTable(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseDatabasesSkipsSystemDatabases(t *testing.T) {
	t.Parallel()
	got, err := parseDatabases(loadTable(t, "show_databases.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sales", "we`b", `it's "q"`, "with space", "Müller_数据", "cluster_backup"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	got, err = parseDatabases(loadTable(t, "show_databases_extended.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"web"}) {
		t.Errorf("EXTENDED: got %q, want [web]", got)
	}
}

func TestParseLatestBackups(t *testing.T) {
	t.Parallel()
	got, err := parseLatestBackups(loadTable(t, "mv_backup_history.json"), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{
		"sales": time.Date(2024, 5, 2, 3, 10, 0, 123456000, time.UTC), // the failed later one does not count
		"web":   time.Date(2024, 4, 20, 1, 0, 0, 0, time.UTC),         // unfinished (NULL) does not count
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	got, err = parseLatestBackups(loadTable(t, "mv_backup_history.json"), berlin)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 5, 2, 1, 10, 0, 123456000, time.UTC); !got["sales"].Equal(want) {
		t.Errorf("server in Berlin: got %v, want %v", got["sales"].UTC(), want)
	}
}

func TestParseVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want bool
	}{
		{"variable_select.json", true},
		{"variable_select_numeric.json", false},
		{"variable_show.json", false},
	}
	for _, tt := range tests {
		got, err := parseVariable(loadTable(t, tt.file), "leaf_failure_detection")
		if err != nil || got != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.file, got, err, tt.want)
		}
	}
}

// A result set that lacks what a check needs is an error that names the
// statement and the column, never a silent pass.
func TestParseErrorsNameStatementAndColumn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file  string
		parse func(*table) error
		want  []string
	}{
		{"show_leaves_no_state.json", func(t *table) error { _, err := parseLeaves(t); return err },
			[]string{"SHOW LEAVES", "State", "columns: Host, Port, Availability_Group, NodeId"}},
		{"show_leaves_bad_port.json", func(t *table) error { _, err := parseLeaves(t); return err },
			[]string{"SHOW LEAVES", "column Port, row 1", `"33o6" is not a number`}},
		{"show_aggregators_no_port.json", func(t *table) error { _, err := parseAggregators(t); return err },
			[]string{"SHOW AGGREGATORS", "Port"}},
		{"show_cluster_status_no_role.json", func(t *table) error { _, err := parseClusterStatus(t); return err },
			[]string{"SHOW CLUSTER STATUS", "Role"}},
		{"explain_no_action.json", func(t *table) error { _, err := parsePlan(t); return err },
			[]string{"EXPLAIN RESTORE REDUNDANCY ON `db`", "Action"}},
		{"mv_backup_history_no_status.json", func(t *table) error { _, err := parseLatestBackups(t, time.UTC); return err },
			[]string{"MV_BACKUP_HISTORY", "STATUS"}},
		{"mv_backup_history_bad_time.json", func(t *table) error { _, err := parseLatestBackups(t, time.UTC); return err },
			[]string{"END_TIMESTAMP", `"yesterday" is not a timestamp`}},
		{"variable_show_empty.json", func(t *table) error { _, err := parseVariable(t, "leaf_failure_detection"); return err },
			[]string{"SHOW GLOBAL VARIABLES", "does not know leaf_failure_detection"}},
		{"variable_select_weird.json", func(t *table) error { _, err := parseVariable(t, "leaf_failure_detection"); return err },
			[]string{"leaf_failure_detection", `"maybe"`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			err := tt.parse(loadTable(t, tt.file))
			if err == nil {
				t.Fatal("parsed without error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestColumnNamesFold(t *testing.T) {
	t.Parallel()
	tb := &table{stmt: "X", cols: []string{"Node ID", "MASTER_HOST", "Host"}}
	if i := tb.find("NodeId"); i != 0 {
		t.Errorf("NodeId found at %d, want 0", i)
	}
	if i := tb.find("host"); i != 2 {
		t.Errorf("host found at %d, want 2 (not Master Host)", i)
	}
	if i := tb.find("Port"); i != -1 {
		t.Errorf("Port found at %d, want -1", i)
	}
}
