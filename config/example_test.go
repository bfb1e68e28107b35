package config_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sdbmaint/sdbmaint/config"
)

func ExampleParse() {
	file := `
clusters:
  - name: prod
    sql: {addr: "10.0.0.10:3306", user: sdbmaint, password: "${SDB_PASSWORD}"}
    toolbox: {local: true}
    auto_approve: [snapshot]
`
	getenv := func(k string) string { return map[string]string{"SDB_PASSWORD": "s3cret"}[k] }
	cfg, err := config.Parse(strings.NewReader(file), getenv)
	if err != nil {
		fmt.Println(err)
		return
	}
	prod, _ := cfg.Cluster("prod")
	fmt.Println(prod.Name, prod.SQL.Addr, prod.SQL.Password, prod.RecoveryTimeout, prod.AutoApprove)
	// Output: prod 10.0.0.10:3306 [redacted] 30m0s [snapshot]
}

func ExampleErrors() {
	file := `
clusters:
  - name: prod
    sql: {addr: 10.0.0.10, user: sdbmaint}
    toolbox: {local: true, sdbadmin: /usr/bin/sdb-admin}
    auto_approve: [stop]
`
	_, err := config.Parse(strings.NewReader(file), func(string) string { return "" })
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Println(e)
		}
	}
	// Output:
	// clusters[0].sql.addr: missing port (write host:port, such as 10.0.0.10:3306) (line 4)
	// clusters[0].toolbox.sdbadmin: unknown key (did you mean sdb_admin?) (line 5)
	// clusters[0].auto_approve[0]: stop can never be approved automatically: a person must decide to take the cluster down (line 6)
}
