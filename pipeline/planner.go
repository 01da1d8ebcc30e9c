package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keiline/keiline/pipeline/sequence"
	"github.com/keiline/keiline/schema"
)

// PlanConfig is what a sequencing run needs from the line config.
type PlanConfig struct {
	// VIN makes the VIN of a car of model and variant with a serial.
	// Required.
	VIN func(model, variant string, serial int) (string, error)
	// Rules are the line's sequencing rules.
	Rules sequence.Rules
	// Horizon is the most orders one run sequences; 0 means every open
	// order.
	Horizon int
	// Search bounds the sequencer (time limit, seed).
	Search sequence.Config
}

// PlanResult is one sequencing run: the cars appended to the build sequence.
type PlanResult struct {
	PlanID   int64
	FirstSeq int64
	Cars     []schema.SequencedCar
	Plan     *sequence.Plan
}

// Rules returns the sequencer's rules: option and model (heijunka) ratio
// rules as (name, p, q) and the longest colour batch.
func Rules[R interface{ Parts() (string, int, int) }](options, models []R, colourBatchMax int) sequence.Rules {
	var r sequence.Rules
	for _, o := range options {
		n, p, q := o.Parts()
		r.Options = append(r.Options, sequence.Option{Name: n, P: p, Q: q})
	}
	for _, o := range models {
		n, p, q := o.Parts()
		r.Models = append(r.Models, sequence.Option{Name: n, P: p, Q: q})
	}
	r.ColourBatchMax = colourBatchMax
	return r
}

// ErrNoOrders is returned by PlanOrders when no order is open.
var ErrNoOrders = errors.New("no open orders")

// PlanOrders sequences the open orders of the record (up to the horizon):
// the sequencer levels them under the line's rules, each car gets the next
// sequence number and its VIN (serial = sequence number), and the cars are
// appended to the build sequence in one transaction. Impossible rules give
// an error wrapping sequence.ErrImpossible that names the rule.
func PlanOrders(ctx context.Context, store *schema.Store, cfg PlanConfig) (*PlanResult, error) {
	if cfg.VIN == nil {
		return nil, errors.New("plan: no VIN maker (the line config needs a products section)")
	}
	open, err := store.OpenOrders(ctx, cfg.Horizon)
	if err != nil {
		return nil, err
	}
	if len(open) == 0 {
		return nil, ErrNoOrders
	}
	orders := make([]sequence.Order, len(open))
	byID := make(map[string]schema.Order, len(open))
	for i, o := range open {
		orders[i] = sequence.Order{ID: o.ID, Model: o.Model, Variant: o.Variant, Colour: o.Colour, Options: o.Options, Due: o.Due, Priority: o.Priority}
		byID[o.ID] = o
	}
	rules := cfg.Rules
	plan, err := sequence.PlanOrders(ctx, orders, rules, cfg.Search)
	if err != nil {
		return nil, fmt.Errorf("plan %d orders: %w", len(orders), err)
	}
	first, err := store.NextSeq(ctx)
	if err != nil {
		return nil, err
	}
	cars := make([]schema.SequencedCar, len(plan.Orders))
	for i, o := range plan.Orders {
		seq := first + int64(i)
		v, err := cfg.VIN(o.Model, o.Variant, int(seq))
		if err != nil {
			return nil, fmt.Errorf("plan: order %s (seq %d): VIN: %w", o.ID, seq, err)
		}
		cars[i] = schema.SequencedCar{Seq: seq, OrderID: o.ID, VIN: v, Model: o.Model, Variant: o.Variant, Colour: o.Colour, Options: byID[o.ID].Options}
	}
	ruleJSON, err := json.Marshal(struct {
		Rules   sequence.Rules
		Results []sequence.RuleResult
	}{rules, plan.Rules})
	if err != nil {
		return nil, err
	}
	id, err := store.SavePlan(ctx, schema.PlanSummary{
		Cars: len(cars), FirstSeq: first, Violations: plan.Violations, Excess: plan.Excess,
		BatchExcess: plan.BatchExcess, ColourChanges: plan.ColourChanges, Rules: ruleJSON, Seconds: plan.Elapsed.Seconds(),
	}, cars)
	if err != nil {
		return nil, err
	}
	for i := range cars {
		cars[i].PlanID = id
	}
	return &PlanResult{PlanID: id, FirstSeq: first, Cars: cars, Plan: plan}, nil
}
