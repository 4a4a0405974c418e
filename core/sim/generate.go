package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// Shapes are the workloads Generate knows, with their default span.
var Shapes = map[string]time.Duration{
	"nightly":      24 * time.Hour,
	"diurnal":      48 * time.Hour,
	"weekend":      48 * time.Hour,
	"small-tables": 6 * time.Hour,
	"storm":        24 * time.Hour,
}

// ShapeNames lists Shapes in a fixed order.
func ShapeNames() []string {
	out := make([]string, 0, len(Shapes))
	for n := range Shapes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Generate makes a seeded trace of a typical shape over span (0: the
// shape's default). The same shape, seed and span always give the same rows.
//
//   - nightly: an ingestion burst at 01:00 every day (20 tables, each 10-40
//     tasks of 1-10 min within the hour) over a trickle of one task every
//     ~10 minutes.
//   - diurnal: Poisson arrivals whose rate follows the day, peaking at
//     15:00 at ~2 tasks a minute, trough near zero; tasks 30 s-5 min on 30 tables.
//   - weekend: quiet: a task every ~30 minutes, 1-5 min, 5 tables.
//   - small-tables: 500 tables, short tasks (5-60 s), ~6 a minute, steady.
//   - storm: every 6 hours, 10 tables get 20-40 long compactions each
//     (30-60 min) within 15 minutes.
func Generate(shape string, seed uint64, span time.Duration) ([]Row, error) {
	def, ok := Shapes[shape]
	if !ok {
		return nil, fmt.Errorf("unknown trace shape %q (have %s)", shape, strings.Join(ShapeNames(), ", "))
	}
	if span <= 0 {
		span = def
	}
	if span > 31*24*time.Hour {
		return nil, fmt.Errorf("trace span %s is longer than 31 days", span)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(len(shape))))
	uni := func(lo, hi float64) time.Duration {
		return time.Duration((lo + rng.Float64()*(hi-lo)) * float64(time.Second)).Round(time.Second)
	}
	var rows []Row
	poisson := func(meanGap float64, rate func(t float64) float64, add func(at time.Duration)) {
		// Thinning: candidates at the peak rate, kept with rate(t).
		for t := rng.ExpFloat64() * meanGap; t < span.Seconds(); t += rng.ExpFloat64() * meanGap {
			if rng.Float64() < rate(t) {
				add(time.Duration(t * float64(time.Second)).Round(time.Second))
			}
		}
	}
	always := func(float64) float64 { return 1 }
	table := func(prefix string, n int) string { return fmt.Sprintf("%s_%03d", prefix, rng.IntN(n)) }
	day := 24 * time.Hour
	switch shape {
	case "nightly":
		for d := time.Duration(0); d < span; d += day {
			for tb := range 20 {
				n := 10 + rng.IntN(31)
				at := d + time.Hour + uni(0, 3600)
				for range n {
					rows = append(rows, Row{Submit: at, Duration: uni(60, 600), Table: fmt.Sprintf("ingest_%02d", tb)})
				}
			}
		}
		poisson(600, always, func(at time.Duration) {
			rows = append(rows, Row{Submit: at, Duration: uni(30, 300), Table: table("misc", 10)})
		})
	case "diurnal":
		poisson(30, func(t float64) float64 {
			return 0.5 + 0.5*math.Cos(2*math.Pi*(t-15*3600)/86400)
		}, func(at time.Duration) {
			rows = append(rows, Row{Submit: at, Duration: uni(30, 300), Table: table("events", 30)})
		})
	case "weekend":
		poisson(1800, always, func(at time.Duration) {
			rows = append(rows, Row{Submit: at, Duration: uni(60, 300), Table: table("dim", 5)})
		})
	case "small-tables":
		poisson(10, always, func(at time.Duration) {
			rows = append(rows, Row{Submit: at, Duration: uni(5, 60), Table: table("t", 500)})
		})
	case "storm":
		for s := time.Duration(0); s < span; s += 6 * time.Hour {
			for tb := range 10 {
				at := s + uni(0, 900)
				for range 20 + rng.IntN(21) {
					rows = append(rows, Row{Submit: at, Duration: uni(1800, 3600), Table: fmt.Sprintf("fact_%02d", tb)})
				}
			}
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Submit < rows[j].Submit })
	return rows, nil
}
