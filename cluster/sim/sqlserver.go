package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/dolthub/vitess/go/mysql"
	"github.com/dolthub/vitess/go/sqltypes"
	vlog "github.com/dolthub/vitess/go/vt/log"
	querypb "github.com/dolthub/vitess/go/vt/proto/query"
	"github.com/dolthub/vitess/go/vt/sqlparser"
)

// This file serves one node's MySQL protocol with dolthub/vitess go/mysql.
// The node listens on its own port while its process runs; stopping it
// closes the listener and drops every connection, so the port refuses.

var quietOnce sync.Once

// quietVitess sends the protocol library's log lines (connection resets,
// failed logins) to slog at debug level instead of the process's stderr.
func quietVitess() {
	quietOnce.Do(func() {
		logf := func(format string, args ...any) {
			slog.Debug(fmt.Sprintf(format, args...), "component", "vitess")
		}
		logp := func(args ...any) { slog.Debug(fmt.Sprint(args...), "component", "vitess") }
		vlog.Info, vlog.Warning, vlog.Error = logp, logp, logp
		vlog.Infof, vlog.Warningf, vlog.Errorf = logf, logf, logf
	})
}

// sqlNode is one node's MySQL listener and its connections.
type sqlNode struct {
	c    *Cluster
	n    *node
	auth *mysql.AuthServerStatic
	port int

	mu    sync.Mutex // guards ln, hold and conns; taken after c.mu, never before
	ln    *mysql.Listener
	hold  io.Closer // the port's reservation while the node is stopped
	conns map[*trackedConn]struct{}
}

func newSQLNode(c *Cluster, n *node) *sqlNode {
	users := map[string][]*mysql.AuthServerStaticEntry{c.opts.User: {{Password: c.opts.Password}}}
	raw, _ := json.Marshal(users)
	return &sqlNode{
		c:     c,
		n:     n,
		auth:  mysql.NewAuthServerStatic("", string(raw), 0),
		conns: map[*trackedConn]struct{}{},
	}
}

// start listens on addr (the node's own port after the first start) and
// accepts connections until stop.
func (s *sqlNode) start(addr string) error {
	s.release()
	nl, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	l, err := mysql.NewListenerWithConfig(mysql.ListenerConfig{
		Listener:           trackedListener{Listener: nl, s: s},
		AuthServer:         s.auth,
		Handler:            &handler{s: s},
		ConnReadBufferSize: mysql.DefaultConnBufferSize,
	})
	if err != nil {
		nl.Close()
		return err
	}
	// SingleStore reports a MySQL 5.7 protocol version; @@memsql_version
	// carries its own.
	l.ServerVersion = "5.7.32"
	s.port = nl.Addr().(*net.TCPAddr).Port
	s.mu.Lock()
	s.ln = l
	s.mu.Unlock()
	s.c.wg.Add(1)
	go func() {
		defer s.c.wg.Done()
		l.Accept()
	}()
	return nil
}

// stop closes the listener and every open connection, as a node's process
// exiting does. With reserve, the port stays bound (refusing connections)
// so that nothing else takes it before the node starts again.
func (s *sqlNode) stop(reserve bool) {
	s.mu.Lock()
	l := s.ln
	s.ln = nil
	conns := make([]*trackedConn, 0, len(s.conns))
	for tc := range s.conns {
		conns = append(conns, tc)
	}
	s.mu.Unlock()
	if l != nil {
		l.Close()
	}
	for _, tc := range conns {
		tc.Close()
	}
	if reserve && l != nil && s.port != 0 {
		if h, err := reservePort(s.port); err == nil {
			s.mu.Lock()
			s.hold = h
			s.mu.Unlock()
		}
	}
}

// release gives up the port's reservation, if any.
func (s *sqlNode) release() {
	s.mu.Lock()
	h := s.hold
	s.hold = nil
	s.mu.Unlock()
	if h != nil {
		h.Close()
	}
}

func (s *sqlNode) openConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// trackedListener wraps accepted connections so that the node can drop them
// and Close can wait for their goroutines, which vitess starts.
type trackedListener struct {
	net.Listener
	s *sqlNode
}

