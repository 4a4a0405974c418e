package sdk

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Protocol version 2 carries many targets per call (CollectBatch,
// InventoryBatch, EvaluateBatch), so that the runner pays one round trip for
// every chain due at once that shares a plugin block. A plugin written
// against the SDK serves them without doing anything: the SDK calls its
// single-target method once per target, a few at a time. A plugin that can
// do better for many targets at once (one request to its platform for all
// of them) implements the optional Batch* interfaces below.

// MaxBatch is the most targets one batch RPC carries. A server refuses more
// (INVALID_ARGUMENT); the runner's client splits larger batches, and also
// keeps each request's encoding under maxBatchBytes.
const MaxBatch = 256

// maxBatchBytes keeps a batch request under gRPC's default 4 MiB receive
// limit, which go-plugin servers (and most other languages' servers) keep.
const maxBatchBytes = 3 << 20

// CollectResult is one target's answer in a batch: a snapshot or why not.
type CollectResult struct {
	Snapshot Snapshot
	Err      error
}

// InventoryResult is one target's units in a batch, or why not.
type InventoryResult struct {
	Units []Unit
	Err   error
}

// EvaluateResult is one request's answer in a batch, or why not.
type EvaluateResult struct {
	Response EvaluateResponse
	Err      error
}

// BatchCollector is optional for a Collector: it observes many targets in
// one go and returns one result per target, in order. An error for one
// target goes in its result and must not fail the others.
type BatchCollector interface {
	CollectBatch(ctx context.Context, targets []Target) []CollectResult
}

// BatchInventory is optional for a Realizer, as BatchCollector is for a
// Collector.
type BatchInventory interface {
	InventoryBatch(ctx context.Context, targets []Target) []InventoryResult
}

// BatchEvaluator is optional for an Evaluator, as BatchCollector is for a
// Collector. Each request stays a pure function of itself.
type BatchEvaluator interface {
	EvaluateBatch(ctx context.Context, reqs []EvaluateRequest) []EvaluateResult
}

// MinProtocolVersion is the oldest protocol the runner still speaks: a
// version 1 plugin gets one call per target.
const MinProtocolVersion = 1

// Workers per batch when the SDK calls a plugin's single-target method:
// evaluating is CPU work, so one per core; collecting and listing units
// mostly wait on a platform, so more.
func cpuWorkers() int { return runtime.GOMAXPROCS(0) }
func ioWorkers() int  { return max(8, 4*runtime.GOMAXPROCS(0)) }

func checkBatch(n int) error {
	if n > MaxBatch {
		return status.Errorf(codes.InvalidArgument, "a batch carries at most %d requests, got %d: split it", MaxBatch, n)
	}
	return nil
}

// answerMargin is how long before the call's deadline a batch answers with
// what it has, so that one slow target fails alone instead of making the
// whole call miss its deadline.
func answerMargin(remaining time.Duration) time.Duration {
	return min(remaining/5, time.Second)
}

// forEach runs one for each index on at most workers goroutines and returns
// the results in order. A panic in one becomes that index's failure; an
// index still running shortly before ctx's deadline is answered as failed,
// and its goroutine is left to finish on its own (its ctx is cancelled when
// the RPC returns).
func forEach[R any](ctx context.Context, n, workers int, one func(ctx context.Context, i int) R, fail func(error) R) []R {
	type done struct {
		i int
		r R
	}
	out := make([]R, n)
	if n == 1 {
		// Alone, a slow target fails the whole call as a single call
		// would; no need for goroutines and a timer.
		out[0] = guard(ctx, 0, one, fail)
		return out
	}
	if n == 0 {
		return out
	}
	// Buffered for every index: a worker that finishes after forEach has
	// returned never blocks.
	ch := make(chan done, n)
	var next atomic.Int64
	var stop atomic.Bool
	work := func() {
		for !stop.Load() {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			ch <- done{i, guard(ctx, i, one, fail)}
		}
	}
	for range min(n, workers) {
		go work()
	}
	var timeout <-chan time.Time
	if dl, ok := ctx.Deadline(); ok {
		rem := time.Until(dl)
		t := time.NewTimer(rem - answerMargin(rem))
		defer t.Stop()
		timeout = t.C
	}
	got := make([]bool, n)
	for left := n; left > 0; left-- {
		select {
		case d := <-ch:
			out[d.i], got[d.i] = d.r, true
		case <-timeout:
			stop.Store(true)
			for i := range out {
				if !got[i] {
					out[i] = fail(fmt.Errorf("no answer for this target before the call's deadline: %w", context.DeadlineExceeded))
				}
			}
			return out
		}
	}
	return out
}

// guard calls one, turning a panic into a failure.
func guard[R any](ctx context.Context, i int, one func(context.Context, int) R, fail func(error) R) (r R) {
	defer func() {
		if p := recover(); p != nil {
			r = fail(fmt.Errorf("plugin panicked: %v", p))
		}
	}()
	return one(ctx, i)
}

// callBatch calls a plugin's own batch method, checking that it answered
// once per request; a panic fails the whole call, as it would a single one,
// but without taking the process down.
func callBatch[R any](n int, f func() []R) (rs []R, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = status.Errorf(codes.Internal, "plugin panicked in its batch method: %v", p)
		}
	}()
	rs = f()
	if len(rs) != n {
		return nil, status.Errorf(codes.Internal, "plugin's batch method returned %d results for %d requests", len(rs), n)
	}
	return rs, nil
}

// errText is an error as it travels in a batch result: never empty, since
// an empty string means success.
func errText(err error) string {
	if err == nil {
		return ""
	}
	if s := err.Error(); s != "" {
		return s
	}
	return "error without a message"
}
