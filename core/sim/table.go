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
	for _, r := range results {
		if r.Policy != "oracle" || r.ProvisionedThreadSec <= 0 {
			continue
		}
		if r.BootBoundThreadSec > 0 {
			fmt.Fprintf(w, "least any policy of booting units can pay to start every task when the oracle does: %.2fx (units of 1 thread), %.2fx (units of executor-parallelism)\n",
				r.BootBoundThreadSec/r.ProvisionedThreadSec, r.BootBoundUnitThreadSec/r.ProvisionedThreadSec)
		}
		if r.CappedWait != nil {
			fmt.Fprintf(w, "the oracle held to max-parallelism waits p50 %.0f s, p99 %.0f s: the least wait under that ceiling\n", r.CappedWait.P50, r.CappedWait.P99)
		}
	}
}
