package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

func render(o options, runs []traceRun) string {
	var b strings.Builder
	fmt.Fprintln(&b, begin)
	fmt.Fprintln(&b, "## Control quality: `ebb simulate` on every trace")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "```sh\ngo run ./bench\n```")
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, "config.hcl's example chain (evaluator-dra as a plugin process every 2 s: 0–32 threads in units of at most 4 (unit-size fit) with 2 spare threads while there is work (headroom), "+
		"backlog 10s (at once when the running tasks could not absorb it), sustained 2s, backlog-step shortfall, idle 2m, scale-down-step idle, drain 15m) against the baselines on the same world: units boot in %s, "+
		"drain until their optimizer has finished its tasks, no boot failures. Thread-hours provisioned include booting "+
		"and draining units; \"vs oracle\" is provisioned thread-hours over the oracle's (exactly the busy threads, "+
		"instantly). Waits are from submission until a thread takes the task. Elasticity figures follow SPEC RG "+
		"(demand = busy + waiting tasks, supply = provisioned threads; accuracy normalised by max(demand, 1)).\n\n", bootDelay)
	fmt.Fprintf(&b, "The goal for dra: at most 1.25x the oracle, p99 wait at most scheduler-backlog-timeout + boot = %s, "+
		"and cheaper than spark, hpa and amoro at an equal or better p99.\n\n", p99Goal)
	fmt.Fprintln(&b, "Context columns: the oracle's peak busy threads (above 32, the policy's max-parallelism caps every policy but the oracle), "+
		"the oracle's own p99 (the queue model's floor: a table's new work waits until its running process commits, whatever the capacity) "+
		"and, where its peak is above the ceiling, its p99 held to 32 threads (the least p99 any policy under that ceiling can give), "+
		"and the least any policy can pay to start every task when the oracle does with units that boot for "+bootDelay.String()+
		" (`sim.BootBound`: units of 1 thread / of 4), over the oracle's cost. Where that least is above 1.25x, no autoscaler of booting units meets the cost goal without making tasks wait longer than the oracle does.")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "| trace | tasks | oracle peak threads | oracle p99 | least possible, units of 1 / 4 | dra vs oracle | dra p99 | spark vs oracle, p99 | hpa vs oracle, p99 | amoro vs oracle, p99 | cheaper than spark / hpa / amoro at ≤ p99 |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range runs {
		d, or := find(r.results, "dra"), find(r.results, "oracle")
		if d == nil || or == nil {
			continue
		}
		least := "-"
		if or.Provisioned > 0 {
			least = fmt.Sprintf("%.2fx / %.2fx", or.BootBound/or.Provisioned, or.BootBoundUnit/or.Provisioned)
		}
		oracleP99 := fmt.Sprintf("%.0f s", or.Wait.P99)
		if or.CappedWait != nil {
			oracleP99 += fmt.Sprintf(" (%.0f s held to 32)", or.CappedWait.P99)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name, r.tasks, or.Peak, oracleP99, least,
			mark(d.Cost <= 1.25, fmt.Sprintf("%.2fx", d.Cost)),
			mark(d.Wait.P99 <= p99Goal.Seconds(), fmt.Sprintf("%.0f s", d.Wait.P99)),
			costP99(r.results, "spark"), costP99(r.results, "hpa"), costP99(r.results, "amoro"), versus(r.results, *d))
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "The same policy with whole units (`unit-size = \"whole\"`, every unit 4 threads, as Amoro and Spark size them), in the same run:")
	fmt.Fprintln(&b)
	variantTable(&b, runs, "whole", false)
	fmt.Fprintln(&b, "The same policy without spare threads (`headroom = 0`), in the same run:")
	fmt.Fprintln(&b)
	variantTable(&b, runs, "no-headroom", false)
	fmt.Fprintln(&b, "Before issue 15, in the same run: the example as it was (interval 30s, `min-parallelism = 4`, Amoro's defaults: "+
		"backlog 1m, sustained 30s, idle 5m, the ramp and one drain per round, whole units; the baselines taking those bounds and timers). "+
		"\"floor share\" is the part of dra's thread-hours that the floor of 4 threads costs by itself.")
	fmt.Fprintln(&b)
	variantTable(&b, runs, "before", true)
	for _, r := range runs {
		fmt.Fprintf(&b, "### %s\n\n%d tasks from %s.\n\n", r.name, r.tasks, r.source)
		fmt.Fprintln(&b, "| policy | provisioned thread-h | used thread-h | vs oracle | wait p50 / p95 / p99 / max (s) | makespan h | actions | under acc % | over acc % | under time % | over time % | instability % |")
		fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, x := range r.results {
			un := ""
			if x.Unfinished > 0 {
				un = fmt.Sprintf(" (%d unfinished)", x.Unfinished)
			}
			fmt.Fprintf(&b, "| %s%s | %.1f | %.1f | %.2fx | %.0f / %.0f / %.0f / %.0f | %.2f | %d | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
				x.Policy, un, x.Provisioned/3600, x.Used/3600, x.Cost, x.Wait.P50, x.Wait.P95, x.Wait.P99, x.Wait.Max,
				x.Makespan/3600, x.Actions, x.UnderAcc, x.OverAcc, x.UnderTime, x.OverTime, x.Instability)
		}
		rel, _ := filepath.Rel(filepath.Dir(o.doc), filepath.Join(o.out, r.name+".svg"))
		fmt.Fprintf(&b, "\n![%s: demand, capacity per policy, queue](%s)\n\n", r.name, filepath.ToSlash(rel))
	}
	fmt.Fprint(&b, end)
	return b.String()
}

