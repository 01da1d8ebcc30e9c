package spc_test

import (
	"bytes"
	"encoding/xml"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/spc"
)

var update = flag.Bool("update", false, "rewrite the golden SVG files")

// svgNode is a generic XML element.
type svgNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []svgNode  `xml:",any"`
	Text     string     `xml:",chardata"`
}

func (n svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n svgNode) float(t *testing.T, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(n.attr(name), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.XMLName.Local, name, n.attr(name), err)
	}
	return v
}

func (n svgNode) walk(f func(svgNode)) {
	f(n)
	for _, c := range n.Children {
		c.walk(f)
	}
}

func parseSVG(t *testing.T, b []byte) svgNode {
	t.Helper()
	var root svgNode
	if err := xml.Unmarshal(b, &root); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, b)
	}
	return root
}

// panels returns the <g data-part> groups by part.
func panels(root svgNode) map[string]svgNode {
	out := map[string]svgNode{}
	root.walk(func(n svgNode) {
		if n.XMLName.Local == "g" && n.attr("data-part") != "" {
			out[n.attr("data-part")] = n
		}
	})
	return out
}

// flowrateChart is the NIST flow-rate chart, continued by three new batches
// against its frozen limits; the last is beyond the UCL. Points carry no
// times, so the output does not depend on the clock.
func flowrateChart(t *testing.T) spc.Chart {
	values := append(readValues(t, "nist_flowrate.txt"), 53.0, 50.5, 57.2)
	pts := make([]spc.Point, len(values))
	for i, v := range values {
		pts[i] = spc.Point{Value: v, ID: "B" + strconv.Itoa(i+1)}
	}
	l, err := spc.ComputeLimits(pts[:10], imr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := spc.Check(l, pts, spc.NelsonRules)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var flowrateOptions = spc.SVGOptions{
	Width: 640, Height: 400,
	Labels: spc.Labels{Title: "Flow rate <batch> & \"NIST\"", Location: "Flow rate", Sequence: "Batch"},
	Spec:   spc.Spec{LSL: spc.At(45), USL: spc.At(58)},
}

func TestRenderSVGGolden(t *testing.T) {
	got, err := spc.RenderSVG(flowrateChart(t), flowrateOptions)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "flowrate.golden.svg")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("SVG differs from %s (run go test -update after checking it by eye)", golden)
	}
	again, _ := spc.RenderSVG(flowrateChart(t), flowrateOptions)
	if !bytes.Equal(got, again) {
		t.Error("two renders of one chart differ")
	}
}

// The drawing agrees with the chart: one circle per plotted value, the
// flagged ones marked and titled with the rule and the point's identity, and
// every line and point at the height its value has on the axis ticks.
func TestRenderSVGStructure(t *testing.T) {
	c := flowrateChart(t)
	b, err := spc.RenderSVG(c, flowrateOptions)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("<script")) || bytes.Contains(b, []byte("href")) || bytes.Contains(b, []byte("<batch>")) {
		t.Errorf("SVG has a script, a link or unescaped text")
	}
	root := parseSVG(t, b)
	if root.XMLName.Local != "svg" || root.attr("width") != "640" || root.attr("height") != "400" {
		t.Errorf("root <%s width=%s height=%s>; want <svg width=640 height=400>", root.XMLName.Local, root.attr("width"), root.attr("height"))
	}
	ps := panels(root)
	wantPoints := map[string]int{"location": 13, "dispersion": 12} // the first individual has no moving range
	for part, want := range wantPoints {
		g, ok := ps[part]
		if !ok {
			t.Fatalf("no %s panel", part)
		}
		// the axis: value = a + b·y from the first and last tick
		var ticks []svgNode
		var circles, flagged []svgNode
		lines := map[string]svgNode{}
		g.walk(func(n svgNode) {
			switch {
			case n.XMLName.Local == "text" && n.attr("class") == "tick" && n.attr("data-value") != "":
				ticks = append(ticks, n)
			case n.XMLName.Local == "circle":
				circles = append(circles, n)
				if n.attr("class") == "pt flag" {
					flagged = append(flagged, n)
				}
			case n.XMLName.Local == "line" && n.attr("data-value") != "":
				lines[n.attr("class")] = n
			}
		})
		if len(circles) != want {
			t.Errorf("%s: %d points; want %d", part, len(circles), want)
		}
		if len(ticks) < 3 {
			t.Fatalf("%s: %d ticks", part, len(ticks))
		}
		t0, t1 := ticks[0], ticks[len(ticks)-1]
		v0, v1 := t0.float(t, "data-value"), t1.float(t, "data-value")
		y0, y1 := t0.float(t, "y")-4, t1.float(t, "y")-4 // labels sit 4 px below their line
		yOf := func(v float64) float64 { return y0 + (v-v0)/(v1-v0)*(y1-y0) }
		l := c.Limits.Location
		if part == "dispersion" {
			l = c.Limits.Dispersion
		}
		for class, v := range map[string]float64{"ucl": l.UCL, "cl": l.Centre, "lcl": l.LCL} {
			line, ok := lines[class]
			if !ok {
				t.Fatalf("%s: no %s line", part, class)
			}
			if y := line.float(t, "y1"); math.Abs(y-yOf(v)) > 0.15 {
				t.Errorf("%s %s line at y %.1f; the ticks put %v at %.2f", part, class, y, v, yOf(v))
			}
		}
		for _, circle := range circles {
			i, _ := strconv.Atoi(circle.attr("data-index"))
			v := c.Points[i].Location
			if part == "dispersion" {
				v = c.Points[i].Dispersion
			}
			if y := circle.float(t, "cy"); math.Abs(y-yOf(v)) > 0.15 {
				t.Errorf("%s point %d at y %.1f; the ticks put %v at %.2f", part, i, y, v, yOf(v))
			}
		}
		if part == "location" {
			if _, ok := lines["usl"]; !ok {
				t.Error("no USL line")
			}
			// batch 13 (57.2) is beyond the UCL of 55.80: Nelson 1 at point 12
			if len(flagged) != 1 || flagged[0].attr("data-index") != "12" {
				t.Fatalf("location flagged %d points; want point 12 alone", len(flagged))
			}
			title := flagged[0].Children[0].Text
			if !strings.Contains(title, "Nelson 1") || !strings.Contains(title, "B13") {
				t.Errorf("flag title %q; want the rule and the batch id", title)
			}
		}
	}
}

