package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The manifest download (see event.ManifestRequest): the Dispatcher keeps
// the framing PLC's manifest slots filled with the next cars of the build
// sequence, through the framing station's agent.

var (
	metricManifestLast = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keiline_manifest_last_seq", Help: "Sequence number of the last car the framing PLC framed.",
	}, []string{"station"})
	metricManifestLoaded = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keiline_manifest_loaded", Help: "Cars waiting in the framing PLC's manifest slots.",
	}, []string{"station"})
	metricManifestErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_manifest_errors_total", Help: "Failed manifest downloads.",
	}, []string{"station"})
)

// DispatcherConfig configures a Dispatcher.
type DispatcherConfig struct {
	Plant, Line, Station string
	// Slots is the framing PLC's manifest slot count: the most cars sent
	// at once. Required.
	Slots int
	// Store is the record holding the build sequence. Required.
	Store *schema.Store
	// Conn carries the requests. Required.
	Conn *nats.Conn
	// Interval between downloads; defaults to 500 ms.
	Interval time.Duration
	// Timeout of one request; defaults to 5 s.
	Timeout time.Duration
	// Plan, when set, is called when the build sequence holds fewer cars
	// than Slots beyond the PLC's last framed car (to sequence more open
	// orders); an error is logged and retried later.
	Plan   func(ctx context.Context) error
	Logger *slog.Logger
}

// Dispatcher downloads the build sequence into the framing PLC's manifest.
type Dispatcher struct {
	cfg     DispatcherConfig
	log     *slog.Logger
	lastSeq int64  // the PLC's last framed car, from the latest reply
	lastErr string // to log each kind of failure once
}

// NewDispatcher checks cfg.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Store == nil || cfg.Conn == nil || cfg.Slots < 1 || cfg.Station == "" {
		return nil, errors.New("dispatcher config: Store, Conn, Station and Slots ≥ 1 are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Dispatcher{cfg: cfg, log: cfg.Logger.With("component", "manifest", "station", cfg.Station)}, nil
}

// Run downloads until ctx is done, then returns nil.
func (d *Dispatcher) Run(ctx context.Context) error {
	tick := time.NewTicker(d.cfg.Interval)
	defer tick.Stop()
	for {
		if err := d.Download(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			metricManifestErrors.WithLabelValues(d.cfg.Station).Inc()
			if s := err.Error(); s != d.lastErr {
				d.lastErr = s
				d.log.Warn("manifest download failed; retrying", "err", err)
			}
		} else if d.lastErr != "" {
			d.lastErr = ""
			d.log.Info("manifest download works again", "last_seq", d.lastSeq)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// LastSeq returns the PLC's last framed sequence number, as last reported.
func (d *Dispatcher) LastSeq() int64 { return d.lastSeq }

// Download sends the cars after the PLC's last framed car until the PLC's
// slots hold all it can take or the sequence runs out.
func (d *Dispatcher) Download(ctx context.Context) error {
	for range 4 { // the PLC may frame cars meanwhile: follow it a few rounds
		cars, err := d.cfg.Store.Sequence(ctx, d.lastSeq, d.cfg.Slots)
		if err != nil {
			return err
		}
		if len(cars) < d.cfg.Slots && d.cfg.Plan != nil {
			if err := d.cfg.Plan(ctx); err != nil {
				return fmt.Errorf("sequence more orders: %w", err)
			}
			if cars, err = d.cfg.Store.Sequence(ctx, d.lastSeq, d.cfg.Slots); err != nil {
				return err
			}
		}
		req := event.ManifestRequest{Cars: make([]event.ManifestCar, len(cars))}
		for i, c := range cars {
			opts := c.Options
			if opts == nil {
				opts = []string{}
			}
			req.Cars[i] = event.ManifestCar{Seq: c.Seq, VIN: c.VIN, Model: c.Model, Variant: c.Variant, Colour: c.Colour, Options: opts}
		}
		rep, err := d.request(ctx, req)
		if err != nil {
			return err
		}
		now := time.Now()
		for _, s := range rep.Written {
			if err := d.cfg.Store.MarkDownloaded(ctx, s, now); err != nil {
				return err
			}
		}
		if len(rep.Written) > 0 {
			d.log.Debug("manifest written", "seqs", rep.Written, "last_seq", rep.LastSeq)
		}
		metricManifestLast.WithLabelValues(d.cfg.Station).Set(float64(rep.LastSeq))
		metricManifestLoaded.WithLabelValues(d.cfg.Station).Set(float64(len(rep.Loaded)))
		moved := rep.LastSeq != d.lastSeq
		d.lastSeq = rep.LastSeq
		if rep.Error != "" {
			return fmt.Errorf("station %s: %s", d.cfg.Station, rep.Error)
		}
		if !moved {
			return nil
		}
	}
	return nil
}

func (d *Dispatcher) request(ctx context.Context, req event.ManifestRequest) (*event.ManifestReply, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	subj := event.ManifestSubject(d.cfg.Plant, d.cfg.Line, d.cfg.Station)
	msg, err := d.cfg.Conn.RequestWithContext(ctx, subj, b)
	if err != nil {
		return nil, fmt.Errorf("manifest request %s: %w", subj, err)
	}
	var rep event.ManifestReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return nil, fmt.Errorf("manifest reply on %s: %w", subj, err)
	}
	return &rep, nil
}
