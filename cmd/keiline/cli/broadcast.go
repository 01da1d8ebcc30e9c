package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runBroadcast follows the JIS broadcast: keiline broadcast tail.
func runBroadcast(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "tail" {
		return errors.New("broadcast: give 'tail' (keiline broadcast tail [--supplier S] [--from N])")
	}
	fs := newFlags("broadcast tail")
	natsURL := fs.String("nats", envOr("KEILINE_NATS", nats.DefaultURL), "NATS URL (env KEILINE_NATS)")
	creds := fs.String("creds", os.Getenv("KEILINE_NATS_CREDS_FILE"), "NATS credentials `file` of a reader (keiline nats provision)")
	state := fs.String("state", "", "use the NATS of this `up` state dir, as its reader")
	plant := fs.String("plant", PlantDefault, "plant")
	line := fs.String("line", LineDefault, "line")
	supplier := fs.String("supplier", "", "only this supplier (default: every supplier)")
	all := fs.Bool("all", false, "start from the first broadcast kept (default: only new ones)")
	count := fs.Int("n", 0, "stop after this many broadcasts (0: follow until interrupted)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("broadcast tail: unexpected argument %q", pos[0])
	}
	nc, err := toolConn(*natsURL, *creds, *state, broker.ReaderPart)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	subj := event.BroadcastPrefix + *plant + "." + *line + ".>"
	if *supplier != "" {
		subj = event.BroadcastSubject(*plant, *line, *supplier)
	}
	policy := jetstream.DeliverNewPolicy
	if *all {
		policy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, event.BroadcastStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}, DeliverPolicy: policy})
	if err != nil {
		return fmt.Errorf("broadcast tail %s: %w", subj, err)
	}
	if !*asJSON {
		fmt.Printf("%-10s %8s  %-17s  %-10s %-16s %s\n", "SUPPLIER", "SEQ", "VIN", "PART", "VARIANT", "INSTALL")
	}
	for n := 0; *count == 0 || n < *count; n++ {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("broadcast tail: %w", err)
		}
		if *asJSON {
			fmt.Println(string(msg.Data()))
			continue
		}
		var b event.Broadcast
		if err := json.Unmarshal(msg.Data(), &b); err != nil {
			fmt.Fprintf(os.Stderr, "broadcast tail: %s: bad message: %v\n", msg.Subject(), err)
			continue
		}
		fmt.Printf("%-10s %8d  %-17s  %-10s %-16s %s\n", b.Supplier, b.Seq, b.VIN, b.PartNumber, b.PartVariant, b.Install)
	}
	return nil
}
