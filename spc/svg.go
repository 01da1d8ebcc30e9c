package spc

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Labels are the texts of a rendered chart, in the reader's language. Empty
// fields take the English defaults named.
type Labels struct {
	Title      string `json:"title"`      // above the charts; none by default
	Location   string `json:"location"`   // y axis of the top chart. Defaults to "Individual value" or "Subgroup mean".
	Dispersion string `json:"dispersion"` // y axis of the bottom chart. Defaults to "Moving range", "Range" or "Std dev".
	Sequence   string `json:"sequence"`   // x axis; none by default
	CL         string `json:"cl"`         // Defaults to "CL".
	UCL        string `json:"ucl"`        // Defaults to "UCL".
	LCL        string `json:"lcl"`        // Defaults to "LCL".
	USL        string `json:"usl"`        // Defaults to "USL".
	LSL        string `json:"lsl"`        // Defaults to "LSL".
	Target     string `json:"target"`     // Defaults to "Target".
	// Rules name the rules in a flagged point's title. Defaults to
	// Rule.String ("Nelson 2").
	Rules map[Rule]string `json:"rules"`
	// TimeFormat is the Go layout of times on the x axis and in point
	// titles, in the times' own location. Defaults to "01-02 15:04".
	TimeFormat string `json:"time_format"`
}

// SVGOptions configure RenderSVG.
type SVGOptions struct {
	// Width and Height are the image size in pixels. Default to 960 × 540;
	// allowed SVGMinWidth..SVGMaxSize by SVGMinHeight..SVGMaxSize.
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Labels Labels `json:"labels"`
	// Spec limits and target, where set, are drawn on the top chart.
	Spec Spec `json:"spec"`
	// PointHref, when set, makes each plotted point a link to the URL it
	// returns for the point (the car's trace page); "" leaves it a plain
	// point. The URL is escaped like every text.
	PointHref func(p Plotted) string `json:"-"`
}

// Size defaults and limits of SVGOptions.
const (
	SVGDefaultWidth  = 960
	SVGDefaultHeight = 540
	SVGMinWidth      = 240
	SVGMinHeight     = 180
	SVGMaxSize       = 8000
)

// Validate reports a bad size or spec with an error wrapping ErrConfig; zero
// sizes take their defaults.
func (o SVGOptions) Validate() error {
	if o.Width != 0 && (o.Width < SVGMinWidth || o.Width > SVGMaxSize) {
		return configError("svg Width %d; want %d to %d (0 for %d)", o.Width, SVGMinWidth, SVGMaxSize, SVGDefaultWidth)
	}
	if o.Height != 0 && (o.Height < SVGMinHeight || o.Height > SVGMaxSize) {
		return configError("svg Height %d; want %d to %d (0 for %d)", o.Height, SVGMinHeight, SVGMaxSize, SVGDefaultHeight)
	}
	return o.Spec.Validate()
}

// RenderSVG draws the chart pair as a standalone SVG document: the location
// chart (I or X̄) above the dispersion chart (MR, R or S), each with its
// centre line and control limits, the spec limits on the location chart
// where given, every plotted point with a <title> of its identity and value,
// and flagged points in the class "pt flag" with a <title> naming the rules
// that tripped there. It has no script and loads nothing; every text is
// escaped; the same input gives the same bytes. Errors (ErrConfig): invalid
// options, limits, or a non-finite plotted value.
func RenderSVG(c Chart, opt SVGOptions) ([]byte, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if err := c.Limits.Validate(); err != nil {
		return nil, err
	}
	for i, p := range c.Points {
		if !finite(p.Location) || (p.HasDispersion && !finite(p.Dispersion)) {
			return nil, configError("plotted point %d (id %q) is not finite", i, p.ID)
		}
	}
	opt = withDefaults(opt, c.Limits.Chart.Method)
	r := renderer{c: c, o: opt, lb: opt.Labels}
	if err := r.layout(); err != nil {
		return nil, err
	}
	r.document()
	return r.buf.Bytes(), nil
}

