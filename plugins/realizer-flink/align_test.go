package flink

import "testing"

func TestAlign(t *testing.T) {
	cases := []struct {
		name                         string
		current, target, maxP, slots int
		want                         int
	}{
		{"unchanged", 4, 4, 128, 4, 4},
		{"slot multiple dividing key groups", 2, 5, 120, 4, 8},
		{"key-group divisor without slots", 2, 7, 120, 1, 8},
		{"key-group divisor when no slot multiple fits", 2, 5, 7, 4, 7},
		{"slot multiple when no divisor fits", 2, 5, 97, 4, 8},
		{"slots only, unknown max parallelism", 2, 5, 0, 4, 8},
		{"capped at max parallelism", 2, 300, 128, 4, 128},
		{"scale-down searches up to current", 12, 7, 120, 4, 8},
		{"scale-down blocked keeps current", 8, 7, 120, 8, 8},
		{"scale-up to max parallelism as the last divisor", 10, 60, 61, 1, 61},
		{"autoscaler downward phase", 40, 30, 97, 1, 25},
		{"nothing to align", 3, 5, 0, 1, 5},
	}
	for _, c := range cases {
		if got := align(c.current, c.target, c.maxP, c.slots); got != c.want {
			t.Errorf("%s: align(%d, %d, %d, %d) = %d, want %d", c.name, c.current, c.target, c.maxP, c.slots, got, c.want)
		}
	}
}
