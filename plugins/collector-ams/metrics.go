package collectorams

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// groupGaugeNames are the optimizer-group gauges (OptimizerGroupMetrics.java,
// amoro.md §5.1) with the reporter's `amoro_` prefix (§5.2).
var groupGaugeNames = []string{
	"amoro_optimizer_group_pending_tasks",
	"amoro_optimizer_group_executing_tasks",
	"amoro_optimizer_group_planing_tables",
	"amoro_optimizer_group_pending_tables",
	"amoro_optimizer_group_executing_tables",
	"amoro_optimizer_group_idle_tables",
	"amoro_optimizer_group_committing_tables",
	"amoro_optimizer_group_optimizer_instances",
	"amoro_optimizer_group_memory_bytes_allocated",
	"amoro_optimizer_group_threads",
	"amoro_optimizer_group_idle_optimizers",
	"amoro_optimizer_group_config_invalid",
	// DRA-only (dra/DynamicAllocationMetrics.java): present only while AMS's
	// own dynamic allocation is on for the group.
	"amoro_optimizer_group_pending_removal_optimizers",
	"amoro_optimizer_group_effective_threads",
	"amoro_optimizer_group_backlog_duration_ms",
	"amoro_optimizer_group_scale_up_total",
	"amoro_optimizer_group_scale_down_total",
}

// Bounds of a scrape. The exporter's body grows with every table
// (table_optimizing_* series), so it is read line by line and only the
// group's gauges are kept: memory stays at one line whatever the body's size.
const (
	maxMetricsBody = 16 << 20
	maxMetricsLine = 64 << 10
	// maxGaugeValue is the largest count taken as a count: beyond 2^53 a
	// float64 no longer holds every integer, and nothing AMS counts gets
	// near it.
	maxGaugeValue = 1 << 53
)

// gaugeScrape is what one scrape told about a group.
type gaugeScrape struct {
	values map[string]float64
	// problems are series that were there but unusable (NaN, ±Inf,
	// negative, too large, listed twice) and a body cut at the bound; each
	// makes the snapshot incomplete while the other gauges still count.
	problems []string
}

// scanGroupMetrics reads a Prometheus text exposition and keeps the
// optimizer-group series whose `group` label is group, reading at most limit
// bytes.
func scanGroupMetrics(r io.Reader, group string, limit int64) (gaugeScrape, error) {
	out := gaugeScrape{values: map[string]float64{}}
	wanted := map[string]bool{}
	for _, n := range groupGaugeNames {
		wanted[n] = true
	}
	lr := &io.LimitedReader{R: r, N: limit + 1}
	br := bufio.NewReaderSize(lr, 32<<10)
	prefix := []byte("amoro_optimizer_group_")
	buf := make([]byte, 0, 4096)
	for lineNo := 1; ; lineNo++ {
		raw, err := readLine(br, buf, maxMetricsLine)
		buf = raw[:0]
		ours := bytes.HasPrefix(raw, prefix)
		if lr.N <= 0 {
			// The bound cut the body, possibly inside this line.
			out.problems = append(out.problems, fmt.Sprintf("metrics body larger than %d bytes: read only the first %d, series after them are missing", limit, limit))
			return out, nil
		}
		if errors.Is(err, errLongLine) {
			if ours {
				return out, fmt.Errorf("malformed exposition: line %d longer than %d bytes", lineNo, maxMetricsLine)
			}
		} else if err != nil && !errors.Is(err, io.EOF) {
			return out, fmt.Errorf("reading exposition: %w", err)
		} else if ours {
			name, labels, value, perr := parseSample(string(raw))
			if perr != nil {
				return out, fmt.Errorf("malformed exposition: line %d: %w", lineNo, perr)
			}
			if wanted[name] && labels["group"] == group {
				series := fmt.Sprintf("%s{group=%q}", name, group)
				_, dup := out.values[name]
				switch {
				case dup:
					delete(out.values, name)
					out.problems = append(out.problems, series+" is listed twice")
					wanted[name] = false
				case math.IsNaN(value) || math.IsInf(value, 0) || value < 0 || value > maxGaugeValue:
					out.problems = append(out.problems, fmt.Sprintf("%s is %v: not a count", series, value))
					wanted[name] = false
				default:
					out.values[name] = value
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
	}
}

var errLongLine = errors.New("line too long")

// readLine returns the next line without its line end, in buf's storage
// (valid until the next call). A line longer than max is read to its end
// but only its first max bytes are kept, and errLongLine says so.
func readLine(br *bufio.Reader, buf []byte, max int) ([]byte, error) {
	b := buf[:0]
	total := 0
	for {
		chunk, err := br.ReadSlice('\n')
		total += len(chunk)
		if len(b) < max {
			b = append(b, chunk[:min(len(chunk), max-len(b))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line := bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
		if total > max+1 && err == nil || total > max && err != nil {
			return line, errLongLine
		}
		return line, err
	}
}

// parseSample parses `name{l="v",...} value [timestamp]` of the text
// format (label values quoted, with \\, \" and \n escapes).
func parseSample(line string) (name string, labels map[string]string, value float64, err error) {
	i := strings.IndexAny(line, "{ \t")
	if i < 0 {
		return "", nil, 0, errors.New("sample without a value")
	}
	name, rest := line[:i], line[i:]
	labels = map[string]string{}
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " \t,")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq <= 0 || eq+1 >= len(rest) || rest[eq+1] != '"' {
				return "", nil, 0, errors.New("malformed label")
			}
			key := strings.TrimSpace(rest[:eq])
			rest = rest[eq+2:]
			var v strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						v.WriteByte('\n')
					default:
						v.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					rest = rest[j+1:]
					closed = true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return "", nil, 0, errors.New("unterminated label value")
			}
			labels[key] = v.String()
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return "", nil, 0, errors.New("want a value and at most a timestamp after the labels")
	}
	value, err = strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return "", nil, 0, fmt.Errorf("value %q: not a number", fields[0])
	}
	return name, labels, value, nil
}
