package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"
)

// Lateness is an evaluation's start minus the time its tick was due, the
// tick of a fixed-rate schedule (start + k·interval). A runner that exports
// latenessMetric measures it itself; for one that does not, the harness
// reads when each evaluation started from the decision log (every
// evaluation, no-op rounds included, is a record with its start time "at")
// and takes the chain's schedule to begin when the runner started its
// chains (the HTTP API answers just before): the k-th evaluation of a chain
// was due at that start + k·interval. A runner that waits an interval after
// each evaluation ends drifts by an evaluation's length every round, and
// this counts the drift as lateness, as a fixed-rate scheduler would.

// logLateness returns the lateness, in seconds, of every evaluation that
// started before end, from the decision logs of chains as the runner at base
// serves them (/v1/chains/{name}?n=).
func logLateness(client *http.Client, base string, chains []string, start, end time.Time, interval time.Duration) ([]float64, error) {
	n := min(int(end.Sub(start)/interval)+16, 1000) // 1000: the API's bound (state.DefaultKeep)
	times := make([][]time.Time, len(chains))
	errs := make([]error, len(chains))
	var wg sync.WaitGroup
	next := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range next {
				times[i], errs[i] = recordTimes(client, base, chains[i], n)
			}
		})
	}
	for i := range chains {
		next <- i
	}
	close(next)
	wg.Wait()
	var out []float64
	for i := range chains {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out = append(out, chainLateness(times[i], start, end, interval)...)
	}
	return out, nil
}

func recordTimes(client *http.Client, base, chain string, n int) ([]time.Time, error) {
	resp, err := client.Get(fmt.Sprintf("%s/v1/chains/%s?n=%d", base, url.PathEscape(chain), n))
	if err != nil {
		return nil, fmt.Errorf("decision log of %s: %w", chain, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("decision log of %s: %s", chain, resp.Status)
	}
	var doc struct {
		Decisions []struct {
			At time.Time `json:"at"`
		} `json:"decisions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("decision log of %s: %w", chain, err)
	}
	out := make([]time.Time, len(doc.Decisions))
	for i, d := range doc.Decisions {
		out[i] = d.At
	}
	return out, nil
}

// chainLateness is each evaluation's lateness against start + k·interval
// (k counting the chain's evaluations from 0); at, in any order. A first
// evaluation logged before start (the HTTP API was seen to answer a poll
// later than the chains began) moves the schedule's start back to it.
func chainLateness(at []time.Time, start, end time.Time, interval time.Duration) []float64 {
	at = append([]time.Time(nil), at...)
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	if len(at) > 0 && at[0].Before(start) {
		start = at[0]
	}
	var out []float64
	for k, t := range at {
		if !t.Before(end) {
			break
		}
		due := start.Add(time.Duration(k) * interval)
		out = append(out, math.Max(t.Sub(due).Seconds(), 0))
	}
	return out
}

// percentile is the nearest-rank q-quantile of values (sorted in place).
func percentile(values []float64, q float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	sort.Float64s(values)
	i := int(math.Ceil(q*float64(len(values)))) - 1
	return values[min(max(i, 0), len(values)-1)]
}
