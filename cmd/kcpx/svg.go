package main

// A small SVG writer for -plot: three stacked panels (throughput, RTT,
// retransmissions) over time. Hand-written so the module gains no plotting
// dependency; the output is plain SVG 1.1 that browsers and encoding/xml read.

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

const (
	svgW      = 820
	svgPanelH = 170
	svgLeft   = 70
	svgRight  = 20
	svgTop    = 50
	svgGap    = 40
)

type svgSeries struct {
	title, unit, color string
	value              func(sample) float64
}

// writeSVG plots res.Intervals.
func writeSVG(w io.Writer, res *perfResult) error {
	series := []svgSeries{
		{"throughput", "MB/s", "#1f77b4", func(s sample) float64 { return s.MBps }},
		{"smoothed RTT", "ms", "#2ca02c", func(s sample) float64 { return s.RTTms }},
		{"retransmissions", "segments per interval", "#d62728", func(s sample) float64 { return float64(s.Retrans) }},
	}
	height := svgTop + len(series)*(svgPanelH+svgGap) + 10
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgW, height, svgW, height)
	fmt.Fprintf(bw, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, height)
	fmt.Fprintf(bw, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", svgLeft, esc("kcpx perf: "+res.Remote))
	fmt.Fprintf(bw, `<text x="%d" y="40" fill="#555">%s</text>`+"\n", svgLeft,
		esc(fmt.Sprintf("%s; %.2f MB/s over %.1f s", res.Link, res.MBps, res.Seconds)))

	tMax := 0.0
	for _, s := range res.Intervals {
		tMax = math.Max(tMax, s.T)
	}
	if tMax == 0 {
		tMax = 1
	}
	plotW := float64(svgW - svgLeft - svgRight)
	for i, se := range series {
		y0 := float64(svgTop + i*(svgPanelH+svgGap))
		vMax := 0.0
		for _, s := range res.Intervals {
			vMax = math.Max(vMax, se.value(s))
		}
		vMax = niceCeil(vMax)
		fmt.Fprintf(bw, `<g id="%s">`+"\n", strings.ReplaceAll(se.title, " ", "-"))
		fmt.Fprintf(bw, `<text x="%d" y="%.1f" font-weight="bold">%s (%s)</text>`+"\n", svgLeft, y0+12, esc(se.title), esc(se.unit))
		top, bottom := y0+20, y0+float64(svgPanelH)
		fmt.Fprintf(bw, `<rect x="%d" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#999"/>`+"\n", svgLeft, top, plotW, bottom-top)
		for k := 0; k <= 4; k++ { // grid and y labels
			y := bottom - float64(k)/4*(bottom-top)
			fmt.Fprintf(bw, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", svgLeft, y, svgLeft+plotW, y)
			fmt.Fprintf(bw, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", svgLeft-6, y+4, fmtTick(vMax*float64(k)/4))
		}
		for k := 0; k <= 5; k++ { // x labels
			x := svgLeft + float64(k)/5*plotW
			fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="middle">%ss</text>`+"\n", x, bottom+15, fmtTick(tMax*float64(k)/5))
		}
		var pts strings.Builder
		for _, s := range res.Intervals {
			x := svgLeft + s.T/tMax*plotW
			y := bottom - se.value(s)/vMax*(bottom-top)
			fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
		}
		fmt.Fprintf(bw, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", se.color, strings.TrimSpace(pts.String()))
		fmt.Fprintf(bw, "</g>\n")
	}
	fmt.Fprintf(bw, "</svg>\n")
	return bw.Flush()
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
