package sim

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
)

// palette gives each policy a fixed colour, so plots of different traces
// read the same way.
var palette = map[string]string{
	"dra": "#d62728", "static-min": "#7f7f7f", "static-peak": "#8c564b", "spark": "#ff7f0e",
	"hpa": "#2ca02c", "amoro": "#9467bd", "oracle": "#1f77b4",
}

// PlotSVG draws demand (busy + waiting tasks), each policy's provisioned
// capacity and its queue over time, hand-written SVG. Every line is labelled
// at its right end, so no legend is needed. Two panels: threads on top,
// waiting tasks below.
func PlotSVG(w io.Writer, title string, results []*Result) error {
	const W, H, left, right, top, mid, bottom = 1000.0, 620.0, 60.0, 130.0, 40.0, 400.0, 580.0
	if len(results) == 0 {
		return fmt.Errorf("nothing to plot")
	}
	step := results[0].Series.Step
	n, yMax, qMax := 0, 1.0, 1.0
	for _, r := range results {
		n = max(n, len(r.Series.Capacity))
		for i := range r.Series.Capacity {
			yMax = max(yMax, r.Series.Capacity[i])
			if r.Policy == "oracle" { // the demand line drawn is the oracle's
				yMax = max(yMax, r.Series.Demand[i])
			}
			qMax = max(qMax, r.Series.Queue[i])
		}
	}
	yMax, qMax = nice(yMax), nice(qMax)
	x := func(i int) float64 { return left + (W-left-right)*float64(i)/float64(max(n-1, 1)) }
	yT := func(v float64) float64 { return mid - (mid-top-10)*v/yMax }
	yQ := func(v float64) float64 { return bottom - (bottom-mid-40)*v/qMax }
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="20" font-size="14">%s</text>`+"\n", left, html.EscapeString(title))
	axis := func(y0, y1, vmax float64, label string) {
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`, left, y0, left, y1)
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`, left, y0, W-right, y0)
		for k := 0; k <= 4; k++ {
			v := vmax * float64(k) / 4
			y := y0 - (y0-y1)*float64(k)/4
			fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/><text x="%.0f" y="%.1f" text-anchor="end">%g</text>`, left, y, W-right, y, left-4, y+4, v)
		}
		fmt.Fprintf(b, `<text x="12" y="%.0f" transform="rotate(-90 12 %.0f)" text-anchor="middle">%s</text>`+"\n", (y0+y1)/2, (y0+y1)/2, label)
	}
	axis(mid, top+10, yMax, "threads")
	axis(bottom, mid+40, qMax, "waiting tasks")
	hours := float64(n-1) * step.Hours()
	for k := 0; k <= 6; k++ {
		xx := left + (W-left-right)*float64(k)/6
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle">%.1fh</text>`, xx, bottom+16, hours*float64(k)/6)
	}
	type label struct {
		y     float64
		text  string
		color string
	}
	var labels, qlabels []label
	line := func(vals []float64, y func(float64) float64, color, dash string, width float64) float64 {
		var sb strings.Builder
		for i, v := range vals {
			fmt.Fprintf(&sb, "%.1f,%.1f ", x(i), y(v))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="%.1f" stroke-dasharray="%s" points="%s"/>`+"\n", color, width, dash, sb.String())
		if len(vals) == 0 {
			return y(0)
		}
		return y(vals[len(vals)-1])
	}
	// Demand is the oracle's (the work as it arrives, served at once).
	for _, r := range results {
		if r.Policy == "oracle" {
			ly := line(r.Series.Demand, yT, "black", "4 3", 1.5)
			labels = append(labels, label{ly, "demand", "black"})
		}
	}
	for _, r := range results {
		c := palette[r.Policy]
		if c == "" {
			c = "#17becf"
		}
		ly := line(r.Series.Capacity, yT, c, "", 1.5)
		labels = append(labels, label{ly, fmt.Sprintf("%s %.2fx", r.Policy, r.CostVsOracle), c})
		if r.Policy != "oracle" {
			qy := line(r.Series.Queue, yQ, c, "", 1.2)
			qlabels = append(qlabels, label{qy, fmt.Sprintf("%s p99 %.0fs", r.Policy, r.Wait.P99), c})
		}
	}
	for k, ls := range [][]label{labels, qlabels} {
		// Spread labels that would overlap, keeping their order, then
		// move the stack up if it ran past its panel.
		sort.SliceStable(ls, func(i, j int) bool { return ls[i].y < ls[j].y })
		for i := 1; i < len(ls); i++ {
			ls[i].y = math.Max(ls[i].y, ls[i-1].y+13)
		}
		limit := []float64{mid, bottom}[k]
		if n := len(ls); n > 0 && ls[n-1].y > limit {
			shift := ls[n-1].y - limit
			for i := range ls {
				ls[i].y -= shift
			}
		}
		for _, l := range ls {
			fmt.Fprintf(b, `<text x="%.0f" y="%.1f" fill="%s">%s</text>`+"\n", W-right+6, l.y+4, l.color, html.EscapeString(l.text))
		}
	}
	fmt.Fprintln(b, "</svg>")
	return b.Flush()
}

// nice rounds v up to 1, 2 or 5 times a power of ten.
func nice(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
