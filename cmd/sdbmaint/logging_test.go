package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestLogFlagsJSONCarriesFields(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	lf := addLogFlags(fs, "info")
	if err := fs.Parse([]string{"--log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log, err := lf.logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.With("run", "r1", "cluster", "prod").Info("step done", "phase", "stop", "node", "9F3A")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	for k, want := range map[string]string{"run": "r1", "cluster": "prod", "phase": "stop", "node": "9F3A", "msg": "step done"} {
		if line[k] != want {
			t.Errorf("%s = %v, want %q", k, line[k], want)
		}
	}
}

func TestLogFlagsRefuseUnknownValues(t *testing.T) {
	for _, args := range [][]string{{"--log-format", "xml"}, {"--log-level", "loud"}} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		lf := addLogFlags(fs, "info")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		_, err := lf.logger(io.Discard)
		if err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: err = %v, want one naming %s", args, err, args[0])
		}
	}
}
