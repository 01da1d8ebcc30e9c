package simulator

import (
	"testing"
	"time"
	"github.com/gopcua/opcua/server"
)

func TestZZNew(t *testing.T) {
	t0 := time.Now()
	server.New()
	t.Logf("server.New %v", time.Since(t0))
	t0 = time.Now()
	newTagSpace()
	t.Logf("tagspace %v", time.Since(t0))
}
