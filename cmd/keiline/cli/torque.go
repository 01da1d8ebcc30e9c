package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/stations/openprotocol"
)

const torqueUsage = `keiline torque — the integrator's tools for tightening controllers (docs/torque.md)

Usage: keiline torque <command> [flags]

  check    connect to every controller of the line config: communication start with the
           revisions it accepts, the controller's name, its newest tightening
  watch    one controller's newest tightening as it changes (--controller ID), fetched
           with MID 0064 and never acknowledged: the controller keeps each for the agent

Both take the controller's only client place (a controller refuses a second
one): run them while the station's agent is stopped.

Run 'keiline torque <command> -h' for a command's flags.
`

// runTorque runs the torque tools.
func runTorque(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, torqueUsage)
		return errors.New("torque: no command given")
	}
	switch args[0] {
	case "check":
		return torqueCheck(ctx, args[1:], os.Stdout)
	case "watch":
		return torqueWatch(ctx, args[1:], os.Stdout)
	case "help", "-h", "--help":
		fmt.Fprint(os.Stdout, torqueUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, torqueUsage)
	return fmt.Errorf("torque: unknown command %q", args[0])
}

// torqueClient returns a client of controller ct of station st that never
// fetches old results on connect (the tools record nothing).
func torqueClient(st *line.Station, ct *line.Controller, log *slog.Logger) (*openprotocol.Client, error) {
	c, err := openprotocol.New(openprotocol.Config{
		ID: ct.ID, Address: ct.Address,
		Revision: ct.Revision.Max, MinRevision: ct.Revision.Min,
		ResultRevision: ct.ResultRevision.Max, MinResultRevision: ct.ResultRevision.Min,
		KeepAlive: ct.KeepAlive, Location: ct.Location(), Logger: log.With("station", st.ID),
	})
	if err != nil {
		return nil, fmt.Errorf("station %s: %w", st.ID, err)
	}
	return c, nil
}

// controllerCheck is what torque check found of one controller.
type controllerCheck struct {
	sc     line.StationController
	status openprotocol.Status
	newest *openprotocol.Result
	err    error
}

// checkController connects to sc's controller once (within timeout), asks
// for its newest tightening and says goodbye (MID 0003).
func checkController(ctx context.Context, sc line.StationController, timeout time.Duration, log *slog.Logger) controllerCheck {
	out := controllerCheck{sc: sc}
	c, err := torqueClient(sc.Station, sc.Controller, log)
	if err != nil {
		out.err = err
		return out
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	defer func() {
		_ = c.Close()
		<-done
	}()
	go func() { // results pushed while connected are not acknowledged: the controller keeps them
		for range c.Results() {
		}
	}()
	for {
		st := c.Status()
		if st.Connected {
			out.status = st
			break
		}
		if st.LastError != nil {
			out.status, out.err = st, st.LastError
			return out
		}
		select {
		case <-cctx.Done():
			out.err = fmt.Errorf("controller %s (%s): no communication start within %s", sc.Controller.ID, sc.Controller.Address, timeout)
			return out
		case <-time.After(10 * time.Millisecond):
		}
	}
	r, err := c.OldResult(cctx, 0)
	switch {
	case errors.Is(err, openprotocol.ErrTighteningNotFound):
	case err != nil:
		out.err = err
	default:
		out.newest = &r
	}
	return out
}

func torqueCheck(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("torque check")
	config := fs.String("config", "line.yaml", "line config")
	only := fs.String("station", "", "comma-separated station ids (default: every station with controllers)")
	timeout := fs.Duration("timeout", 10*time.Second, "time limit of each controller's check")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	lc, err := loadLine(*config)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s != "" {
			want[s] = true
		}
	}
	var scs []line.StationController
	for _, sc := range lc.Controllers() {
		if len(want) == 0 || want[sc.Station.ID] {
			scs = append(scs, sc)
		}
	}
	if len(scs) == 0 {
		return fmt.Errorf("torque check: line %s has no controllers%s", lc.Line, map[bool]string{true: " at " + *only}[*only != ""])
	}
	// The client logs its redials at warn; the check reports instead.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	results := make([]controllerCheck, len(scs))
	done := make(chan struct{})
	for i, sc := range scs {
		go func() {
			results[i] = checkController(ctx, sc, *timeout, log)
			done <- struct{}{}
		}()
	}
	for range scs {
		<-done
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "STATION\tCONTROLLER\tADDRESS\tREVISION\tRESULTS\tNAME\tNEWEST TIGHTENING\tCHECK")
	failed := 0
	for _, r := range results {
		ct := r.sc.Controller
		rev, res, name, newest, verdict := "", "", "", "none kept", "OK"
		if r.status.Info.Revision > 0 {
			rev, name = fmt.Sprint(r.status.Info.Revision), r.status.Info.ControllerName
		}
		if r.status.ResultRevision > 0 {
			res = fmt.Sprint(r.status.ResultRevision)
		}
		if r.newest != nil {
			newest = fmt.Sprintf("%d (VIN %q, pset %d, %s)", r.newest.TighteningID, r.newest.VIN, r.newest.Pset, map[bool]string{true: "OK", false: "NOK"}[r.newest.OK])
		}
		if r.err != nil {
			failed++
			verdict, newest = "FAIL: "+r.err.Error(), ""
		} else if name != "" && name != ct.ID {
			verdict = fmt.Sprintf("OK (the controller calls itself %q)", name)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.sc.Station.ID, ct.ID, ct.Address, rev, res, name, newest, verdict)
	}
	w.Flush()
	if failed > 0 {
		return fmt.Errorf("torque check: %d of %d controllers failed", failed, len(results))
	}
	fmt.Fprintf(stdout, "%d controllers OK\n", len(results))
	return nil
}

