package stations_test

import (
	"testing"

	"github.com/keiline/keiline/internal/testplc"
)

// startNodePLC starts the node-opcua test PLC (testdata/opcua/server.js)
// with args, its users ("name:password,...") in the environment, never on
// its command line.
func startNodePLC(t *testing.T, users string, args ...string) *testplc.PLC {
	t.Helper()
	return testplc.Start(t, "server.js", []string{"PLC_USERS=" + users}, args...)
}
