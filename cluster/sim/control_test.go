package sim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

func TestControlEndpoint(t *testing.T) {
	t.Parallel()
	c := startSim(t, sim.Options{})
	db := openDB(t, c.MySQLAddr())
	mustExec(t, db, "SNAPSHOT DATABASE `sales`")

	resp, err := http.Get(c.ControlURL() + "/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /state: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"faults", "leaf_failure_detection", "log", "nodes", "partitions", "violations"}; !slices.Equal(keys, want) {
		t.Errorf("state keys %v, want %v", keys, want)
	}
	var nodes []map[string]any
	json.Unmarshal(raw["nodes"], &nodes)
	if len(nodes) != 7 {
		t.Fatalf("nodes = %v", nodes)
	}
	for _, k := range []string{"id", "role", "host", "port", "process", "state", "recovery"} {
		if _, ok := nodes[0][k]; !ok {
			t.Errorf("node lacks %q: %v", k, nodes[0])
		}
	}
	if nodes[0]["role"] != "master" || nodes[0]["process"] != "running" || nodes[0]["state"] != "online" || nodes[0]["recovery"] != "Online" {
		t.Errorf("master node %v", nodes[0])
	}
	var parts map[string]int
	json.Unmarshal(raw["partitions"], &parts)
	if parts["master"] != 16 || parts["replica"] != 16 || parts["orphan"] != 0 {
		t.Errorf("partitions %v", parts)
	}
	var log []map[string]string
	json.Unmarshal(raw["log"], &log)
	if len(log) != 1 || log[0]["via"] != "sql" || log[0]["node"] != c.Master() || log[0]["text"] != "SNAPSHOT DATABASE `sales`" || log[0]["at"] == "" {
		t.Errorf("log %v", log)
	}

	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(c.ControlURL()+"/faults", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("leaf-offline:" + c.Leaves()[0] + "\n"); code != 200 {
		t.Errorf("POST good fault: %d %s", code, body)
	}
	if s := c.State(); len(s.Faults) != 1 || node(t, s, c.Leaves()[0]).State != "offline" {
		t.Errorf("after POST: faults %v", s.Faults)
	}
	code, body := post("leaf-offline:nobody")
	if code != 400 || !strings.Contains(body, "no node NOBODY") || !strings.Contains(body, "slow:DURATION") {
		t.Errorf("POST bad fault: %d %s", code, body)
	}
	if code, body := post("clear"); code != 200 || len(c.State().Faults) != 0 {
		t.Errorf("POST clear: %d %s", code, body)
	}
	resp2, err := http.Get(c.ControlURL() + "/faults")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /faults: %s", resp2.Status)
	}
}
