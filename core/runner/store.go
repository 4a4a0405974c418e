package runner

import (
	"reflect"

	"github.com/ebbscale/ebb/core/state"
)

// Store is what the runner persists through: the bbolt file (*state.Store)
// for one process, or the Kubernetes backend (core/kstate) that several
// replicas share. Its methods are *state.Store's.
type Store interface {
	LoadState(chain string) (state.ChainState, error)
	LoadOutcomes(chain string) (state.ChainState, error)
	// Commit saves the round's states and appends its record (assigning
	// r.Seq) with the pending outcomes, in one write, before realizing: an
	// error here stops the round, so a replica that no longer owns the
	// chain (kstate.ErrFenced) never realizes it.
	Commit(chain string, st state.ChainState, r *state.Record, outcomes func(seq uint64) state.ChainState) error
	// Finish saves what became of the round (its outcomes, and the record's
	// status) once the realizer answered, in one write.
	Finish(chain string, outcomes state.ChainState, r state.Record) error
	Decisions(chain string, n int) ([]state.Record, error)
}

// Owner tells which chains this replica may evaluate now; nil means all
// (one process). The sharded lease manager (core/shard) implements it.
type Owner interface {
	Owns(chain string) bool
	// ID names this replica in /v1/chains.
	ID() string
}

// OwnerOf is an optional part of an Owner: which replica owns a chain as
// far as this one knows ("" if none), for /v1/chains.
type OwnerOf interface {
	OwnerOf(chain string) string
}

// isNil is true for a nil interface and for an interface holding a nil
// pointer: `var s *state.Store; Options{Store: s}` must mean "no store", as
// it did while the field was a *state.Store.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// owns is the one check the scheduler makes before a chain's evaluation.
func (r *Runner) owns(chain string) bool {
	return r.opts.Owner == nil || r.opts.Owner.Owns(chain)
}

// ownerOf is what /v1/chains shows as a chain's owner: this replica when it
// owns the chain, else whom the Owner names.
func (r *Runner) ownerOf(chain string) string {
	o := r.opts.Owner
	if o == nil {
		return ""
	}
	if o.Owns(chain) {
		return o.ID()
	}
	if of, ok := o.(OwnerOf); ok {
		return of.OwnerOf(chain)
	}
	return ""
}