func withDefaults(o SVGOptions, m Method) SVGOptions {
	if o.Width == 0 {
		o.Width = SVGDefaultWidth
	}
	if o.Height == 0 {
		o.Height = SVGDefaultHeight
	}
	l := &o.Labels
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	switch m {
	case MethodIMR:
		def(&l.Location, "Individual value")
		def(&l.Dispersion, "Moving range")
	case MethodXbarR:
		def(&l.Location, "Subgroup mean")
		def(&l.Dispersion, "Range")
	default:
		def(&l.Location, "Subgroup mean")
		def(&l.Dispersion, "Std dev")
	}
	def(&l.CL, "CL")
	def(&l.UCL, "UCL")
	def(&l.LCL, "LCL")
	def(&l.USL, "USL")
	def(&l.LSL, "LSL")
	def(&l.Target, "Target")
	def(&l.TimeFormat, "01-02 15:04")
	return o
}

// panel is one chart's plot area and value scale.
type panel struct {
	top, bottom float64 // pixels
	lo, hi      float64 // values at bottom and top
	step        float64 // tick step
}

func (p panel) y(v float64) float64 { return p.bottom - (v-p.lo)/(p.hi-p.lo)*(p.bottom-p.top) }

type renderer struct {
	c           Chart
	o           SVGOptions
	lb          Labels
	left, right float64
	loc, disp   panel
	buf         bytes.Buffer
	tags        []tag // line labels of the current panel, drawn at its end
}

// tag is a line's label at the right of a panel.
type tag struct {
	y     float64
	class string
	text  string
}

// labelGap is the least vertical distance between two line labels.
const labelGap = 12

// Layout margins in pixels.
const (
	marginLeft   = 72
	marginRight  = 110
	marginTop    = 36
	marginBottom = 44
	panelGap     = 34
)

func (r *renderer) layout() error {
	r.left, r.right = marginLeft, float64(r.o.Width-marginRight)
	plotTop, plotBottom := float64(marginTop), float64(r.o.Height-marginBottom)
	split := plotTop + (plotBottom-plotTop-panelGap)*0.62
	l := r.c.Limits
	lo, hi := math.Min(l.Location.LCL, l.Location.Centre), math.Max(l.Location.UCL, l.Location.Centre)
	for _, b := range []Bound{r.o.Spec.LSL, r.o.Spec.USL, r.o.Spec.Target} {
		if b.Set {
			lo, hi = math.Min(lo, b.Value), math.Max(hi, b.Value)
		}
	}
	dhi := l.Dispersion.UCL
	for _, p := range r.c.Points {
		lo, hi = math.Min(lo, p.Location), math.Max(hi, p.Location)
		if p.HasDispersion {
			dhi = math.Max(dhi, p.Dispersion)
		}
	}
	var err error
	if r.loc, err = scale(lo, hi, plotTop, split); err != nil {
		return err
	}
	r.disp, err = scale(math.Min(0, l.Dispersion.LCL), dhi, split+panelGap, plotBottom)
	r.disp.lo = math.Max(r.disp.lo, 0) // ranges are never negative
	return err
}

// scale pads [lo, hi] by 5 % and widens it to whole tick steps. It fails
// when the values cannot be told apart at the drawing's precision (a span
// too wide for float64, or too narrow for the values' magnitude).
func scale(lo, hi, top, bottom float64) (panel, error) {
	pad := (hi - lo) * 0.05
	if !(pad > 0) {
		pad = math.Max(math.Abs(hi)*0.05, 1)
	}
	step := niceStep((hi - lo + 2*pad) / 5)
	p := panel{top: top, bottom: bottom, lo: math.Floor((lo-pad)/step) * step, hi: math.Ceil((hi+pad)/step) * step, step: step}
	if !finite(p.lo) || !finite(p.hi) || !(step > 0) || !finite(step) || !(p.hi > p.lo) || (p.hi-p.lo)/step > maxTicks || p.lo+step == p.lo {
		return panel{}, configError("values from %v to %v cannot be drawn on one scale", lo, hi)
	}
	return p, nil
}

// maxTicks bounds the ticks of an axis (about 5 to 12 are drawn).
const maxTicks = 40

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

func (r *renderer) x(i int) float64 {
	n := max(len(r.c.Points), 1)
	return r.left + (float64(i)+0.5)*(r.right-r.left)/float64(n)
}

func (r *renderer) printf(format string, args ...any) { fmt.Fprintf(&r.buf, format, args...) }

