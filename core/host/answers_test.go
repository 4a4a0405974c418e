package host

import (
	"fmt"
	"testing"
)

// The validation cache keeps at most its bound, dropping the least
// recently used answer first.
func TestAnswersAreBounded(t *testing.T) {
	a := newAnswers(100)
	for i := range 100 {
		a.put(question("policy", fmt.Sprint(i)), i)
	}
	a.get(question("policy", "0")) // 0 is now the most recent
	for i := 100; i < 150; i++ {
		a.put(question("policy", fmt.Sprint(i)), i)
	}
	if n := a.len(); n != 100 {
		t.Fatalf("%d answers kept, want 100", n)
	}
	if _, ok := a.get(question("policy", "0")); !ok {
		t.Error("the recently used answer was dropped")
	}
	if _, ok := a.get(question("policy", "1")); ok {
		t.Error("the least recently used answer was kept")
	}
	if v, ok := a.get(question("policy", "149")); !ok || v != 149 {
		t.Errorf("the newest answer: %v %v", v, ok)
	}
	// Parts are length-prefixed: ("ab", "c") and ("a", "bc") differ.
	if question("ab", "c") == question("a", "bc") {
		t.Error("two different questions share a key")
	}
}
