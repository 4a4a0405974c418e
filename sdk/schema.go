package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Type is the type of a schema attribute.
type Type int

const (
	TypeUnknown Type = iota
	TypeString
	TypeNumber
	TypeBool
	// TypeDuration is written as a Go duration string ("30s", "1h30m") or in
	// Amoro's syntax ("1min", "15 min"; see ParseDuration) and must not be
	// negative.
	TypeDuration
	TypeListString
	TypeMapString
)

func (t Type) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeNumber:
		return "number"
	case TypeBool:
		return "bool"
	case TypeDuration:
		return "duration"
	case TypeListString:
		return "list(string)"
	case TypeMapString:
		return "map(string)"
	}
	return "unknown"
}

// Schema describes an HCL body: its attributes and the nested blocks that
// may appear in it at most once.
type Schema struct {
	Attributes []Attribute
	Blocks     []Block
}

// Attribute is one typed key of a schema.
type Attribute struct {
	Name        string
	Type        Type
	Required    bool
	Default     any
	Description string
	// Sensitive values never appear in logs or in the decision log.
	Sensitive bool
}

// Block is a nested block of a schema, such as `auto-restart { }`.
type Block struct {
	Name        string
	Description string
	Schema      Schema
}

// Attr looks up an attribute by name.
func (s Schema) Attr(name string) (Attribute, bool) {
	for _, a := range s.Attributes {
		if a.Name == name {
			return a, true
		}
	}
	return Attribute{}, false
}

// Block looks up a nested block by name.
func (s Schema) Block(name string) (Block, bool) {
	for _, b := range s.Blocks {
		if b.Name == name {
			return b, true
		}
	}
	return Block{}, false
}

// Empty is true for a schema with nothing in it.
func (s Schema) Empty() bool { return len(s.Attributes) == 0 && len(s.Blocks) == 0 }

// Redact returns a copy of a decoded config object with every sensitive
// value replaced, for logs and the decision log.
func (s Schema) Redact(obj map[string]any) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		if a, ok := s.Attr(k); ok && a.Sensitive {
			out[k] = "(sensitive)"
			continue
		}
		if b, ok := s.Block(k); ok {
			if m, ok := v.(map[string]any); ok {
				out[k] = b.Schema.Redact(m)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// Duration is a time.Duration that reads and writes as a Go duration string
// in JSON, the way the runner encodes TypeDuration attributes.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\": %w", err)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses a non-negative duration written either as a Go
// duration ("30s", "5m", "1h30m") or in Apache Amoro's syntax ("30s", "1min",
// "15 min", "1 minute", "2 days"), so that a group's properties paste into a
// policy unchanged. A bare number is refused: Amoro reads it as milliseconds,
// which is rarely what a person writing "30" means.
func ParseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		var perr error
		v, perr = parseAmoroDuration(s)
		if perr != nil {
			return 0, fmt.Errorf("invalid duration %q: %w", s, perr)
		}
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q must not be negative", s)
	}
	return v, nil
}

// amoroUnits are the labels of Amoro's ConfigHelpers.TimeUtils.TimeUnit
// (amoro-common/.../config/ConfigHelpers.java): a singular label, and for
// the plural ones the same word with an "s".
var amoroUnits = map[string]time.Duration{
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"ms": time.Millisecond, "milli": time.Millisecond, "millis": time.Millisecond,
	"millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"µs": time.Microsecond, "micro": time.Microsecond, "micros": time.Microsecond,
	"microsecond": time.Microsecond, "microseconds": time.Microsecond,
	"ns": time.Nanosecond, "nano": time.Nanosecond, "nanos": time.Nanosecond,
	"nanosecond": time.Nanosecond, "nanoseconds": time.Nanosecond,
}

// parseAmoroDuration follows TimeUtils.parseDuration: digits, optional
// spaces, a unit label in any case, surrounding spaces trimmed.
func parseAmoroDuration(s string) (time.Duration, error) {
	const want = `want a number and a unit such as "30s", "5m", "1h30m", or Amoro's "1min", "15 min"`
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New(want)
	}
	label := strings.ToLower(strings.TrimSpace(t[i:]))
	if label == "" {
		return 0, errors.New(`a number needs a unit ("30s", "1min"); Amoro would read a bare number as milliseconds`)
	}
	unit, ok := amoroUnits[label]
	if !ok {
		return 0, errors.New(want)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/int64(unit) {
		return 0, errors.New("too large")
	}
	return time.Duration(n) * unit, nil
}

// DecodeConfig decodes a config or policy JSON object into v, refusing keys v
// does not know, so that a plugin's schema and its Go struct cannot drift apart
// silently.
func DecodeConfig(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding config: %w", err)
	}
	return nil
}