func (l trackedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: conn, s: l.s}
	l.s.c.conns.add()
	l.s.mu.Lock()
	open := l.s.ln != nil
	l.s.conns[tc] = struct{}{}
	l.s.mu.Unlock()
	if !open {
		tc.Close()
	}
	return tc, nil
}

type trackedConn struct {
	net.Conn
	s    *sqlNode
	once sync.Once
}

func (tc *trackedConn) Close() error {
	err := tc.Conn.Close()
	tc.once.Do(func() {
		tc.s.mu.Lock()
		delete(tc.s.conns, tc)
		tc.s.mu.Unlock()
		tc.s.c.conns.done()
	})
	return err
}

// connTracker counts open MySQL connections so that Close can wait for them.
type connTracker struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    int
}

func (t *connTracker) init() { t.cond = sync.NewCond(&t.mu) }

func (t *connTracker) add() {
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
}

func (t *connTracker) done() {
	t.mu.Lock()
	t.n--
	if t.n == 0 {
		t.cond.Broadcast()
	}
	t.mu.Unlock()
}

func (t *connTracker) wait() {
	t.mu.Lock()
	for t.n > 0 {
		t.cond.Wait()
	}
	t.mu.Unlock()
}

// session is one connection's state.
type session struct {
	db   string
	vars map[string]string // session variables set with SET
}

// handler implements mysql.Handler for one node.
type handler struct{ s *sqlNode }

var _ mysql.Handler = (*handler)(nil)

func sess(conn *mysql.Conn) *session {
	if s, ok := conn.ClientData.(*session); ok {
		return s
	}
	s := &session{vars: map[string]string{}}
	conn.ClientData = s
	return s
}

func (h *handler) NewConnection(conn *mysql.Conn) {
	conn.ClientData = &session{vars: map[string]string{}}
	conn.StatusFlags |= mysql.ServerStatusAutocommit
}

func (h *handler) ConnectionClosed(*mysql.Conn) {}

func (h *handler) ConnectionAborted(*mysql.Conn, string) error { return nil }

func (h *handler) ComInitDB(conn *mysql.Conn, db string) error {
	if err := h.s.c.useDatabase(h.s.n, db); err != nil {
		return err
	}
	sess(conn).db = db
	return nil
}

func (h *handler) ComQuery(ctx context.Context, conn *mysql.Conn, query string, cb mysql.ResultSpoolFn) error {
	res, err := h.s.c.execute(ctx, h.s.n, sess(conn), conn, query)
	if err != nil {
		return err
	}
	return cb(res, false)
}

func (h *handler) ComMultiQuery(ctx context.Context, conn *mysql.Conn, query string, cb mysql.ResultSpoolFn) (string, error) {
	first, rest := splitStatements(query)
	res, err := h.s.c.execute(ctx, h.s.n, sess(conn), conn, first)
	if err != nil {
		return "", err
	}
	return rest, cb(res, rest != "")
}

// ComPrepare accepts what our parser accepts; vitess has already refused
// what its MySQL grammar cannot parse (SingleStore-only statements), with a
// clean error packet. Columns are sent at execute time.
func (h *handler) ComPrepare(_ context.Context, _ *mysql.Conn, query string, _ *mysql.PrepareData) ([]*querypb.Field, error) {
	if _, err := parseStatement(strings.ReplaceAll(query, "?", "NULL")); err != nil {
		return nil, err
	}
	return nil, nil
}

// ComStmtExecute interpolates the bound values and runs the statement as
// text.
func (h *handler) ComStmtExecute(ctx context.Context, conn *mysql.Conn, prepare *mysql.PrepareData, cb func(*sqltypes.Result) error) error {
	query, err := interpolate(prepare.PrepareStmt, prepare.BindVars)
	if err != nil {
		return err
	}
	res, err := h.s.c.execute(ctx, h.s.n, sess(conn), conn, query)
	if err != nil {
		return err
	}
	return cb(res)
}

