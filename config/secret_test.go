package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	getenv := env("A", "alpha", "B", "b$B", "EMPTY", "")
	tests := []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha"},
		{in: "x-${A}-${A}", want: "x-alpha-alpha"},
		{in: "${B}", want: "b$B"}, // values are not expanded again
		{in: "pa$$word", want: "pa$word"},
		{in: "$$${A}", want: "$alpha"},
		{in: "$${A}", want: "${A}"},
		{in: "a$b $", want: "a$b $"}, // a lone $ stays as it is
		{in: "${EMPTY:-fallback}", want: "fallback"},
		{in: "${A:-fallback}", want: "alpha"},
		{in: "${UNSET:-}", want: ""},
		{in: "${UNSET}", err: "environment variable UNSET is not set (or empty)"},
		{in: "${EMPTY}", err: "environment variable EMPTY is not set (or empty)"},
		{in: "${Z}${A}${Y}", err: "environment variables Y, Z are not set (or empty)"},
		{in: "${A", err: "unterminated ${ (write $$ for a literal $)"},
		{in: "${}", err: "${} is not a valid environment variable reference (use ${NAME} or ${NAME:-default}; $$ for a literal $)"},
		{in: "${A B}", err: "${A B} is not a valid environment variable reference (use ${NAME} or ${NAME:-default}; $$ for a literal $)"},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, getenv)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("expand(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// secrets are distinctive values that must never show up in output.
var secrets = []string{"xoxb-BOTSECRET", "xapp-APPSECRET", "SIGNINGSECRET", "SQLSECRET", "DSNSECRET"}

func secretConfig(t *testing.T) *Config {
	t.Helper()
	src := `
store: {mysql_dsn: "sdbmaint:${DSN_PW}@tcp(store:3306)/sdbmaint"}
slack:
  bot_token: ${BOT}
  app_token: ${APP}
  signing_secret: ${SIGN}
  channel: C0123456
  approvers: [U0AAAAAAA]
clusters:
  - name: prod
    sql: {addr: "db:3306", user: u, password: "${SQL_PW}"}
    toolbox: {local: true}
`
	cfg, err := Parse(strings.NewReader(src), env("BOT", secrets[0], "APP", secrets[1], "SIGN", secrets[2], "SQL_PW", secrets[3], "DSN_PW", secrets[4]))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Clusters[0].SQL.Password.Reveal() != secrets[3] || !strings.Contains(cfg.Store.MySQLDSN.Reveal(), secrets[4]) {
		t.Fatal("Reveal does not return the secrets")
	}
	return cfg
}

// TestSecretsNeverPrinted formats and logs a whole Config every way a
// program might, and looks for the secrets in the output.
func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	cfg := secretConfig(t)
	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outputs[verb+" *Config"] = fmt.Sprintf(verb, cfg)
		outputs[verb+" Config"] = fmt.Sprintf(verb, *cfg)
		outputs[verb+" Cluster"] = fmt.Sprintf(verb, cfg.Clusters[0])
		outputs[verb+" Secret"] = fmt.Sprintf(verb, cfg.Slack.BotToken)
	}
	outputs["Sprint"] = fmt.Sprint(cfg.Slack, cfg.Clusters[0].SQL.Password)
	outputs["Secret.String"] = cfg.Slack.AppToken.String()
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("json.Marshal(Config): %v", err)
	}
	outputs["json"] = string(j)
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("loaded", "config", cfg, "token", cfg.Slack.BotToken, "sql", cfg.Clusters[0].SQL)
		outputs[name] = buf.String()
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s output contains the secret %q:\n%s", name, s, out)
			}
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%s output does not say [redacted]:\n%s", name, out)
		}
	}
}

// TestSecretsNotInErrors gives secret fields wrong values: the errors say
// what is wrong without repeating them.
func TestSecretsNotInErrors(t *testing.T) {
	t.Parallel()
	const pw = "Hunter2Hunter2"
	srcs := []string{
		"slack: {bot_token: xoxp-" + pw + ", app_token: " + pw + ", approvers: [U0AAAAAAA]}\n" + minimal,
		"slack: {mode: http, bot_token: [" + pw + "], signing_secret: {x: " + pw + "}, approvers: [U0AAAAAAA]}\n" + minimal,
		"store: {mysql_dsn: \"u:" + pw + "@tcp(db:3306)/x?parseTime=" + pw + "\"}\n" + minimal,
		"store: {mysql_dsn: \"u:" + pw + "@tcp(db:3306\"}\n" + minimal,
		"store: {mysql_dsn: \"u:" + pw + "@tcp(db:3306)/\"}\n" + minimal,
		"store: {mysql_dsn: \"u:" + pw + "@tcp(db:3306)/x?tls=" + pw + "\"}\n" + minimal,
		"slack: {bot_token: \"xoxb-" + pw + "\\n\", app_token: xapp-1, approvers: [U0AAAAAAA]}\n" + minimal,
		"clusters: [{name: dev, toolbox: {local: true}, sql: {addr: \"db:3306\", user: u, password: \"" + pw + "\\0\"}}]\n",
	}
	for _, src := range srcs {
		_, err := Parse(strings.NewReader(src), env())
		var errs Errors
		if !errors.As(err, &errs) {
			t.Errorf("Parse(%q) = %v, want Errors", src, err)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error repeats the secret:\n%v", err)
		}
	}
}