func (r *renderer) document() {
	r.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" class="spc-chart" font-family="sans-serif" font-size="11">`+"\n", r.o.Width, r.o.Height, r.o.Width, r.o.Height)
	if r.lb.Title != "" {
		r.printf("<title>%s</title>\n", esc(r.lb.Title))
	}
	r.printf("<style>%s</style>\n", svgStyle)
	if r.lb.Title != "" {
		r.printf(`<text class="title" x="%s" y="%s" font-size="14">%s</text>`+"\n", num(r.left), num(marginTop-14), esc(r.lb.Title))
	}
	l := r.c.Limits
	r.panelStart("location", r.loc, r.lb.Location)
	for _, s := range []struct {
		class, label string
		b            Bound
	}{{"lsl", r.lb.LSL, r.o.Spec.LSL}, {"usl", r.lb.USL, r.o.Spec.USL}, {"target", r.lb.Target, r.o.Spec.Target}} {
		if s.b.Set {
			r.hline(r.loc, s.class, s.label, s.b.Value)
		}
	}
	r.limitLines(r.loc, l.Location)
	r.series(PartLocation, r.loc)
	r.flushTags()
	r.printf("</g>\n")
	r.panelStart("dispersion", r.disp, r.lb.Dispersion)
	r.limitLines(r.disp, l.Dispersion)
	r.series(PartDispersion, r.disp)
	r.flushTags()
	r.xAxis()
	r.printf("</g>\n</svg>\n")
}

const svgStyle = `.axis{stroke:#444;stroke-width:1}.grid{stroke:#ddd;stroke-width:1}` +
	`line.cl{stroke:#2a7;stroke-width:1.5}line.ucl,line.lcl{stroke:#c33;stroke-width:1.5;stroke-dasharray:6 3}` +
	`line.usl,line.lsl{stroke:#36c;stroke-width:1.5}line.target{stroke:#36c;stroke-width:1;stroke-dasharray:2 3}` +
	`.series{fill:none;stroke:#555;stroke-width:1}.pt{fill:#333}.pt.flag{fill:#d00;stroke:#000;stroke-width:1}` +
	`.tick,.label{fill:#333}.label.ucl,.label.lcl{fill:#c33}.label.cl{fill:#185}` +
	`.label.usl,.label.lsl,.label.target{fill:#36c}.title{fill:#000;font-weight:bold}`