// Labels come from the caller, in any language; rule names too.
func TestRenderSVGLabelsInJapanese(t *testing.T) {
	opt := flowrateOptions
	opt.Labels = spc.Labels{Title: "流量", Location: "流量", Dispersion: "移動範囲", CL: "中心線", UCL: "上方管理限界", LCL: "下方管理限界",
		Rules: map[spc.Rule]string{spc.Nelson1: "ネルソン則1"}, TimeFormat: "01/02 15:04"}
	c := flowrateChart(t)
	now := time.Now()
	for i := range c.Points {
		c.Points[i].Time = now.Add(time.Duration(i) * time.Minute)
	}
	b, err := spc.RenderSVG(c, opt)
	if err != nil {
		t.Fatal(err)
	}
	parseSVG(t, b)
	for _, want := range []string{"移動範囲", "上方管理限界", "ネルソン則1 — B13 " + c.Points[12].Time.Format("01/02 15:04")} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestRenderSVGRejectsBadOptions(t *testing.T) {
	c := flowrateChart(t)
	for _, o := range []spc.SVGOptions{{Width: 10}, {Height: 90000}, {Spec: spc.Spec{LSL: spc.At(2), USL: spc.At(1)}}} {
		if _, err := spc.RenderSVG(c, o); err == nil {
			t.Errorf("RenderSVG(%+v) succeeded; want ErrConfig", o)
		}
	}
}

func TestRenderSVGLinksEachPointWhereAsked(t *testing.T) {
	opt := flowrateOptions
	opt.PointHref = func(p spc.Plotted) string {
		if p.ID == "B2" {
			return "" // no link for this one
		}
		return `/trace/vin/` + p.ID + `?"x"&y=<1>`
	}
	c := flowrateChart(t)
	b, err := spc.RenderSVG(c, opt)
	if err != nil {
		t.Fatal(err)
	}
	root := parseSVG(t, b) // still well-formed with a hostile URL
	links := map[string]string{}
	root.walk(func(n svgNode) {
		if n.XMLName.Local == "a" {
			for _, ch := range n.Children {
				if ch.XMLName.Local == "circle" {
					links[ch.attr("data-index")+"/"+panelOf(root, ch)] = n.attr("href")
				}
			}
		}
	})
	// Each plotted point of both panels but B2's (index 1) is a link;
	// the first point has no moving range, so no dispersion circle.
	if want := 2*len(c.Points) - 1 - 2; len(links) != want {
		t.Fatalf("%d linked points, want %d: %v", len(links), want, links)
	}
	if got := links["12/location"]; got != `/trace/vin/B13?"x"&y=<1>` {
		t.Errorf("B13's link = %q", got)
	}
	if _, ok := links["1/location"]; ok {
		t.Error("B2 is linked")
	}
	plain, err := spc.RenderSVG(c, flowrateOptions)
	if err != nil || bytes.Contains(plain, []byte("<a ")) {
		t.Errorf("without PointHref the SVG has links (%v)", err)
	}
}

// panelOf names the panel (data-part) holding the circle n.
func panelOf(root svgNode, n svgNode) string {
	for part, p := range panels(root) {
		found := false
		p.walk(func(m svgNode) {
			if m.XMLName.Local == "circle" && m.attr("data-index") == n.attr("data-index") && m.attr("cy") == n.attr("cy") {
				found = true
			}
		})
		if found {
			return part
		}
	}
	return ""
}
