package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Report is what can still be read from a state file, damaged or not.
type Report struct {
	Path string
	// Damage is empty when the file passed every check.
	Damage string
	Chains []ChainReport
}

// ChainReport is what a state file holds about one chain.
type ChainReport struct {
	Name string
	// Evaluators whose state could be read; StateError says why not.
	Evaluators []string
	StateError string
	// Decisions could be read, Unreadable could not (or the walk stopped
	// at a damaged page: then LogError says where).
	Decisions, Unreadable int
	LogError              string
	Last                  *Record
}

// Inspect is Inspect of the store's file: the method a state backend
// offers the CLI.
func (s *Store) Inspect() (*Report, error) { return Inspect(s.path) }

// Inspect reads whatever it can of a state file without changing it, also
// while ebb run holds it. The verdict comes from the same checks Open makes;
// the contents are read without bbolt, which can loop forever on a damaged
// page, so one bad page costs the entries under it and not the report.
func Inspect(path string) (*Report, error) {
	rep := &Report{Path: path}
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("state %s: %w", path, err)
	} else if st.Size() == 0 {
		return rep, nil
	}
	ro, err := OpenReadOnly(path)
	if err != nil {
		var dmg *DamagedError
		if !errors.As(err, &dmg) {
			return nil, err
		}
		rep.Damage = dmg.Cause
	} else {
		ro.Close()
	}
	data, err := readConsistent(path)
	if err != nil {
		return nil, err
	}
	root, err := readRaw(data)
	if err != nil {
		if rep.Damage == "" {
			rep.Damage = err.Error()
		}
		return rep, nil
	}
	chains := map[string]*ChainReport{}
	get := func(name string) *ChainReport {
		if c, ok := chains[name]; ok {
			return c
		}
		c := &ChainReport{Name: name}
		chains[name] = c
		return c
	}
	if b := root.buckets[string(bucketState)]; b != nil {
		for name, v := range b.values {
			c := get(name)
			st, err := decodeChainState(v)
			if err != nil {
				c.StateError = err.Error()
				continue
			}
			for ev := range st {
				c.Evaluators = append(c.Evaluators, ev)
			}
			sort.Strings(c.Evaluators)
		}
		if b.damage != "" {
			rep.Damage = joinDamage(rep.Damage, "state bucket: "+b.damage)
		}
	}
	if b := root.buckets[string(bucketDecisions)]; b != nil {
		for name, log := range b.buckets {
			c := get(name)
			c.LogError = log.damage
			for k, v := range log.values {
				if len(k) != 8 {
					c.Unreadable++
					continue
				}
				r, err := decodeRecord(binary.BigEndian.Uint64([]byte(k)), v)
				if err != nil {
					c.Unreadable++
					continue
				}
				c.Decisions++
				if c.Last == nil || r.Seq > c.Last.Seq {
					c.Last = &r
				}
			}
		}
	}
	for _, c := range chains {
		rep.Chains = append(rep.Chains, *c)
	}
	sort.Slice(rep.Chains, func(i, j int) bool { return rep.Chains[i].Name < rep.Chains[j].Name })
	return rep, nil
}

// readConsistent reads the file's bytes: through a snapshot, so that a
// commit by a running ebb does not tear them, unless the file is too damaged
// for a snapshot to make sense of it.
func readConsistent(path string) ([]byte, error) {
	copyPath, cleanup, err := snapshot(path)
	if err != nil {
		if IsDamaged(err) {
			return os.ReadFile(path)
		}
		return nil, fmt.Errorf("reading state %s: %w", path, err)
	}
	defer cleanup()
	return os.ReadFile(copyPath)
}

func joinDamage(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// Reset moves the state file aside, keeping it as PATH.damaged-TIME, so that
// the next start begins with an empty store. It refuses while an ebb process
// holds the file. It returns where the file went.
func Reset(path string, now time.Time) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("state %s: %w", path, err)
	}
	b, err := openBolt(path, bolt.Options{ReadOnly: true, Timeout: lockWait}, false)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return "", fmt.Errorf("state %s is in use by a running ebb; stop it first", path)
	case err == nil:
		b.abandon() // not b.db.Close: a reset file may be damaged anywhere
	}
	// Any other error means the file is damaged or unreadable: which is
	// why it is being reset.
	dst := fmt.Sprintf("%s.damaged-%s", path, now.UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, dst); err != nil {
		return "", fmt.Errorf("moving state %s aside: %w", path, err)
	}
	return dst, nil
}
