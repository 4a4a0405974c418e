package runner

import (
	"testing"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/core/state"
)

// A nil *state.Store in Options.Store means no store, as it did when the
// field had that type, not a store that panics on first use.
func TestTypedNilStoreIsNoStore(t *testing.T) {
	var s *state.Store
	var o *fixedOwner
	r := New(&config.Config{}, Options{Store: s, Owner: o})
	if r.opts.Store != nil || r.opts.Owner != nil {
		t.Fatalf("typed nils kept: store %v, owner %v", r.opts.Store, r.opts.Owner)
	}
	if recs, err := r.Decisions("c", 5); recs != nil || err != nil {
		t.Fatalf("Decisions without a store = %v, %v", recs, err)
	}
	if !r.owns("c") || r.ownerOf("c") != "" {
		t.Fatal("without an Owner every chain is this process's, with no owner named")
	}
}

type fixedOwner struct {
	id    string
	mine  map[string]bool
	other string
}

func (f *fixedOwner) Owns(chain string) bool      { return f.mine[chain] }
func (f *fixedOwner) ID() string                  { return f.id }
func (f *fixedOwner) OwnerOf(chain string) string { return f.other }

func TestOwnerOf(t *testing.T) {
	r := New(&config.Config{}, Options{Owner: &fixedOwner{id: "r1", mine: map[string]bool{"a": true}, other: "r2"}})
	if got := r.ownerOf("a"); got != "r1" {
		t.Errorf("owner of an owned chain = %q, want r1", got)
	}
	if got := r.ownerOf("b"); got != "r2" {
		t.Errorf("owner of another's chain = %q, want r2", got)
	}
}
