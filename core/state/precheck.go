package state

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"sort"
)

// precheck reads a bbolt file's structure without bbolt, before bbolt is
// trusted with it. bbolt follows page ids blindly: a branch page that points
// at its own ancestor recurses until the stack overflows, and a corrupt
// freelist count makes it allocate without bound; neither can be recovered
// from. So the pages reachable from the meta page bbolt will use are walked
// here first, each id checked to lie inside the file and to be reached only
// once. The layout is bbolt's file format (go.etcd.io/bbolt/internal/common:
// page.go, meta.go, inbucket.go), which is stable across its releases.
func precheck(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return nil // bbolt initializes an empty file
	}
	w, m, err := newPageWalk(data)
	if err != nil {
		// A file without a usable page size or meta page is bbolt's to
		// reject ("invalid database"); it walks no pages then.
		return nil
	}
	fail := func(format string, args ...any) error {
		return &DamagedError{Path: path, Cause: fmt.Sprintf(format, args...)}
	}
	if pages := uint64(len(data) / w.ps); m.hwm > pages {
		return fail("its header claims %d pages, the file holds %d", m.hwm, pages)
	}
	if m.freelist != ^uint64(0) {
		if err := w.freelist(m.freelist); err != nil {
			return fail("%v", err)
		}
	}
	root := newRawBucket()
	w.read(root, m.root, nil, 0)
	if d := root.firstDamage(); d != "" {
		return fail("%s", d)
	}
	return nil
}

// newPageWalk finds the page size and the meta page bbolt would use.
func newPageWalk(data []byte) (*pageWalk, meta, error) {
	if len(data) < pageHeader+metaSize {
		return nil, meta{}, fmt.Errorf("too short for a state file (%d bytes)", len(data))
	}
	ps := int(binary.LittleEndian.Uint32(data[pageHeader+8:]))
	if ps < 512 || ps > 1<<16 || len(data) < 2*ps {
		return nil, meta{}, fmt.Errorf("page size %d in its header", ps)
	}
	m, ok := pickMeta(data, ps)
	if !ok {
		return nil, meta{}, fmt.Errorf("neither meta page is valid")
	}
	hwm := min(m.hwm, uint64(len(data)/ps))
	return &pageWalk{data: data, ps: ps, hwm: hwm, seen: map[uint64]bool{}}, m, nil
}

const (
	pageHeader  = 16 // id u64, flags u16, count u16, overflow u32
	metaSize    = 64 // magic, version, page size, flags u32; root, sequence, freelist, pgid, txid, checksum u64
	elemSize    = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	boltMagic   = 0xED0CDAED
	branchPage  = 0x01
	leafPage    = 0x02
	freelistPg  = 0x10
	bucketLeaf  = 0x01
	maxDepth    = 64 // a B+tree of a small store is a few levels deep
	inBucketLen = 16 // root pgid, sequence
)

type meta struct{ root, freelist, hwm, txid uint64 }

// pickMeta chooses the meta page bbolt would: the valid one with the
// highest transaction id.
func pickMeta(data []byte, ps int) (meta, bool) {
	var best meta
	found := false
	for i := 0; i < 2; i++ {
		b := data[i*ps+pageHeader:]
		if len(b) < metaSize || binary.LittleEndian.Uint32(b) != boltMagic {
			continue
		}
		h := fnv.New64a()
		h.Write(b[:56])
		if h.Sum64() != binary.LittleEndian.Uint64(b[56:]) {
			continue
		}
		m := meta{
			root:     binary.LittleEndian.Uint64(b[16:]),
			freelist: binary.LittleEndian.Uint64(b[32:]),
			hwm:      binary.LittleEndian.Uint64(b[40:]),
			txid:     binary.LittleEndian.Uint64(b[48:]),
		}
		if !found || m.txid > best.txid {
			best, found = m, true
		}
	}
	return best, found
}

type pageWalk struct {
	data []byte
	ps   int
	hwm  uint64
	seen map[uint64]bool
}

// page returns the bytes of page id with its overflow pages, after checking
// that they lie inside the file and below the high-water mark.
func (w *pageWalk) page(id uint64) (flags uint16, count int, body []byte, err error) {
	if id < 2 || id >= w.hwm {
		return 0, 0, nil, fmt.Errorf("page %d is outside the file's %d pages", id, w.hwm)
	}
	if w.seen[id] {
		return 0, 0, nil, fmt.Errorf("page %d is referenced twice", id)
	}
	w.seen[id] = true
	head := w.data[id*uint64(w.ps):]
	overflow := uint64(binary.LittleEndian.Uint32(head[12:]))
	if id+overflow >= w.hwm {
		return 0, 0, nil, fmt.Errorf("page %d runs past the end of the file", id)
	}
	flags = binary.LittleEndian.Uint16(head[8:])
	count = int(binary.LittleEndian.Uint16(head[10:]))
	return flags, count, head[:(overflow+1)*uint64(w.ps)], nil
}

