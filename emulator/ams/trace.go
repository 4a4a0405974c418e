package ams

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TraceRow is one unit of work of a workload trace: a task of Duration
// submitted Submit after the emulator's start.
type TraceRow struct {
	Submit   time.Duration
	Duration time.Duration
	// Table is optional; rows without one each get a table of their own,
	// so they are planned independently.
	Table string
	// Group is optional; empty means the first group.
	Group string
}

// LoadTrace reads a CSV trace with a header. `submit` and `duration` (seconds,
// fractions allowed) are required; `table` and `group` are optional; any
// other column is an error, so a misspelt header does not silently drop data.
func LoadTrace(r io.Reader) ([]TraceRow, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("trace: empty input, want a header with submit and duration")
	}
	if err != nil {
		return nil, fmt.Errorf("trace: reading header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch h {
		case "submit", "duration", "table", "group":
		default:
			return nil, fmt.Errorf("trace: unknown column %q (want submit, duration, table, group)", h)
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("trace: column %q appears twice", h)
		}
		col[h] = i
	}
	for _, need := range []string{"submit", "duration"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("trace: missing required column %q", need)
		}
	}
	cr.FieldsPerRecord = len(header)
	var rows []TraceRow
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		sub, err := ParseSeconds(rec[col["submit"]])
		if err != nil {
			return nil, fmt.Errorf("trace line %d: submit: %w", line, err)
		}
		dur, err := ParseSeconds(rec[col["duration"]])
		if err != nil {
			return nil, fmt.Errorf("trace line %d: duration: %w", line, err)
		}
		row := TraceRow{Submit: sub, Duration: dur}
		if i, ok := col["table"]; ok {
			row.Table = strings.TrimSpace(rec[i])
		}
		if i, ok := col["group"]; ok {
			row.Group = strings.TrimSpace(rec[i])
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// ParseSeconds reads a trace's number of seconds (fractions allowed): not
// negative, not NaN, at most 1e9.
func ParseSeconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number of seconds", s)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e9 {
		return 0, fmt.Errorf("%q must be between 0 and 1e9 seconds", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// ScheduleTrace queues trace rows to be submitted at Options.Start + Submit.
// Rows may come in any order; rows already due are submitted at once.
func (e *Emulator) ScheduleTrace(rows []TraceRow) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	evs := make([]traceEvent, 0, len(rows))
	for i, r := range rows {
		if r.Submit < 0 || r.Duration < 0 {
			return fmt.Errorf("trace row %d: submit and duration must not be negative", i+1)
		}
		if _, err := e.resolveGroupLocked(r.Group); err != nil {
			return fmt.Errorf("trace row %d: %w", i+1, err)
		}
		tbl := r.Table
		if tbl == "" {
			e.traceSeq++
			tbl = fmt.Sprintf("trace_%d", e.traceSeq)
		}
		if _, _, _, err := e.splitTableName(tbl); err != nil {
			return fmt.Errorf("trace row %d: %w", i+1, err)
		}
		evs = append(evs, traceEvent{at: e.opts.Start.Add(r.Submit), group: r.Group, table: tbl, duration: r.Duration})
	}
	pending := append(e.trace[e.traceNext:len(e.trace):len(e.trace)], evs...)
	sort.SliceStable(pending, func(i, j int) bool { return pending[i].at.Before(pending[j].at) })
	e.trace = pending
	e.traceNext = 0
	e.advanceLocked(e.clock.Now())
	return nil
}
