package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
	querypb "github.com/dolthub/vitess/go/vt/proto/query"
	"github.com/dolthub/vitess/go/vt/sqlparser"
)

// replayServer is a MySQL-protocol server (dolthub/vitess) that answers
// each statement with a recorded result set from testdata: a master
// aggregator of one particular version, seen through the real driver.
// Statements it has no answer for get a syntax error, as a real server's
// would; prepared statements fail the test.
type replayServer struct {
	t        *testing.T
	listener *mysql.Listener
	Addr     string

	// stop ends held statements when the test ends.
	stop context.Context

	mu      sync.Mutex
	answers map[string]replayAnswer
	seen    []string
}

// replayAnswer is one statement's answer: a result set, an error, or an
// OK packet when both are zero.
type replayAnswer struct {
	result *recorded
	errNum int
	errMsg string
	delay  time.Duration
	// hold, if set, is called before answering, with the statement's
	// context (canceled when the client goes away).
	hold func(ctx context.Context)
}

const (
	replayUser     = "sdbmaint"
	replayPassword = "s3cret"
)

func startReplayServer(t *testing.T) *replayServer {
	t.Helper()
	stop, cancel := context.WithCancel(context.Background())
	s := &replayServer{t: t, answers: map[string]replayAnswer{}, stop: stop}
	auth := mysql.NewAuthServerStatic("", fmt.Sprintf(`{%q: [{"Password": %q}]}`, replayUser, replayPassword), 0)
	l, err := mysql.NewListener("tcp", "127.0.0.1:0", auth, s, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.listener, s.Addr = l, l.Addr().String()
	go l.Accept()
	t.Cleanup(func() {
		cancel()
		l.Close()
	})
	return s
}

// answer makes stmt return the recorded result set in testdata/results/file.
func (s *replayServer) answer(stmt, file string) {
	r := loadRecorded(s.t, file)
	s.set(stmt, replayAnswer{result: &r})
}

func (s *replayServer) set(stmt string, a replayAnswer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[stmt] = a
}

// get returns the answer to stmt.
func (s *replayServer) get(stmt string) replayAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answers[stmt]
}

// statements returns every statement received, in order.
func (s *replayServer) statements() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func (s *replayServer) client(t *testing.T, edit func(*SQLOptions)) *Client {
	t.Helper()
	opts := SQLOptions{Addr: s.Addr, User: replayUser, Password: replayPassword, ConnectTimeout: 5 * time.Second, StatementTimeout: 5 * time.Second}
	if edit != nil {
		edit(&opts)
	}
	c, err := NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (s *replayServer) ComQuery(ctx context.Context, _ *mysql.Conn, query string, callback mysql.ResultSpoolFn) error {
	s.mu.Lock()
	s.seen = append(s.seen, query)
	a, ok := s.answers[query]
	s.mu.Unlock()
	if !ok {
		return mysql.NewSQLError(mysql.ERParseError, "42000", "You have an error in your SQL syntax near '%s'", query)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.stop, cancel)()
	if a.delay > 0 {
		select {
		case <-time.After(a.delay):
		case <-ctx.Done():
		}
	}
	if a.hold != nil {
		a.hold(ctx)
	}
	if a.errNum != 0 {
		return mysql.NewSQLError(a.errNum, mysql.SSUnknownSQLState, "%s", a.errMsg)
	}
	if a.result == nil {
		return callback(&sqltypes.Result{}, false)
	}
	res := &sqltypes.Result{}
	for _, c := range a.result.Columns {
		res.Fields = append(res.Fields, &querypb.Field{Name: c, Type: querypb.Type_VARCHAR})
	}
	for _, row := range a.result.Rows {
		var vals []sqltypes.Value
		for _, v := range row {
			if v == nil {
				vals = append(vals, sqltypes.NULL)
			} else {
				vals = append(vals, sqltypes.NewVarChar(*v))
			}
		}
		res.Rows = append(res.Rows, vals)
	}
	return callback(res, false)
}

func (s *replayServer) ComPrepare(_ context.Context, _ *mysql.Conn, query string, _ *mysql.PrepareData) ([]*querypb.Field, error) {
	s.t.Errorf("the client prepared a statement: %q", query)
	return nil, mysql.NewSQLError(mysql.ERUnknownComError, mysql.SSUnknownSQLState, "prepared statements are not supported")
}

func (s *replayServer) ComStmtExecute(context.Context, *mysql.Conn, *mysql.PrepareData, func(*sqltypes.Result) error) error {
	return mysql.NewSQLError(mysql.ERUnknownComError, mysql.SSUnknownSQLState, "prepared statements are not supported")
}

func (s *replayServer) ComMultiQuery(ctx context.Context, c *mysql.Conn, query string, callback mysql.ResultSpoolFn) (string, error) {
	return "", s.ComQuery(ctx, c, query, callback)
}

func (s *replayServer) NewConnection(*mysql.Conn)                   {}
func (s *replayServer) ConnectionClosed(*mysql.Conn)                {}
func (s *replayServer) ConnectionAborted(*mysql.Conn, string) error { return nil }
func (s *replayServer) ComInitDB(*mysql.Conn, string) error         { return nil }
func (s *replayServer) WarningCount(*mysql.Conn) uint16             { return 0 }
func (s *replayServer) ComResetConnection(*mysql.Conn) error        { return nil }
func (s *replayServer) ParserOptionsForConnection(*mysql.Conn) (sqlparser.ParserOptions, error) {
	return sqlparser.ParserOptions{}, nil
}

// hasStatement reports whether stmt was received.
func (s *replayServer) hasStatement(stmt string) bool {
	for _, q := range s.statements() {
		if strings.TrimSpace(q) == stmt {
			return true
		}
	}
	return false
}