func (w *pageWalk) freelist(id uint64) error {
	flags, count, body, err := w.page(id)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	if flags != freelistPg {
		return fmt.Errorf("page %d should be the freelist, its type is %#x", id, flags)
	}
	ids := uint64(count)
	start := uint64(pageHeader)
	if count == 0xFFFF {
		ids, start = binary.LittleEndian.Uint64(body[pageHeader:]), pageHeader+8
	}
	if ids > (uint64(len(body))-start)/8 {
		return fmt.Errorf("freelist page %d claims %d free pages, it has room for %d", id, ids, (uint64(len(body))-start)/8)
	}
	return nil
}

// rawBucket is what a tolerant read found in one bucket: its values, its
// nested buckets, and the first damage that cut the read short.
type rawBucket struct {
	values  map[string][]byte
	buckets map[string]*rawBucket
	damage  string
}

// readRaw reads a damaged file's buckets without bbolt, which can loop
// forever on a page cycle: whatever pages are sound are read, and each
// bucket notes where it stopped.
func readRaw(data []byte) (*rawBucket, error) {
	w, m, err := newPageWalk(data)
	if err != nil {
		return nil, err
	}
	root := newRawBucket()
	w.read(root, m.root, nil, 0)
	return root, nil
}

// firstDamage is the first damage noted in b or a bucket nested in it, in
// key order.
func (b *rawBucket) firstDamage() string {
	if b.damage != "" {
		return b.damage
	}
	keys := make([]string, 0, len(b.buckets))
	for k := range b.buckets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if d := b.buckets[k].firstDamage(); d != "" {
			return d
		}
	}
	return ""
}

func newRawBucket() *rawBucket {
	return &rawBucket{values: map[string][]byte{}, buckets: map[string]*rawBucket{}}
}

// read adds the entries under page id (or of the inline page, when given)
// to b, noting the first damage instead of stopping the whole read.
func (w *pageWalk) read(b *rawBucket, id uint64, inline []byte, depth int) {
	note := func(err error) {
		if b.damage == "" {
			b.damage = err.Error()
		}
	}
	if depth > maxDepth {
		note(fmt.Errorf("page %d is nested more than %d levels deep", id, maxDepth))
		return
	}
	var flags uint16
	var count int
	body := inline
	if inline == nil {
		var err error
		if flags, count, body, err = w.page(id); err != nil {
			note(err)
			return
		}
	} else if len(inline) >= pageHeader {
		flags, count = binary.LittleEndian.Uint16(inline[8:]), int(binary.LittleEndian.Uint16(inline[10:]))
	}
	if len(body) < pageHeader || pageHeader+count*elemSize > len(body) {
		note(fmt.Errorf("page %d claims more elements than it holds", id))
		return
	}
	// bbolt takes any page that is not a leaf for a branch and follows its
	// first element even when it has none: an inline bucket whose page is
	// zeros sends bbolt's cursor from that page to itself until memory runs
	// out. So the type is checked here, elements or not.
	name := fmt.Sprintf("page %d", id)
	if inline != nil {
		name = "a bucket's inline page"
	}
	if flags != branchPage && flags != leafPage {
		note(fmt.Errorf("%s has type %#x, want a branch or leaf page", name, flags))
		return
	}
	if flags == branchPage && count == 0 {
		note(fmt.Errorf("%s is a branch with no elements", name))
		return
	}
	for i := 0; i < count; i++ {
		at := pageHeader + i*elemSize
		e := body[at:]
		switch flags {
		case branchPage:
			pos, ksize := uint64(binary.LittleEndian.Uint32(e)), uint64(binary.LittleEndian.Uint32(e[4:]))
			if uint64(at)+pos+ksize > uint64(len(body)) {
				note(fmt.Errorf("page %d: key %d lies outside the page", id, i))
				continue
			}
			w.read(b, binary.LittleEndian.Uint64(e[8:]), nil, depth+1)
		case leafPage:
			pos := uint64(binary.LittleEndian.Uint32(e[4:]))
			ksize, vsize := uint64(binary.LittleEndian.Uint32(e[8:])), uint64(binary.LittleEndian.Uint32(e[12:]))
			if uint64(at)+pos+ksize+vsize > uint64(len(body)) {
				note(fmt.Errorf("page %d: entry %d lies outside the page", id, i))
				continue
			}
			k := string(body[uint64(at)+pos:][:ksize])
			v := body[uint64(at)+pos+ksize:][:vsize]
			if binary.LittleEndian.Uint32(e)&bucketLeaf == 0 {
				b.values[k] = v
				continue
			}
			if len(v) < inBucketLen {
				note(fmt.Errorf("page %d: bucket entry %d is too short", id, i))
				continue
			}
			child := newRawBucket()
			b.buckets[k] = child
			if r := binary.LittleEndian.Uint64(v); r != 0 {
				w.read(child, r, nil, depth+1)
			} else {
				w.read(child, 0, v[inBucketLen:], depth+1)
			}
		}
	}
}
