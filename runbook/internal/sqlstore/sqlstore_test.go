package sqlstore

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestUnixNanosRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 29, 1, 30, 0, 5, time.FixedZone("CEST", 2*3600))
	n := UnixNanos.Encode(at)
	// The drivers hand an integer column back as int64 (SQLite, MySQL's
	// binary protocol) or as its digits (MySQL's text protocol).
	digits := fmt.Sprint(n)
	for _, src := range []any{n, []byte(digits), digits} {
		got, err := UnixNanos.Decode(src)
		if err != nil || !got.Equal(at) || got.Location() != time.UTC {
			t.Errorf("Decode(%#v) = %v, %v; want %v in UTC", src, got, err, at)
		}
	}
	if n := UnixNanos.Encode(time.Time{}); n != int64(0) {
		t.Errorf("the zero time is stored as %v, want 0", n)
	}
	for _, src := range []any{int64(0), nil} {
		if got, err := UnixNanos.Decode(src); err != nil || !got.IsZero() {
			t.Errorf("Decode(%#v) = %v, %v; want the zero time", src, got, err)
		}
	}
	for _, src := range []any{[]byte("yesterday"), 1.5} {
		if _, err := UnixNanos.Decode(src); err == nil {
			t.Errorf("Decode(%#v) succeeded, want an error", src)
		}
	}
}

func TestSplitStatements(t *testing.T) {
	t.Parallel()
	step := `
-- a comment about the table
CREATE TABLE a (
	id INT -- trailing; not the end
);
CREATE INDEX a_id ON a (id);
-- a comment alone at the end;
`
	want := []string{"-- a comment about the table\nCREATE TABLE a (\n\tid INT -- trailing; not the end\n)", "CREATE INDEX a_id ON a (id)"}
	if got := splitStatements(step); !reflect.DeepEqual(got, want) {
		t.Errorf("splitStatements = %q, want %q", got, want)
	}
	if got := splitStatements("CREATE TABLE b (id INT)"); !reflect.DeepEqual(got, []string{"CREATE TABLE b (id INT)"}) {
		t.Errorf("a step without ';' = %q, want it whole", got)
	}
}

func TestValuesList(t *testing.T) {
	t.Parallel()
	if got, want := valuesList(3, 2), "(?, ?, ?), (?, ?, ?)"; got != want {
		t.Errorf("valuesList(3, 2) = %q, want %q", got, want)
	}
	if got, want := valuesList(1, 1), "(?)"; got != want {
		t.Errorf("valuesList(1, 1) = %q, want %q", got, want)
	}
}
