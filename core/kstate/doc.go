package kstate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/ebbscale/ebb/core/state"
	"github.com/ebbscale/ebb/internal/jsontext"
)

// Labels and annotations of the objects ebb keeps.
const (
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	ManagedBy       = "ebb"
	LabelRole       = "ebb.io/role"
	RoleChainState  = "chain-state"
	AnnotationChain = "ebb.io/chain"
)

// Keys of a chain's ConfigMap data.
const (
	keyChain     = "chain"
	keyFence     = "fence"
	keySeq       = "seq"
	keyState     = "state"
	keyOutcomes  = "outcomes"
	keyDecisions = "decisions"
)

// ObjectName is the ConfigMap of a chain: chain names need not be DNS
// names, so the name carries a digest of it (the chain itself is in the
// data and an annotation).
func ObjectName(prefix, chain string) string {
	sum := sha256.Sum256([]byte(chain))
	return prefix + "-chain-" + hex.EncodeToString(sum[:10])
}

// doc is a chain's object decoded.
type doc struct {
	Chain     string
	Fence     Token
	Seq       uint64
	State     state.ChainState
	Outcomes  state.ChainState
	Decisions []state.Record // oldest first
}

// decode reads a ConfigMap; nil is an empty document. A field that does not
// decode is an error, never silently replaced: the next write would lose it.
func decode(cm *corev1.ConfigMap) (*doc, error) {
	d := &doc{}
	if cm == nil {
		return d, nil
	}
	data := cm.Data
	d.Chain = data[keyChain]
	fields := []struct {
		key string
		v   any
	}{{keyFence, &d.Fence}, {keyState, &d.State}, {keyOutcomes, &d.Outcomes}, {keyDecisions, &d.Decisions}}
	for _, f := range fields {
		if raw, ok := data[f.key]; ok && raw != "" {
			if err := json.Unmarshal([]byte(raw), f.v); err != nil {
				return nil, fmt.Errorf("data key %q does not decode (edited by hand?): %w", f.key, err)
			}
		}
	}
	if raw, ok := data[keySeq]; ok {
		seq, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("data key %q: %w", keySeq, err)
		}
		d.Seq = seq
	}
	return d, nil
}

// encode renders d, keeping at most keep decisions and dropping older ones
// until the data fits DataBudget. State and outcomes alone past the budget
// is an error: they cannot be cut.
func (d *doc) encode(keep int) (*corev1.ConfigMap, error) {
	if len(d.Decisions) > keep {
		d.Decisions = append([]state.Record(nil), d.Decisions[len(d.Decisions)-keep:]...)
	}
	data := map[string]string{keyChain: d.Chain, keySeq: strconv.FormatUint(d.Seq, 10)}
	fixed := len(d.Chain) + len(data[keySeq])
	for _, f := range []struct {
		key string
		v   any
	}{{keyFence, d.Fence}, {keyState, orEmpty(d.State)}, {keyOutcomes, orEmpty(d.Outcomes)}} {
		b, err := jsontext.Marshal(f.v)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", f.key, err)
		}
		data[f.key] = string(b)
		fixed += len(f.key) + len(b)
	}
	if fixed > DataBudget {
		return nil, fmt.Errorf("state and outcomes take %d bytes, more than the %d a ConfigMap may hold here (limit %d)", fixed, DataBudget, ConfigMapLimit)
	}
	// Records are encoded one by one so that compaction drops whole ones
	// from the oldest end without encoding the log again each time.
	recs := make([][]byte, len(d.Decisions))
	total := 2
	for i, r := range d.Decisions {
		b, err := jsontext.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encoding decision %d: %w", r.Seq, err)
		}
		recs[i] = b
		total += len(b) + 1
	}
	first := 0
	for fixed+len(keyDecisions)+total > DataBudget && first < len(recs) {
		total -= len(recs[first]) + 1
		first++
	}
	d.Decisions = d.Decisions[first:]
	buf := make([]byte, 0, total)
	buf = append(buf, '[')
	for i, b := range recs[first:] {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, b...)
	}
	buf = append(buf, ']')
	data[keyDecisions] = string(buf)
	return &corev1.ConfigMap{Data: data}, nil
}

// replace rewrites the record with r's sequence number.
func (d *doc) replace(r state.Record) error {
	for i := len(d.Decisions) - 1; i >= 0; i-- {
		if d.Decisions[i].Seq == r.Seq {
			d.Decisions[i] = r
			return nil
		}
	}
	return fmt.Errorf("no record %d", r.Seq)
}
