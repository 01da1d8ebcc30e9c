package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const dlqUsage = "dlq: give list, show SEQ, replay SEQ... (or --all) or purge SEQ... (or --all --yes)"

// runDLQ shows and recovers the dead letters: keiline dlq list|show|replay|purge.
func runDLQ(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(dlqUsage)
	}
	verb := args[0]
	fs := newFlags("dlq " + verb)
	natsURL := fs.String("nats", envOr("KEILINE_NATS", nats.DefaultURL), "NATS URL (env KEILINE_NATS)")
	creds := fs.String("creds", os.Getenv("KEILINE_NATS_CREDS_FILE"), "NATS credentials `file` of the line's operator (keiline nats provision)")
	state := fs.String("state", "", "use the NATS of this `up` state dir, as its operator")
	asJSON := fs.Bool("json", false, "one JSON object per dead letter")
	from := fs.Uint64("from", 0, "list: from this sequence number on")
	limit := fs.Int("n", 0, "list: at most this many (0: all)")
	all := fs.Bool("all", false, "replay, purge: every dead letter (replay: whose reason contains --reason)")
	reason := fs.String("reason", "", "replay --all: only dead letters whose reason contains this text")
	yes := fs.Bool("yes", false, "purge --all: really remove every dead letter")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	nc, err := toolConn(*natsURL, *creds, *state, broker.OperatorPart(line.Default()))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	seqs := func() ([]uint64, error) {
		if *all {
			ds, err := streams.DeadLetters(ctx, js, 0, 0)
			if err != nil {
				return nil, err
			}
			var out []uint64
			for _, d := range ds {
				if strings.Contains(d.Reason, *reason) {
					out = append(out, d.Seq)
				}
			}
			return out, nil
		}
		if len(pos) == 0 {
			return nil, fmt.Errorf("dlq %s: give sequence numbers (keiline dlq list shows them) or --all", verb)
		}
		var out []uint64
		for _, p := range pos {
			n, err := strconv.ParseUint(p, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("dlq %s: %q is not a sequence number", verb, p)
			}
			out = append(out, n)
		}
		return out, nil
	}
	switch verb {
	case "list":
		return dlqList(ctx, js, stdout, *from, *limit, *asJSON)
	case "show":
		list, err := seqs()
		if err != nil {
			return err
		}
		return dlqShow(ctx, js, stdout, list, *asJSON)
	case "replay":
		list, err := seqs()
		if err != nil {
			return err
		}
		for _, seq := range list {
			d, err := streams.Replay(ctx, js, seq)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "dead letter %d replayed on %s (event %s); if the tracker still cannot use it, it is a new dead letter\n", seq, d.Subject, orDash(d.EventID))
		}
		return nil
	case "purge":
		if *all && !*yes {
			return errors.New("dlq purge --all removes every dead letter for good: add --yes")
		}
		list, err := seqs()
		if err != nil {
			return err
		}
		for _, seq := range list {
			if err := streams.Purge(ctx, js, seq); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "dead letter %d purged\n", seq)
		}
		return nil
	}
	return errors.New(dlqUsage)
}

// dlqList prints the dead letters from seq from on, at most limit.
func dlqList(ctx context.Context, js jetstream.JetStream, stdout io.Writer, from uint64, limit int, asJSON bool) error {
	ds, err := streams.DeadLetters(ctx, js, from, limit)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		for _, d := range ds {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tAT\tSUBJECT\tEVENT\tREASON")
	for _, d := range ds {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", d.Seq, d.At.UTC().Format("2006-01-02 15:04:05Z"), d.Subject, orDash(d.EventID), d.Reason)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d dead letter(s)\n", len(ds))
	return nil
}

// dlqShow prints each dead letter of seqs whole, its body included.
func dlqShow(ctx context.Context, js jetstream.JetStream, stdout io.Writer, seqs []uint64, asJSON bool) error {
	for _, seq := range seqs {
		d, err := streams.GetDeadLetter(ctx, js, seq)
		if err != nil {
			return err
		}
		if asJSON {
			if err := json.NewEncoder(stdout).Encode(d); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(stdout, "dead letter %d at %s\nsubject  %s\nevent    %s\nreason   %s\nbody     %s\n", d.Seq, d.At.UTC().Format("2006-01-02 15:04:05Z"),
			d.Subject, orDash(d.EventID), d.Reason, d.Body)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
