package runner

import "testing"

// A wait that only counts on is one kind of reason; a new kind is not.
func TestReasonShape(t *testing.T) {
	a := reasonShape("backlog 7 tasks for 104ms, waiting for scheduler-backlog-timeout 1m (next add in 59.896s)")
	b := reasonShape("backlog 7 tasks for 1.033s, waiting for scheduler-backlog-timeout 1m (next add in 58.967s)")
	if a != b {
		t.Errorf("rounds differing in figures have different shapes:\n%s\n%s", a, b)
	}
	if c := reasonShape("steady: capacity 2 threads"); c == a {
		t.Errorf("a steady round has the shape of a waiting one: %s", c)
	}
}
