package host

import (
	"container/list"
	"crypto/sha256"
	"sync"
)

// maxAnswers bounds the validation cache. An entry is a digest and a small
// answer (a few problems, an identity), so the bound is about a few MB; a
// configuration with more distinct questions than this re-asks the overflow
// on the next load, through the same long-lived process.
const maxAnswers = 1 << 15

// answerKey is the digest of a question: which binary (by its stamp), what
// was asked and with which bytes. A digest rather than the bytes keeps a
// cached policy from costing its own size again.
type answerKey [sha256.Size]byte

// question digests the parts of a question; each part is length-prefixed
// so that no two different questions share a digest by concatenation.
func question(parts ...string) answerKey {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		l := uint64(len(p))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var k answerKey
	h.Sum(k[:0])
	return k
}

// answers is a bounded least-recently-used map of validation answers.
type answers struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: most recently used; values are *answer
	byKey map[answerKey]*list.Element
}

type answer struct {
	key answerKey
	val any
}

func newAnswers(max int) *answers {
	return &answers{max: max, order: list.New(), byKey: map[answerKey]*list.Element{}}
}

func (a *answers) get(k answerKey) (any, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.byKey[k]
	if !ok {
		return nil, false
	}
	a.order.MoveToFront(e)
	return e.Value.(*answer).val, true
}

func (a *answers) put(k answerKey, v any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.byKey[k]; ok {
		e.Value.(*answer).val = v
		a.order.MoveToFront(e)
		return
	}
	a.byKey[k] = a.order.PushFront(&answer{key: k, val: v})
	for a.order.Len() > a.max {
		last := a.order.Back()
		a.order.Remove(last)
		delete(a.byKey, last.Value.(*answer).key)
	}
}

func (a *answers) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.order.Len()
}

// cached answers a question from the cache, else asks f and keeps a
// successful answer. Errors are not kept: a plugin that failed to answer is
// asked again next time.
func cached[T any](a *answers, k answerKey, f func() (T, error)) (T, error) {
	if v, ok := a.get(k); ok {
		return v.(T), nil
	}
	v, err := f()
	if err == nil {
		a.put(k, v)
	}
	return v, err
}