// variantTable compares one variant's dra with the baselines of its own
// run; withFloor adds the share of the 4-thread floor in dra's cost.
func variantTable(b *strings.Builder, runs []traceRun, name string, withFloor bool) {
	floorHead, floorRule := "", ""
	if withFloor {
		floorHead, floorRule = " floor share |", "---|"
	}
	fmt.Fprintf(b, "| trace | dra vs oracle |%s dra p99 | spark vs oracle, p99 | hpa vs oracle, p99 | cheaper than spark / hpa / amoro at ≤ p99 |\n", floorHead)
	fmt.Fprintf(b, "|---|---|%s---|---|---|---|\n", floorRule)
	for _, r := range runs {
		rs := r.variants[name]
		d := find(rs, "dra")
		if d == nil {
			continue
		}
		floor := ""
		if withFloor {
			share := 0.0
			if d.Provisioned > 0 {
				share = 100 * float64(minThreads) * d.Makespan / d.Provisioned
			}
			floor = fmt.Sprintf(" %.0f%% |", share)
		}
		fmt.Fprintf(b, "| %s | %.2fx |%s %.0f s | %s | %s | %s |\n", r.name, d.Cost, floor, d.Wait.P99,
			costP99(rs, "spark"), costP99(rs, "hpa"), versus(rs, *d))
	}
	fmt.Fprintln(b)
}

// costP99 is a policy's cost relative to the oracle and its p99.
func costP99(rs []result, policy string) string {
	x := find(rs, policy)
	if x == nil {
		return "-"
	}
	return fmt.Sprintf("%.2fx, %.0f s", x.Cost, x.Wait.P99)
}

func find(rs []result, policy string) *result {
	for i := range rs {
		if rs[i].Policy == policy {
			return &rs[i]
		}
	}
	return nil
}

// versus compares dra with spark, hpa and amoro.
func versus(rs []result, d result) string {
	var vs []string
	for _, n := range []string{"spark", "hpa", "amoro"} {
		if x := find(rs, n); x != nil {
			vs = append(vs, compareTo(d, *x))
		}
	}
	return strings.Join(vs, " / ")
}

// compareTo says whether dra is cheaper than x at an equal or better p99,
// and by how much it misses when it does not.
func compareTo(d, x result) string {
	if d.Provisioned == x.Provisioned && d.Wait.P99 == x.Wait.P99 {
		return fmt.Sprintf("ties %s (the same decisions)", x.Policy)
	}
	cheaper := d.Provisioned < x.Provisioned
	p99ok := d.Wait.P99 <= x.Wait.P99
	switch {
	case cheaper && p99ok:
		return fmt.Sprintf("yes vs %s (%.0f%% cheaper)", x.Policy, 100*(1-d.Provisioned/x.Provisioned))
	case !cheaper && p99ok:
		return fmt.Sprintf("**no** vs %s: %.1f%% dearer", x.Policy, 100*(d.Provisioned/x.Provisioned-1))
	case cheaper:
		return fmt.Sprintf("**no** vs %s: cheaper but p99 +%.0f s", x.Policy, d.Wait.P99-x.Wait.P99)
	}
	return fmt.Sprintf("**no** vs %s: %.1f%% dearer, p99 +%.0f s", x.Policy, 100*(d.Provisioned/x.Provisioned-1), d.Wait.P99-x.Wait.P99)
}

func mark(ok bool, s string) string {
	if ok {
		return s
	}
	return "**" + s + "** (miss)"
}
