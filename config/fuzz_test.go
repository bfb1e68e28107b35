package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must return a Config or
// Errors, never panic, and every error must say something.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("a: &a [*a, *a]\nclusters: *a\n"))
	f.Add([]byte("clusters: [{<<: {name: x}, name: y}]\n"))
	f.Add([]byte("clusters:\n - name: x\n   windows: [{schedule: \"TZ= 0\"}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(bytes.NewReader(data), designEnv)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Parse error is %T %v, want non-empty Errors", err, err)
			}
			for _, e := range errs {
				if e.Msg == "" {
					t.Fatalf("empty message in %#v", errs)
				}
			}
			return
		}
		if len(cfg.Clusters) == 0 {
			t.Fatal("valid config without clusters")
		}
		for _, c := range cfg.Clusters {
			if !clusterName.MatchString(c.Name) || c.SQL.Addr == "" || c.RecoveryTimeout <= 0 {
				t.Fatalf("valid config with a bad cluster: %+v", c)
			}
			if c.AutoApproves("stop") {
				t.Fatal("stop auto-approved")
			}
		}
	})
}
