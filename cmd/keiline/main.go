// Command keiline is the kei-car line MES: `keiline up` runs a whole
// simulated line on one machine; the other commands run each part alone or
// query the record. See `keiline help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/keiline/keiline/cmd/keiline/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli.Run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "keiline:", err)
		os.Exit(1)
	}
}
