package sim

import (
	"testing"
	"time"
)

func TestBootBound(t *testing.T) {
	at := func(s int) time.Time { return Start.Add(time.Duration(s) * time.Second) }
	sp := func(from, to int) span { return span{at(from), at(to)} }
	boot := time.Minute
	for _, c := range []struct {
		name  string
		spans []span
		size  int64
		want  float64
	}{
		{"one task pays its boot", []span{sp(0, 100)}, 1, 160},
		{"a short gap is bridged", []span{sp(0, 100), sp(130, 230)}, 1, 60 + 100 + 30 + 100},
		{"a long gap reboots", []span{sp(0, 100), sp(190, 290)}, 1, 60 + 100 + 60 + 100},
		{"a thread freed and taken at once stays up", []span{sp(0, 100), sp(100, 200)}, 1, 260},
		{"whole units", []span{sp(0, 100), sp(0, 100)}, 4, 4 * 160},
		{"a fifth task needs a second unit", []span{sp(0, 100), sp(0, 100), sp(0, 100), sp(0, 100), sp(50, 100)}, 4, 4*160 + 4*110},
		{"levels nest", []span{sp(0, 300), sp(100, 200)}, 1, 360 + 160},
		{"an empty task holds nothing", []span{sp(5, 5)}, 1, 0},
		{"no tasks", nil, 1, 0},
	} {
		if got := BootBound(c.spans, c.size, boot); got != c.want {
			t.Errorf("%s: got %v thread-seconds, want %v", c.name, got, c.want)
		}
	}
}

// The bound is never above what the oracle's schedule costs in the same
// units once every unit is paid a boot, nor below the used thread-seconds.
func TestBootBoundBracketsTheOracle(t *testing.T) {
	rows, err := Generate("small-tables", 1, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(t.Context(), World{Rows: rows, BootDelay: time.Minute, DrainTimeout: time.Hour, Seed: 1}, Policy{Name: "oracle", Oracle: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	one := BootBound(res.spans, 1, time.Minute)
	four := BootBound(res.spans, 4, time.Minute)
	unbooted := BootBound(res.spans, 1, 0)
	if unbooted != res.UsedThreadSec {
		t.Errorf("with no boot the bound is the used time: %v, used %v", unbooted, res.UsedThreadSec)
	}
	if !(res.UsedThreadSec < one && one < four) {
		t.Errorf("want used %v < bound in units of 1 %v < in units of 4 %v", res.UsedThreadSec, one, four)
	}
	if limit := res.UsedThreadSec + float64(len(res.spans))*60; one > limit {
		t.Errorf("bound %v above a boot per task on top of the used time (%v)", one, limit)
	}
}
