package memstore_test

import (
	"testing"

	"github.com/sdbmaint/sdbmaint/runbook"
	"github.com/sdbmaint/sdbmaint/runbook/memstore"
	"github.com/sdbmaint/sdbmaint/runbook/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunConformance(t, func(t *testing.T) runbook.Store { return memstore.New() })
}
