package stations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/nats-io/nats.go"
)

// manifestServer carries out the tracker's manifest requests for one
// framing station: it writes the next cars into the PLC's free manifest
// slots (a slot's strings first, its Seq last) and replies with what the
// PLC holds. It keeps a PLC session of its own, apart from the poller's.
type manifestServer struct {
	lc    *line.Config
	st    *line.Station
	log   *slog.Logger
	conn  *nats.Conn
	plc   *PLC
	last  *ua.NodeID
	seqs  []*ua.NodeID   // Manifest<k>.Seq
	slots [][]*ua.NodeID // Manifest<k>.Vin, Model, Variant, Colour, Options
}

func newManifestServer(lc *line.Config, st *line.Station, conn *nats.Conn, log *slog.Logger) (*manifestServer, error) {
	m := &manifestServer{lc: lc, st: st, conn: conn, log: log.With("station", st.ID, "component", "manifest")}
	node := func(tag string) (*ua.NodeID, error) {
		n, _, ok := st.Nodes[tag].ReadID()
		if !ok || st.Nodes[tag].Index != nil {
			return nil, fmt.Errorf("station %s: tag %s: the manifest slots must be plain nodes (%s)", st.ID, tag, st.Nodes[tag].Where())
		}
		return n, nil
	}
	var err error
	if m.last, err = node(line.ManifestLastSeq); err != nil {
		return nil, err
	}
	for k := 1; k <= st.Manifest; k++ {
		n, err := node(fmt.Sprintf("Manifest%d.Seq", k))
		if err != nil {
			return nil, err
		}
		m.seqs = append(m.seqs, n)
		var slot []*ua.NodeID
		for _, t := range line.ManifestTags[1:] {
			n, err := node(fmt.Sprintf("Manifest%d.%s", k, t))
			if err != nil {
				return nil, err
			}
			slot = append(slot, n)
		}
		m.slots = append(m.slots, slot)
	}
	return m, nil
}

// run serves requests until ctx is done. Requests are handled one at a
// time, in order, on this goroutine.
func (m *manifestServer) run(ctx context.Context) {
	defer func() { _ = m.plc.Close(context.WithoutCancel(ctx)) }()
	ch := make(chan *nats.Msg, 16)
	subj := event.ManifestSubject(m.lc.Plant, m.lc.Line, m.st.ID)
	sub, err := m.conn.ChanQueueSubscribe(subj, "keiline-agent", ch)
	if err != nil {
		m.log.Error("cannot serve manifest requests", "subject", subj, "err", err)
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	m.log.Info("serving manifest requests", "subject", subj, "slots", m.st.Manifest)
	for {
		select {
		case <-ctx.Done():
			return
		case msg := <-ch:
			rep := m.handle(ctx, msg.Data)
			if ctx.Err() != nil {
				return // shutting down: the tracker asks again
			}
			if rep.Error != "" {
				m.log.Warn("manifest request not carried out", "err", rep.Error)
			}
			b, _ := json.Marshal(rep)
			if err := msg.Respond(b); err != nil {
				m.log.Warn("manifest reply lost", "err", err)
			}
		}
	}
}

func (m *manifestServer) handle(ctx context.Context, data []byte) *event.ManifestReply {
	rep := &event.ManifestReply{Slots: m.st.Manifest, Loaded: []int64{}, Written: []int64{}}
	var req event.ManifestRequest
	if err := json.Unmarshal(data, &req); err != nil {
		rep.Error = fmt.Sprintf("bad manifest request: %v", err)
		return rep
	}
	if m.plc == nil {
		plc, err := DialPLC(ctx, ConnectionOf(m.lc, m.st))
		if err != nil {
			rep.Error = fmt.Sprintf("station %s: PLC unreachable: %v", m.st.ID, err)
			return rep
		}
		m.plc = plc
	}
	if err := m.load(ctx, &req, rep); err != nil {
		rep.Error = err.Error()
		if !IsNodeError(err) && !errors.Is(err, errBadCar) {
			_ = m.plc.Close(ctx) // the connection is suspect: dial again next time
			m.plc = nil
		}
	}
	return rep
}

var errBadCar = errors.New("bad manifest car")

func (m *manifestServer) load(ctx context.Context, req *event.ManifestRequest, rep *event.ManifestReply) error {
	nodes := append([]*ua.NodeID{m.last}, m.seqs...)
	dvs, err := m.plc.Read(ctx, nodes)
	if err != nil {
		return fmt.Errorf("station %s: read manifest: %w", m.st.ID, err)
	}
	vals := make([]int64, len(dvs))
	for i, dv := range dvs {
		v, reason := convertKind(line.KindInt, dv)
		if reason != "" {
			tag := line.ManifestLastSeq
			if i > 0 {
				tag = fmt.Sprintf("Manifest%d.Seq", i)
			}
			return fmt.Errorf("station %s: node %s (%s): %s", m.st.ID, nodes[i], tag, reason)
		}
		vals[i] = v.(int64)
	}
	rep.LastSeq = vals[0]
	held := vals[1:]
	for _, c := range req.Cars {
		if c.Seq <= rep.LastSeq || slices.Contains(held, c.Seq) {
			continue
		}
		if err := vin.Validate(c.VIN); err != nil {
			return fmt.Errorf("%w: seq %d: %w", errBadCar, c.Seq, err)
		}
		if c.Model == "" || c.Variant == "" || c.Colour == "" {
			return fmt.Errorf("%w: seq %d (VIN %s): model, variant and colour are required", errBadCar, c.Seq, c.VIN)
		}
		free := slices.IndexFunc(held, func(s int64) bool { return s == 0 || s <= rep.LastSeq })
		if free < 0 {
			break // every slot holds a car still to be framed
		}
		// The slot's data first, its Seq last: the PLC takes a slot only
		// once its Seq is set.
		values := []any{c.VIN, c.Model, c.Variant, c.Colour, strings.Join(c.Options, ",")}
		if err := m.plc.WriteMany(ctx, m.slots[free], values); err != nil {
			return fmt.Errorf("station %s: manifest slot %d (seq %d): %w", m.st.ID, free+1, c.Seq, err)
		}
		if err := m.plc.Write(ctx, m.seqs[free], c.Seq); err != nil {
			return fmt.Errorf("station %s: manifest slot %d (seq %d): %w", m.st.ID, free+1, c.Seq, err)
		}
		held[free] = c.Seq
		rep.Written = append(rep.Written, c.Seq)
	}
	for _, s := range held {
		if s > rep.LastSeq {
			rep.Loaded = append(rep.Loaded, s)
		}
	}
	slices.Sort(rep.Loaded)
	return nil
}
