package sim_test

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/go-sql-driver/mysql"

	"github.com/sdbmaint/sdbmaint/cluster/sim"
)

// A test starts a cluster, talks to its master aggregator over the MySQL
// protocol, injects a fault and reads the state back.
func Example() {
	ctx := context.Background()
	c, err := sim.Start(ctx, sim.Options{Databases: []string{"sales"}})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	db, _ := sql.Open("mysql", sim.DefaultUser+":"+sim.DefaultPassword+"@tcp("+c.MySQLAddr()+")/")
	defer db.Close()
	var online int
	db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.LEAVES WHERE STATE = 'online'").Scan(&online)
	fmt.Println("leaves online:", online)

	if err := c.Inject("orphan:sales"); err != nil {
		panic(err)
	}
	fmt.Printf("partitions: %+v\n", c.State().Partitions)
	// Output:
	// leaves online: 4
	// partitions: {Master:8 Replica:8 Orphan:1}
}