func (h *handler) WarningCount(*mysql.Conn) uint16 { return 0 }

func (h *handler) ComResetConnection(conn *mysql.Conn) error {
	conn.ClientData = &session{vars: map[string]string{}}
	return nil
}

func (h *handler) ParserOptionsForConnection(*mysql.Conn) (sqlparser.ParserOptions, error) {
	return sqlparser.ParserOptions{}, nil
}

// interpolate replaces the ? placeholders outside quotes with the bound
// values as SQL literals.
func interpolate(query string, vars map[string]*querypb.BindVariable) (string, error) {
	var b strings.Builder
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		ch := query[i]
		switch {
		case quote != 0:
			b.WriteByte(ch)
			if ch == '\\' && quote != '`' && i+1 < len(query) {
				i++
				b.WriteByte(query[i])
			} else if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"' || ch == '`':
			quote = ch
			b.WriteByte(ch)
		case ch == '?':
			n++
			v, ok := vars["v"+strconv.Itoa(n)]
			if !ok {
				return "", mysql.NewSQLError(mysql.ERWrongArguments, mysql.SSUnknownSQLState, "missing value for parameter %d", n)
			}
			b.WriteString(literal(v))
		default:
			b.WriteByte(ch)
		}
	}
	return b.String(), nil
}

func literal(v *querypb.BindVariable) string {
	switch {
	case v.Type == querypb.Type_NULL_TYPE:
		return "NULL"
	case sqltypes.IsIntegral(v.Type) || sqltypes.IsFloat(v.Type) || v.Type == querypb.Type_DECIMAL:
		return string(v.Value)
	}
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(string(v.Value)) + "'"
}

// Result-set helpers --------------------------------------------------------

type colType int

const (
	tText colType = iota
	tInt
	tFloat
	tTime
)

type column struct {
	name string
	typ  colType
}

func fields(cols []column) []*querypb.Field {
	out := make([]*querypb.Field, len(cols))
	for i, c := range cols {
		f := &querypb.Field{Name: c.name, OrgName: c.name}
		switch c.typ {
		case tInt:
			f.Type, f.Charset, f.ColumnLength = querypb.Type_INT64, mysql.CharacterSetBinary, 20
		case tFloat:
			f.Type, f.Charset, f.ColumnLength, f.Decimals = querypb.Type_FLOAT64, mysql.CharacterSetBinary, 22, 31
		case tTime:
			f.Type, f.Charset, f.ColumnLength = querypb.Type_DATETIME, mysql.CharacterSetBinary, 19
		default:
			f.Type, f.Charset, f.ColumnLength = querypb.Type_VARCHAR, mysql.CharacterSetUtf8mb4, 1024
		}
		out[i] = f
	}
	return out
}

// val is one cell: nil is NULL, strings, ints and floats as themselves.
type val = any

func toValue(c column, v val) sqltypes.Value {
	if v == nil {
		return sqltypes.NULL
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case float64:
		s = strconv.FormatFloat(x, 'f', 3, 64)
	case bool:
		s = "0"
		if x {
			s = "1"
		}
	default:
		s = fmt.Sprint(x)
	}
	typ := querypb.Type_VARCHAR
	switch c.typ {
	case tInt:
		typ = querypb.Type_INT64
	case tFloat:
		typ = querypb.Type_FLOAT64
	case tTime:
		typ = querypb.Type_DATETIME
	}
	return sqltypes.MakeTrusted(typ, []byte(s))
}

// resultSet builds a result from columns and rows of cells.
func resultSet(cols []column, rows [][]val) *sqltypes.Result {
	res := &sqltypes.Result{Fields: fields(cols)}
	for _, r := range rows {
		row := make([]sqltypes.Value, len(cols))
		for i := range cols {
			row[i] = toValue(cols[i], r[i])
		}
		res.Rows = append(res.Rows, row)
	}
	return res
}

// okResult is an OK packet.
func okResult(affected uint64) *sqltypes.Result { return &sqltypes.Result{RowsAffected: affected} }