func (r *renderer) panelStart(part string, p panel, label string) {
	r.printf(`<g class="panel" data-part="%s">`+"\n", part)
	r.printf(`<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", num(r.left), num(p.top), num(r.left), num(p.bottom))
	r.printf(`<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", num(r.left), num(p.bottom), num(r.right), num(p.bottom))
	dec := decimals(p.step)
	for i := 0; i <= maxTicks; i++ {
		v := p.lo + float64(i)*p.step
		if v > p.hi+p.step*1e-6 {
			break
		}
		if math.Abs(v) < p.step*1e-9 {
			v = 0 // no "-0.0" tick
		}
		y := p.y(v)
		r.printf(`<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>`, num(r.left), num(y), num(r.right), num(y))
		r.printf(`<text class="tick" data-value="%s" x="%s" y="%s" text-anchor="end">%s</text>`+"\n",
			strconv.FormatFloat(v, 'f', dec, 64), num(r.left-6), num(y+4), strconv.FormatFloat(v, 'f', dec, 64))
	}
	mid := (p.top + p.bottom) / 2
	r.printf(`<text class="label" x="%s" y="%s" text-anchor="middle" transform="rotate(-90 %s %s)">%s</text>`+"\n",
		num(16), num(mid), num(16), num(mid), esc(label))
}

func (r *renderer) limitLines(p panel, l Lines) {
	r.hline(p, "ucl", r.lb.UCL, l.UCL)
	r.hline(p, "cl", r.lb.CL, l.Centre)
	r.hline(p, "lcl", r.lb.LCL, l.LCL)
}

func (r *renderer) hline(p panel, class, label string, v float64) {
	y := p.y(v)
	r.printf(`<line class="%s" data-value="%s" x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", class, fullNum(v), num(r.left), num(y), num(r.right), num(y))
	r.tags = append(r.tags, tag{y: y, class: class, text: label + " " + strconv.FormatFloat(v, 'f', decimals(p.step)+2, 64)})
}

// flushTags draws the panel's line labels top to bottom, pushed apart where
// lines are closer than labelGap.
func (r *renderer) flushTags() {
	slices.SortStableFunc(r.tags, func(a, b tag) int { return cmp.Compare(a.y, b.y) })
	for i := range r.tags {
		if i > 0 && r.tags[i].y-r.tags[i-1].y < labelGap {
			r.tags[i].y = r.tags[i-1].y + labelGap
		}
		r.printf(`<text class="label %s" x="%s" y="%s">%s</text>`+"\n", r.tags[i].class, num(r.right+6), num(r.tags[i].y+4), esc(r.tags[i].text))
	}
	r.tags = r.tags[:0]
}

func (r *renderer) series(part Part, p panel) {
	var path strings.Builder
	for i, pt := range r.c.Points {
		v, ok := pt.Location, true
		if part == PartDispersion {
			v, ok = pt.Dispersion, pt.HasDispersion
		}
		if ok {
			if path.Len() > 0 {
				path.WriteByte(' ')
			}
			path.WriteString(num(r.x(i)) + "," + num(p.y(v)))
		}
	}
	if path.Len() > 0 {
		r.printf(`<polyline class="series" points="%s"/>`+"\n", path.String())
	}
	dec := decimals(p.step) + 2
	for i, pt := range r.c.Points {
		v, ok := pt.Location, true
		if part == PartDispersion {
			v, ok = pt.Dispersion, pt.HasDispersion
		}
		if !ok {
			continue
		}
		var names []string
		for _, vi := range r.c.Violations {
			if vi.Index == i && vi.Part == part {
				names = append(names, r.ruleName(vi.Rule))
			}
		}
		class := "pt"
		title := r.pointTitle(pt, v, dec)
		if len(names) > 0 {
			class = "pt flag"
			title = strings.Join(names, "; ") + " — " + title
		}
		href := ""
		if r.o.PointHref != nil {
			href = r.o.PointHref(pt)
		}
		if href != "" {
			r.printf(`<a href="%s">`, esc(href))
		}
		r.printf(`<circle class="%s" data-index="%d" cx="%s" cy="%s" r="%s"><title>%s</title></circle>`,
			class, i, num(r.x(i)), num(p.y(v)), radius(class), esc(title))
		if href != "" {
			r.printf(`</a>`)
		}
		r.printf("\n")
	}
}

func radius(class string) string {
	if class == "pt" {
		return "2.5"
	}
	return "4"
}

func (r *renderer) ruleName(rule Rule) string {
	if n := r.lb.Rules[rule]; n != "" {
		return n
	}
	return rule.String()
}

func (r *renderer) pointTitle(p Plotted, v float64, dec int) string {
	var b strings.Builder
	if p.FirstID != p.ID {
		b.WriteString(p.FirstID + " … ")
	}
	b.WriteString(p.ID)
	if !p.Time.IsZero() {
		b.WriteString(" " + p.Time.Format(r.lb.TimeFormat))
	}
	b.WriteString(": " + strconv.FormatFloat(v, 'f', dec, 64))
	return b.String()
}

// xAxis labels about six points, by time where the points have one, else by
// their number.
func (r *renderer) xAxis() {
	n := len(r.c.Points)
	if n == 0 {
		return
	}
	every := max(1, int(math.Ceil(float64(n)/6)))
	for i := 0; i < n; i += every {
		p := r.c.Points[i]
		label := strconv.Itoa(i + 1)
		if !p.Time.IsZero() {
			label = p.Time.Format(r.lb.TimeFormat)
		}
		r.printf(`<text class="tick" x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", num(r.x(i)), num(r.disp.bottom+16), esc(label))
	}
	if r.lb.Sequence != "" {
		r.printf(`<text class="label" x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", num((r.left+r.right)/2), num(float64(r.o.Height)-6), esc(r.lb.Sequence))
	}
}

// decimals is the number of decimals that shows a tick step exactly.
func decimals(step float64) int { return max(0, int(-math.Floor(math.Log10(step)+1e-9))) }

func num(v float64) string     { return strconv.FormatFloat(v, 'f', 1, 64) }
func fullNum(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
