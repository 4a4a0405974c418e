package sim

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints one line per policy with the headline figures.
func WriteTable(w io.Writer, results []*Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tprovisioned thread-h\tused thread-h\tvs oracle\twait p50 s\tp95 s\tp99 s\tmax s\tmakespan h\tactions\tunder acc %\tover acc %\tunder time %\tover time %\tinstability %\tunfinished\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.2fx\t%.0f\t%.0f\t%.0f\t%.0f\t%.2f\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n",
			r.Policy, r.ProvisionedThreadSec/3600, r.UsedThreadSec/3600, r.CostVsOracle,
			r.Wait.P50, r.Wait.P95, r.Wait.P99, r.Wait.Max, r.MakespanSec/3600, r.ScaleActions,
			r.UnderAccuracyPct, r.OverAccuracyPct, r.UnderTimesharePct, r.OverTimesharePct, r.InstabilityPct, r.Unfinished)
	}
	tw.Flush()
}
