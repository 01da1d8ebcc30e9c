// Package cli wires keiline's packages into the keiline command. It is the
// only place that reads flags and the environment.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

const usage = `keiline — an MES for kei-car assembly lines

Usage: keiline <command> [flags]

  up                 run a whole simulated line: PLCs, agents, NATS, tracker, PostgreSQL
  simulate           run the simulated PLCs alone (--emit-config writes their line config)
  agent              run station agents for a line config against a NATS server
  tracker            run the tracker against a NATS server and a database
  serve              serve the line supervisor's dashboard (--http ADDR) from a line's record
  nats               run a nats-server with JetStream (the one up embeds) as its own process
  pki                the plant's small CA: init, issue, list, revoke, refresh ('keiline pki help')
  migrate            apply the database migrations
  chaos              a fault campaign over separate processes; exits non-zero on any lost record
  plc                the PLC integrator's tools: browse, check, watch, cert ('keiline plc help')
  torque             the tightening controllers' tools: check, watch ('keiline torque help')
  trace export       export every car's record (--jsonl), in the truth file's shape
  trace vin VIN      everything recorded about one car (--json, --csv for machines)
  trace part|lot|tool|station ...   every car affected (see 'keiline trace -h')
  history            synthetic history (gen, bench), partitions and retention
  spc                statistical process control: list, chart (SVG), capability ('keiline spc help')
  report shift       the end-of-shift report: text, --html, --pdf FILE
  audit verify       walk the event log's hash chain and name the first broken row
  orders             the planner's orders: import, list, cancel, plan (sequence them), sequence, broadcasts
  users, tokens      who may sign in to the web side (add, list, disable, passwd, roles) and machines' API tokens
  broadcast tail     follow the JIS broadcast to suppliers (--supplier S, --all, --json)
  dlq                the messages the tracker could not use: list, show SEQ, replay SEQ|--all, purge SEQ|--all
  sequence           solve a CSPLib car-sequencing instance (--csplib FILE), or benchmark a directory (--csplib-dir DIR)

Run 'keiline <command> -h' for a command's flags.
`

// Run runs the keiline command with args (without the program name).
func Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "up":
		return runUp(ctx, rest)
	case "simulate":
		return runSimulate(ctx, rest)
	case "agent":
		return runAgent(ctx, rest)
	case "tracker":
		return runTracker(ctx, rest)
	case "serve":
		return runServe(ctx, rest)
	case "migrate":
		return runMigrate(ctx, rest)
	case "pki":
		return runPKI(ctx, rest, os.Stdout)
	case "nats":
		return runNATS(ctx, rest)
	case "chaos":
		return runChaos(ctx, rest)
	case "plc":
		return runPLC(ctx, rest)
	case "torque":
		return runTorque(ctx, rest)
	case "trace":
		return runTrace(ctx, rest)
	case "audit":
		return runAudit(ctx, rest)
	case "history":
		return runHistory(ctx, rest)
	case "spc":
		return runSPC(ctx, rest)
	case "report":
		return runReport(ctx, rest)
	case "sequence":
		return runSequence(ctx, rest)
	case "orders":
		return runOrders(ctx, rest)
	case "broadcast":
		return runBroadcast(ctx, rest)
	case "dlq":
		return runDLQ(ctx, rest, os.Stdout)
	case "users", "tokens":
		return runAccounts(ctx, cmd, rest)
	case "help", "-h", "--help":
		fmt.Fprint(os.Stdout, usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("keiline "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// parse parses args, allowing flags after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newLogger logs text to w at info level (KEILINE_LOG=debug|warn|error
// changes it).
func newLogger(w io.Writer) *slog.Logger { return newLoggerAt(w, slog.LevelInfo) }

// toolLogger is the logger of one-shot tools (trace, audit, migrate): only
// warnings and errors, unless KEILINE_LOG says otherwise.
func toolLogger() *slog.Logger { return newLoggerAt(os.Stderr, slog.LevelWarn) }

func newLoggerAt(w io.Writer, level slog.Level) *slog.Logger {
	switch strings.ToLower(os.Getenv("KEILINE_LOG")) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
