package state

import (
	"encoding/json"
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

// Inspect reads whatever it can of a state file without changing it. Each
// chain is read on its own, so one damaged page costs that chain's entry and
// not the whole report.
func Inspect(path string) (*Report, error) {
	rep := &Report{Path: path}
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("state %s: %w", path, err)
	} else if st.Size() == 0 {
		return rep, nil
	}
	if err := (&Store{path: path}).checkOnly(); err != nil {
		var dmg *DamagedError
		if !errors.As(err, &dmg) {
			return nil, err
		}
		rep.Damage = dmg.Cause
	}
	var db *bolt.DB
	err := guard(path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockWait})
		return err
	})
	if errors.Is(err, berrors.ErrTimeout) {
		s, err := OpenReadOnly(path)
		if err != nil {
			return nil, err
		}
		db = s.db
		defer s.Close()
	} else if err != nil {
		if rep.Damage == "" {
			rep.Damage = err.Error()
		}
		return rep, nil
	} else {
		defer db.Close()
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
	var names [2][]string
	for i, bucket := range [][]byte{bucketState, bucketDecisions} {
		err := guard(path, func() error {
			return db.View(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucket)
				if b == nil {
					return nil
				}
				c := b.Cursor()
				for k, _ := c.First(); k != nil; k, _ = c.Next() {
					names[i] = append(names[i], string(k))
				}
				return nil
			})
		})
		if err != nil && rep.Damage == "" {
			rep.Damage = err.Error()
		}
	}
	for _, name := range names[0] {
		c := get(name)
		err := guard(path, func() error {
			return db.View(func(tx *bolt.Tx) error {
				var st ChainState
				if err := json.Unmarshal(tx.Bucket(bucketState).Get([]byte(name)), &st); err != nil {
					return err
				}
				for ev := range st {
					c.Evaluators = append(c.Evaluators, ev)
				}
				sort.Strings(c.Evaluators)
				return nil
			})
		})
		if err != nil {
			c.StateError = causeOf(err)
		}
	}
	for _, name := range names[1] {
		c := get(name)
		err := guard(path, func() error {
			return db.View(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketDecisions).Bucket([]byte(name))
				if b == nil {
					return errors.New("not a bucket")
				}
				cur := b.Cursor()
				for k, v := cur.First(); k != nil; k, v = cur.Next() {
					var r Record
					if json.Unmarshal(v, &r) != nil {
						c.Unreadable++
						continue
					}
					c.Decisions++
					c.Last = &r
				}
				return nil
			})
		})
		if err != nil {
			c.LogError = causeOf(err)
		}
	}
	for _, c := range chains {
		rep.Chains = append(rep.Chains, *c)
	}
	sort.Slice(rep.Chains, func(i, j int) bool { return rep.Chains[i].Name < rep.Chains[j].Name })
	return rep, nil
}

// checkOnly opens the file read-only, checks it, and closes it.
func (s *Store) checkOnly() error {
	db, err := openBolt(s.path, bolt.Options{ReadOnly: true, Timeout: lockWait})
	if errors.Is(err, berrors.ErrTimeout) {
		ro, err := OpenReadOnly(s.path)
		if err != nil {
			return err
		}
		return ro.Close()
	}
	if err != nil {
		return err
	}
	return db.Close()
}

func causeOf(err error) string {
	var dmg *DamagedError
	if errors.As(err, &dmg) {
		return dmg.Cause
	}
	return err.Error()
}

// Reset moves the state file aside, keeping it as PATH.damaged-TIME, so that
// the next start begins with an empty store. It refuses while an ebb process
// holds the file. It returns where the file went.
func Reset(path string, now time.Time) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("state %s: %w", path, err)
	}
	db, err := openBolt(path, bolt.Options{Timeout: lockWait})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return "", fmt.Errorf("state %s is in use by a running ebb; stop it first", path)
	case err == nil:
		db.Close()
	}
	// Any other error means the file is damaged or unreadable: which is
	// why it is being reset.
	dst := fmt.Sprintf("%s.damaged-%s", path, now.UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, dst); err != nil {
		return "", fmt.Errorf("moving state %s aside: %w", path, err)
	}
	return dst, nil
}
