// Package sim replays a task trace through the AMS emulator's queue model and
// an emulated platform on a virtual clock, calling real evaluators each round
// the way the runner would, and measures what each policy costs and how long
// tasks wait.
package sim

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ebbscale/ebb/emulator/ams"
)

// Row is one task of a trace: submitted Submit after the start, running
// Duration on one thread. Table is optional (a table of its own when empty);
// Quota is the table's self-optimizing.quota (0 = Amoro's default).
type Row struct {
	Submit, Duration time.Duration
	Table            string
	Quota            float64
}

// maxRows bounds what one trace may hold, so a wrong file cannot exhaust memory.
const maxRows = 5_000_000

// ParseTrace reads a CSV trace with a header: `submit` and `duration` in
// seconds are required, `table` and `quota` optional. Errors name the place
// as NAME:LINE. Rows come back sorted by submit time.
func ParseTrace(name string, r io.Reader) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s:1: empty trace, want a header with submit and duration", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s:%w", name, csvErr(err))
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch h {
		case "submit", "duration", "table", "quota":
		default:
			return nil, fmt.Errorf("%s:1: unknown column %q (want submit, duration, table, quota)", name, h)
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("%s:1: column %q appears twice", name, h)
		}
		col[h] = i
	}
	for _, need := range []string{"submit", "duration"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%s:1: missing required column %q", name, need)
		}
	}
	cr.FieldsPerRecord = len(header)
	quotas := map[string]float64{}
	var rows []Row
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%w", name, csvErr(err))
		}
		line, _ := cr.FieldPos(0)
		if len(rows) >= maxRows {
			return nil, fmt.Errorf("%s:%d: more than %d rows", name, line, maxRows)
		}
		var row Row
		if row.Submit, err = ams.ParseSeconds(rec[col["submit"]]); err != nil {
			return nil, fmt.Errorf("%s:%d: submit: %w", name, line, err)
		}
		if row.Duration, err = ams.ParseSeconds(rec[col["duration"]]); err != nil {
			return nil, fmt.Errorf("%s:%d: duration: %w", name, line, err)
		}
		if i, ok := col["table"]; ok {
			row.Table = strings.TrimSpace(rec[i])
			if err := checkTable(row.Table); err != nil {
				return nil, fmt.Errorf("%s:%d: table: %w", name, line, err)
			}
		}
		if i, ok := col["quota"]; ok && strings.TrimSpace(rec[i]) != "" {
			q, err := strconv.ParseFloat(strings.TrimSpace(rec[i]), 64)
			if err != nil || !(q > 0) || q > 1e6 {
				return nil, fmt.Errorf("%s:%d: quota: %q must be a number above 0 (at most 1: a share of the group's threads; above: threads)", name, line, rec[i])
			}
			if row.Table == "" {
				return nil, fmt.Errorf("%s:%d: quota: a quota needs a table", name, line)
			}
			if old, ok := quotas[row.Table]; ok && old != q {
				return nil, fmt.Errorf("%s:%d: quota: table %s already has quota %v", name, line, row.Table, old)
			}
			quotas[row.Table] = q
			row.Quota = q
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s:2: trace has a header but no rows", name)
	}
	for i := range rows {
		if q, ok := quotas[rows[i].Table]; ok {
			rows[i].Quota = q
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Submit < rows[j].Submit })
	return rows, nil
}

// csvErr turns encoding/csv's "record on line N: ..." into "N: ...".
func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%d: %v", pe.Line, pe.Err)
	}
	return fmt.Errorf("1: %w", err)
}

// checkTable accepts what the emulator accepts: table, db.table or
// catalog.db.table, no empty part.
func checkTable(t string) error {
	if t == "" {
		return nil
	}
	parts := strings.Split(t, ".")
	if len(parts) > 3 {
		return fmt.Errorf("%q: want table, db.table or catalog.db.table", t)
	}
	for _, p := range parts {
		if p == "" {
			return fmt.Errorf("%q has an empty part", t)
		}
	}
	return nil
}

// WriteTrace writes rows in the format ParseTrace reads.
func WriteTrace(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"submit", "duration", "table", "quota"}); err != nil {
		return err
	}
	for _, r := range rows {
		q := ""
		if r.Quota > 0 {
			q = strconv.FormatFloat(r.Quota, 'g', -1, 64)
		}
		rec := []string{strconv.FormatFloat(r.Submit.Seconds(), 'f', -1, 64), strconv.FormatFloat(r.Duration.Seconds(), 'f', -1, 64), r.Table, q}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