func torqueWatch(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("torque watch")
	config := fs.String("config", "line.yaml", "line config")
	id := fs.String("controller", "", "the controller's id (required)")
	every := fs.Duration("every", 500*time.Millisecond, "how often to ask for the newest tightening")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	lc, err := loadLine(*config)
	if err != nil {
		return err
	}
	var sc *line.StationController
	for _, x := range lc.Controllers() {
		if x.Controller.ID == *id {
			sc = &x
		}
	}
	if sc == nil {
		return fmt.Errorf("torque watch: give --controller, one of the line's controllers (%q is none)", *id)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := torqueClient(sc.Station, sc.Controller, log)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(wctx) }()
	defer func() { _ = c.Close(); <-done }()
	go func() { // pushed results are not acknowledged: the controller keeps them for the agent
		for range c.Results() {
		}
	}()
	fmt.Fprintf(stdout, "watching %s at %s (%s), its newest tightening every %s; nothing is acknowledged: Ctrl-C to stop\n",
		sc.Controller.ID, sc.Station.ID, sc.Controller.Address, *every)
	var last uint32
	t := time.NewTicker(*every)
	defer t.Stop()
	for {
		r, err := c.OldResult(wctx, 0)
		switch {
		case wctx.Err() != nil:
			return nil
		case errors.Is(err, openprotocol.ErrTighteningNotFound):
		case err != nil:
			fmt.Fprintf(stdout, "%s  %v\n", time.Now().Format("15:04:05.000"), err)
		case r.TighteningID != last:
			last = r.TighteningID
			joint := "no joint at this batch position"
			if j, ok := sc.Controller.JointAt(r.Pset, r.BatchCounter); ok {
				joint = "joint " + j.Name + " class " + j.Class
			}
			fmt.Fprintf(stdout, "%s  tightening %d  VIN %q  pset %d  batch %d/%d  torque %.2f  angle %d°  %s  (%s)\n",
				r.Time.Format("15:04:05"), r.TighteningID, r.VIN, r.Pset, r.BatchCounter, r.BatchSize,
				r.Torque, r.Angle, map[bool]string{true: "OK", false: "NOK"}[r.OK], joint)
		}
		select {
		case <-wctx.Done():
			return nil
		case <-t.C:
		}
	}
}
