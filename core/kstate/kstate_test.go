package kstate

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ebbscale/ebb/core/state"
	"github.com/ebbscale/ebb/internal/envtest"
)

// fence is a settable Fence, standing in for the shard leases.
type fence struct {
	mu  sync.Mutex
	tok Token
	ok  bool
}

func (f *fence) Token(string) (Token, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tok, f.ok
}

func (f *fence) set(tok Token, ok bool) {
	f.mu.Lock()
	f.tok, f.ok = tok, ok
	f.mu.Unlock()
}

func newKube(t *testing.T) kubernetes.Interface {
	t.Helper()
	kube, err := kubernetes.NewForConfig(envtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	return kube
}

func newStore(t *testing.T, kube kubernetes.Interface, f Fence, keep int) *Store {
	t.Helper()
	s, err := New(Options{Client: kube, Namespace: "default", Keep: keep, Fence: f})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func commit(s *Store, chain, val string) (state.Record, error) {
	r := state.Record{Summary: val, Status: "skipped"}
	err := s.Commit(chain, state.ChainState{"dra": []byte(val)}, &r, func(seq uint64) state.ChainState {
		return state.ChainState{"dra": []byte("pending-" + val)}
	})
	return r, err
}

// TestFencing: a replica that lost a chain to one with a newer lease epoch
// cannot write it any more, though nothing told it and its cache is stale;
// the new owner starts from the old owner's state.
func TestFencing(t *testing.T) {
	kube := newKube(t)
	fa, fb := &fence{}, &fence{}
	a, b := newStore(t, kube, fa, 0), newStore(t, kube, fb, 0)
	fa.set(Token{Owner: "a", Shard: 3, Shards: 32, Epoch: 1}, true)
	if err := a.Claim("c", fa.tok); err != nil {
		t.Fatal(err)
	}
	if _, err := commit(a, "c", "one"); err != nil {
		t.Fatal(err)
	}

	// b takes the shard with the next epoch and claims the chain.
	fb.set(Token{Owner: "b", Shard: 3, Shards: 32, Epoch: 2}, true)
	if err := b.Claim("c", fb.tok); err != nil {
		t.Fatal(err)
	}
	st, err := b.LoadState("c")
	if err != nil || string(st["dra"]) != "one" {
		t.Fatalf("new owner's state = %q, %v; want the old owner's", st, err)
	}

	// a still believes it owns the chain: its write is fenced.
	_, err = commit(a, "c", "stale")
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("stale owner's commit: %v, want ErrFenced", err)
	}
	if err := a.Claim("c", fa.tok); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale owner's claim: %v, want ErrFenced", err)
	}
	if _, err := commit(b, "c", "two"); err != nil {
		t.Fatal(err)
	}
	recs, err := b.Decisions("c", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Summary != "two" || recs[0].Seq != 2 || recs[1].Summary != "one" {
		t.Fatalf("decision log = %+v, want two then one, seq 2 and 1", recs)
	}

	// A replica whose lease lapsed writes nothing, not even when the object
	// would take it.
	fb.set(fb.tok, false)
	if _, err := commit(b, "c", "lapsed"); !errors.Is(err, ErrFenced) {
		t.Fatalf("commit after the lease lapsed: %v, want ErrFenced", err)
	}
}

// TestFinishAndBusy: Finish sets the outcomes and the final record in one
// write, and a chain is busy from Commit to Finish.
func TestFinishAndBusy(t *testing.T) {
	kube := newKube(t)
	s := newStore(t, kube, nil, 0)
	r, err := commit(s, "c", "x")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Busy("c") {
		t.Fatal("not busy after Commit")
	}
	o, _ := s.LoadOutcomes("c")
	if string(o["dra"]) != "pending-x" {
		t.Fatalf("outcome after Commit = %q", o["dra"])
	}
	r.Status, r.Error = "failed", "boom"
	if err := s.Finish("c", state.ChainState{"dra": []byte("final")}, r); err != nil {
		t.Fatal(err)
	}
	if s.Busy("c") {
		t.Fatal("busy after Finish")
	}
	// A fresh store (another process) reads it all from the API server.
	s2 := newStore(t, kube, nil, 0)
	o, _ = s2.LoadOutcomes("c")
	recs, _ := s2.Decisions("c", 5)
	if string(o["dra"]) != "final" || len(recs) != 1 || recs[0].Status != "failed" || recs[0].Error != "boom" {
		t.Fatalf("after Finish: outcomes %q, log %+v", o, recs)
	}
	if err := s2.Finish("c", nil, state.Record{Seq: 99}); err == nil || !strings.Contains(err.Error(), "no record 99") {
		t.Fatalf("Finish of a record not in the log: %v", err)
	}
}

// TestBounds: the log keeps the newest Keep records, drops more when the
// object nears the ConfigMap limit, and refuses (losing nothing) a state
// that cannot fit.
func TestBounds(t *testing.T) {
	kube := newKube(t)
	s := newStore(t, kube, nil, 5)
	for i := 0; i < 8; i++ {
		if _, err := commit(s, "c", string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	recs, _ := s.Decisions("c", 100)
	if len(recs) != 5 || recs[0].Seq != 8 || recs[4].Seq != 4 {
		t.Fatalf("log of 8 commits with keep 5: %d records, newest %d", len(recs), recs[0].Seq)
	}

	big := strings.Repeat("r", 200<<10)
	for i := 0; i < 6; i++ {
		r := state.Record{Reason: big}
		if err := s.Commit("c", state.ChainState{"dra": []byte("s")}, &r, nil); err != nil {
			t.Fatalf("commit %d of a 200 KiB record: %v", i, err)
		}
	}
	recs, _ = s.Decisions("c", 100)
	if len(recs) == 0 || len(recs) > 4 || recs[0].Seq != 14 {
		t.Fatalf("200 KiB records: kept %d, newest %d; want at most 4 (900 KiB), newest 14", len(recs), recs[0].Seq)
	}
	cm, err := kube.CoreV1().ConfigMaps("default").Get(context.Background(), ObjectName("ebb", "c"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := dataSize(cm); n > DataBudget {
		t.Fatalf("ConfigMap data is %d bytes, budget %d", n, DataBudget)
	}

	huge := state.ChainState{"dra": make([]byte, DataBudget)}
	r := state.Record{}
	if err := s.Commit("c", huge, &r, nil); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("commit of a state past the limit: %v", err)
	}
	st, err := newStore(t, kube, nil, 5).LoadState("c")
	if err != nil || string(st["dra"]) != "s" {
		t.Fatalf("state after a refused commit = %q, %v; want the last good one", st["dra"], err)
	}
}

func dataSize(cm *corev1.ConfigMap) int {
	n := 0
	for k, v := range cm.Data {
		n += len(k) + len(v)
	}
	return n
}

// TestHandEditedObject: an object that does not decode is an error naming
// it, and is not overwritten.
func TestHandEditedObject(t *testing.T) {
	kube := newKube(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ObjectName("ebb", "c"), Namespace: "default"},
		Data: map[string]string{"state": "{not json"}}
	if _, err := kube.CoreV1().ConfigMaps("default").Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, kube, nil, 0)
	_, err := commit(s, "c", "x")
	if err == nil || !strings.Contains(err.Error(), "ConfigMap default/"+cm.Name) || !strings.Contains(err.Error(), `"state"`) {
		t.Fatalf("commit over a hand-edited object: %v", err)
	}
	got, _ := kube.CoreV1().ConfigMaps("default").Get(context.Background(), cm.Name, metav1.GetOptions{})
	if got.Data["state"] != "{not json" {
		t.Fatal("the hand-edited object was overwritten")
	}
}
