package kcp

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestPlotControllers writes an SVG of throughput, smoothed RTT and window
// over time for one flow per controller alone on the 20 Mbit/s bottleneck
// at 5% random loss, to the file named by KCPX_PLOT (docs/cc-5pct.svg is
// made with KCPX_PLOT=docs/cc-5pct.svg go test -run TestPlotControllers).
// Without KCPX_PLOT it draws the plot in memory and checks its shape only.
func TestPlotControllers(t *testing.T) {
	parallelTest(t)
	const (
		duration = 12_000
		step     = 100 // ms per point
	)
	type line struct {
		name  string
		color string
		pts   []bnPoint
	}
	var lines []line
	colors := map[string]string{CongestionBBR: "#1f77b4", CongestionCUBIC: "#ff7f0e", CongestionKCP: "#2ca02c", CongestionNone: "#d62728"}
	for _, cc := range []string{CongestionBBR, CongestionCUBIC, CongestionKCP, CongestionNone} {
		r := runBottleneck(t, bnConfig{cc: cc, flows: 1, loss: 0.05, duration: duration, warmup: 0, seed: 16, sample: step})
		lines = append(lines, line{cc, colors[cc], r.flows[0].series})
	}
	type panel struct {
		title string
		max   float64
		value func(prev, p bnPoint) float64
	}
	panels := []panel{
		{"goodput (Mbit/s)", 25, func(prev, p bnPoint) float64 {
			return float64(p.bytes-prev.bytes) * 8 / float64(p.t-prev.t) / 1000
		}},
		{"smoothed RTT (ms)", 120, func(_, p bnPoint) float64 { return float64(p.rtt) }},
		{"window (segments)", 520, func(_, p bnPoint) float64 { return float64(p.cwnd) }},
	}
	const (
		w, ph, left, top, gap = 900.0, 200.0, 60.0, 40.0, 50.0
	)
	var b strings.Builder
	height := top + float64(len(panels))*(ph+gap) + 20
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w+left+140, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="14">One flow per controller, 20 Mbit/s bottleneck, 1 BDP buffer, 40 ms RTT, 5%% random loss (simulated)</text>`+"\n", left)
	for i, pn := range panels {
		y0 := top + float64(i)*(ph+gap)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", left, y0-6, pn.title)
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`+"\n", left, y0, w, ph)
		for k := 0; k <= 4; k++ {
			v := pn.max * float64(k) / 4
			y := y0 + ph - ph*float64(k)/4
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%.0f</text>`+"\n", left-4, y+4, v)
			fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/>`+"\n", left, y, left+w, y)
		}
		for s := 0; s <= duration/1000; s += 2 {
			x := left + w*float64(s*1000)/duration
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%d s</text>`+"\n", x, y0+ph+14, s)
		}
		for _, ln := range lines {
			var pts []string
			for j := 1; j < len(ln.pts); j++ {
				v := min(pn.value(ln.pts[j-1], ln.pts[j]), pn.max)
				x := left + w*float64(ln.pts[j].t)/duration
				y := y0 + ph - ph*v/pn.max
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			}
			if len(pts) < duration/step/2 {
				t.Fatalf("%s: only %d points", ln.name, len(pts))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", ln.color, strings.Join(pts, " "))
		}
	}
	for i, ln := range lines {
		y := top + 20*float64(i)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="3"/>`+"\n", left+w+15, y, left+w+40, y, ln.color)
		name := ln.name
		switch name {
		case CongestionKCP:
			name = "kcp (nc=0)"
		case CongestionNone:
			name = "none (nc=1)"
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", left+w+45, y+4, name)
	}
	b.WriteString("</svg>\n")
	if path := os.Getenv("KCPX_PLOT"); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
}
