package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The runner's series the scale harness reads. latenessMetric and
// missedMetric come with the fixed-rate scheduler; until a runner exports
// them, lateness comes from the decision log (see lateness.go).
const (
	evaluationsMetric = "ebb_evaluations_total"
	latenessMetric    = "ebb_schedule_lateness_seconds"
	missedMetric      = "ebb_schedule_missed_total"
)

// scrape is what one read of /metrics says, summed over chains.
type scrape struct {
	// evaluations by result (ok, degraded, error, skipped).
	evaluations map[string]float64
	// lateness is nil when the runner does not export the histogram.
	lateness *histogram
	missed   float64
	// hasMissed says whether missedMetric was exported at all.
	hasMissed bool
	bytes     int64
}

// achieved are the evaluations that ran to a decision.
func (s scrape) achieved() float64 { return s.evaluations["ok"] + s.evaluations["degraded"] }

// histogram is a Prometheus histogram summed over its label sets: cumulative
// counts by upper bound.
type histogram struct {
	le    []float64
	count []float64
	sum   float64
	total float64
}

// parseMetrics reads a text exposition (format 0.0.4) line by line, keeping
// only the series above, so a body of many megabytes (10,000 chains) costs
// no more memory than its longest line.
func parseMetrics(r io.Reader) (scrape, error) {
	s := scrape{evaluations: map[string]float64{}}
	buckets := map[float64]float64{}
	var hist bool
	var sum, total float64
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		s.bytes += int64(len(line))
		if err != nil && err != io.EOF {
			return s, err
		}
		if t := strings.TrimSpace(line); t != "" && t[0] != '#' {
			name, labels, value, perr := parseSample(t)
			if perr != nil {
				return s, fmt.Errorf("/metrics line %d: %w", n, perr)
			}
			switch name {
			case evaluationsMetric:
				s.evaluations[labels["result"]] += value
			case missedMetric:
				s.missed += value
				s.hasMissed = true
			case latenessMetric + "_bucket":
				le, perr := strconv.ParseFloat(labels["le"], 64)
				if perr != nil {
					return s, fmt.Errorf("/metrics line %d: le %q: %w", n, labels["le"], perr)
				}
				buckets[le] += value
				hist = true
			case latenessMetric + "_sum":
				sum += value
			case latenessMetric + "_count":
				total += value
			}
		}
		if err == io.EOF {
			break
		}
	}
	if hist {
		h := &histogram{sum: sum, total: total}
		for le := range buckets {
			h.le = append(h.le, le)
		}
		sort.Float64s(h.le)
		for _, le := range h.le {
			h.count = append(h.count, buckets[le])
		}
		s.lateness = h
	}
	return s, nil
}

// parseSample splits `name{k="v",...} value [timestamp]`.
func parseSample(line string) (string, map[string]string, float64, error) {
	var name, rest string
	labels := map[string]string{}
	if i := strings.IndexAny(line, "{ \t"); i < 0 {
		return "", nil, 0, fmt.Errorf("%q: no value", line)
	} else {
		name, rest = line[:i], line[i:]
	}
	if strings.HasPrefix(rest, "{") {
		var err error
		if rest, err = parseLabels(rest[1:], labels); err != nil {
			return "", nil, 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	f := strings.Fields(rest)
	if len(f) < 1 || len(f) > 2 {
		return "", nil, 0, fmt.Errorf("%s: want a value and at most a timestamp after the labels, got %q", name, rest)
	}
	v, err := strconv.ParseFloat(f[0], 64) // also reads +Inf, -Inf and NaN
	if err != nil {
		return "", nil, 0, fmt.Errorf("%s: value: %w", name, err)
	}
	return name, labels, v, nil
}

// parseLabels reads `k="v",...}` into into and returns what follows '}'.
func parseLabels(s string, into map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return "", fmt.Errorf("labels: want name=\"value\" at %q", s)
		}
		key := strings.TrimSpace(s[:eq])
		var v strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					v.WriteByte('\n')
				default: // \\ and \"
					v.WriteByte(s[i])
				}
				continue
			}
			v.WriteByte(s[i])
		}
		if i >= len(s) {
			return "", fmt.Errorf("labels: unterminated value of %s", key)
		}
		into[key] = v.String()
		s = s[i+1:]
	}
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile does:
// linearly within the bucket that holds it. above is true when it lies in
// the +Inf bucket; the result is then the highest finite bound.
func (h *histogram) quantile(q float64) (v float64, above bool) {
	if h == nil || len(h.le) == 0 {
		return math.NaN(), false
	}
	total := h.count[len(h.count)-1]
	if total == 0 {
		return math.NaN(), false
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, le := range h.le {
		if h.count[i] >= rank {
			if math.IsInf(le, 1) {
				if i == 0 {
					return math.NaN(), true
				}
				return h.le[i-1], true
			}
			in := h.count[i] - below
			if in <= 0 {
				return le, false
			}
			return lower + (le-lower)*(rank-below)/in, false
		}
		lower, below = le, h.count[i]
	}
	return h.le[len(h.le)-1], false
}
