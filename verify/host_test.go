package verify

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	t.Parallel()
	good := []string{"/opt/pkgs/singlestoredb-server-8.9.3.tar.gz", "/a b/it's $(x) `y` \\z", "/ü"}
	for _, p := range good {
		if err := checkPath(p); err != nil {
			t.Errorf("checkPath(%q) = %v, want nil", p, err)
		}
	}
	bad := map[string]string{
		"":                              "empty",
		"pkgs/x.tar.gz":                 "not an absolute path",
		"/x\ny":                         "control character",
		"/x\x00y":                       "control character",
		"/x\ry":                         "control character",
		"/x\x1b[31m":                    "control character",
		"/" + "\xff":                    "UTF-8",
		"/" + strings.Repeat("a", 5000): "longer than",
	}
	for p, want := range bad {
		err := checkPath(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkPath(%q) = %v, want an error containing %q", p, err, want)
		}
	}
}

func TestShellQuoteRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "it's", "''", `a\b`, "$(touch /tmp/x)", "`id`", "a b\tc", "!*?[]{}~#;&|<>"} {
		got, err := exec.Command("/bin/sh", "-c", "printf %s "+shellQuote(s)).Output()
		if err != nil {
			t.Fatalf("sh with %q: %v", s, err)
		}
		if string(got) != s {
			t.Errorf("shell saw %q, want %q", got, s)
		}
	}
}

func FuzzShellQuote(f *testing.F) {
	f.Add("it's")
	f.Add("$(id)")
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) {
			return // not representable in a shell word; checkPath refuses it
		}
		got, err := exec.Command("/bin/sh", "-c", "printf %s "+shellQuote(s)).Output()
		if err != nil {
			t.Fatalf("sh with %q: %v", s, err)
		}
		if string(got) != s {
			t.Fatalf("shell saw %q, want %q", got, s)
		}
	})
}

const sum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseSHA256Sum(t *testing.T) {
	t.Parallel()
	ok := []struct{ line, path string }{
		{sum + "  /opt/p.tar.gz", "/opt/p.tar.gz"},
		{sum + " */opt/p.tar.gz", "/opt/p.tar.gz"},
		{`\` + sum + `  /opt/a\\b`, `/opt/a\b`},
		{sum + "  /opt/it's here", "/opt/it's here"},
	}
	for _, c := range ok {
		got, err := parseSHA256Sum(c.line, c.path)
		if err != nil || got != sum {
			t.Errorf("parseSHA256Sum(%q) = %q, %v; want the digest", c.line, got, err)
		}
	}
	bad := []struct{ line, path, want string }{
		{"", "/p", "unexpected"},
		{sum, "/p", "unexpected"},
		{strings.ToUpper(sum) + "  /p", "/p", "not a hex digest"},
		{sum[:63] + "g  /p", "/p", "not a hex digest"},
		{sum + "\t/p", "/p", "unexpected"},
		{sum + "  /other", "/p", `reported file "/other"`},
		{sum + "  /p ", "/p", "reported file"},
		{"sha256sum: /p: No such file or directory", "/p", "unexpected"},
	}
	for _, c := range bad {
		_, err := parseSHA256Sum(c.line, c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseSHA256Sum(%q) = %v, want an error containing %q", c.line, err, c.want)
		}
	}
}

func FuzzParseSHA256Sum(f *testing.F) {
	f.Add(sum+"  /p", "/p")
	f.Add(`\`+sum+`  /a\\b`, `/a\b`)
	f.Fuzz(func(t *testing.T, line, path string) {
		got, err := parseSHA256Sum(line, path)
		if err != nil {
			return
		}
		if len(got) != 64 || strings.Trim(got, "0123456789abcdef") != "" {
			t.Fatalf("accepted %q as a digest from %q", got, line)
		}
	})
}

func TestHashOnHostRealSHA256Sum(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := dir + "/it's a \\ $(x) pkg.tar.gz"
	writeFile(t, p, []byte("hello"))
	got, err := hashOnHost(context.Background(), local, p)
	if err != nil {
		t.Fatal(err)
	}
	const want = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	if got != want {
		t.Fatalf("digest %s, want %s", got, want)
	}
}

func TestReadBundleOnHost(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	content := []byte(strings.Repeat(`{"mediaType":"x"}`, 10000)) // one long line, 170 kB
	writeFile(t, dir+"/b.sig", content)
	got, err := readBundleOnHost(ctx, local, dir+"/b.sig")
	if err != nil || string(got) != string(content) {
		t.Fatalf("read %d bytes, err %v; want the %d bytes written", len(got), err, len(content))
	}
	if _, err := readBundleOnHost(ctx, local, dir+"/none.sig"); err != errMissingBundle {
		t.Fatalf("missing bundle: err %v, want errMissingBundle", err)
	}
	if _, err := readBundleOnHost(ctx, local, dir); err == nil || !strings.Contains(err.Error(), "not a readable regular file") {
		t.Fatalf("directory as bundle: err %v, want it named unreadable", err)
	}
	big := make([]byte, MaxBundleSize+100)
	writeFile(t, dir+"/big.sig", big)
	got, err = readBundleOnHost(ctx, local, dir+"/big.sig")
	if err != nil || len(got) != MaxBundleSize+1 {
		t.Fatalf("oversized bundle: read %d bytes, err %v; want %d bytes, the limit plus one", len(got), err, MaxBundleSize+1)
	}
}
