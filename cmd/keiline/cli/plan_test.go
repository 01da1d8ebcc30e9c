package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/sequence"
)

// TestOrdersPlan: keiline orders plan sequences the open orders under the
// line config's rules, numbers them and gives each its VIN, reports the
// violations and colour changes; rules no sequence can meet are an error
// naming the rule, and nothing is sequenced then.
func TestOrdersPlan(t *testing.T) {
	state := ordersState(t)
	lc, err := line.Load(filepath.Join(state, "line.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lc.Sequencing = &line.Sequencing{Options: []line.Ratio{{Name: "EV", P: 1, Q: 2}}, ColourBatchMax: 2}
	b, err := lc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "line.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	startStateDB(t, state)
	var out bytes.Buffer
	day := writeFile(t, "day.csv", `order_id,model,variant,colour
A,KE,Std,white
B,KE,Std,white
C,KV,2WD,white
D,KV,4WD,red
`)
	if err := ordersImport(ctx, []string{day, "--state", state}, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := ordersPlan(ctx, []string{"--state", state, "--json", "--time-limit", "2s"}, &out); err != nil {
		t.Fatal(err)
	}
	var plan struct {
		FirstSeq      int64 `json:"first_seq"`
		Violations    int   `json:"violations"`
		ColourChanges int   `json:"colour_changes"`
		Cars          []struct {
			Seq                             int64
			VIN, Model, Variant, Colour, ID string
			OrderID                         string `json:"order_id"`
		} `json:"cars"`
	}
	if err := json.Unmarshal(out.Bytes(), &plan); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if plan.FirstSeq != 1 || len(plan.Cars) != 4 || plan.Violations != 0 {
		t.Fatalf("plan %s, want 4 cars from seq 1 without violations", out.String())
	}
	// EV 1/2 keeps the two EVs apart; three whites in a row break the batch
	// of 2, so one colour change at least.
	var models []string
	for i, c := range plan.Cars {
		models = append(models, c.Model)
		want, err := lc.Products.VIN(c.Model, c.Variant, int(c.Seq))
		if c.Seq != int64(i+1) || err != nil || c.VIN != want || vin.Validate(c.VIN) != nil {
			t.Errorf("car %d: seq %d VIN %s, want seq %d VIN %s (%v)", i, c.Seq, c.VIN, i+1, want, err)
		}
	}
	for i := 1; i < len(models); i++ {
		if models[i] == "KE" && models[i-1] == "KE" {
			t.Errorf("EVs side by side: %v", models)
		}
	}
	if plan.ColourChanges < 1 {
		t.Errorf("colour changes %d, want at least 1", plan.ColourChanges)
	}

	// Three more EVs and one van: EV 1/2 cannot fit them.
	more := writeFile(t, "more.csv", "order_id,model,variant,colour\nE,KE,Std,red\nF,KE,Std,red\nG,KE,Std,blue\nH,KV,2WD,blue\n")
	if err := ordersImport(ctx, []string{more, "--state", state}, &out); err != nil {
		t.Fatal(err)
	}
	err = ordersPlan(ctx, []string{"--state", state, "--time-limit", "2s"}, &out)
	if !errors.Is(err, sequence.ErrImpossible) || !strings.Contains(err.Error(), "option rule EV 1/2") {
		t.Fatalf("impossible rules: %v, want an error naming option rule EV 1/2", err)
	}
	out.Reset()
	if err := ordersList(ctx, []string{"--status", "open", "--state", state}, &out); err != nil || !strings.Contains(out.String(), "4 orders") {
		t.Errorf("after the refused plan: %v\n%s\nwant the 4 new orders still open", err, out.String())
	}
}
