package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"time"
)

// FillDefaults sets every attribute obj lacks to its schema default, and
// fills each nested block the same way (a block not written becomes an object
// of its defaults). The runner does this when it decodes a plugin's HCL, and
// sdktest when it feeds a plugin a test case, so a plugin sees the same object
// in its tests as in production.
func (s Schema) FillDefaults(obj map[string]any) error {
	return s.fill(obj, "")
}

func (s Schema) fill(obj map[string]any, path string) error {
	for _, a := range s.Attributes {
		if _, ok := obj[a.Name]; ok || a.Default == nil {
			continue
		}
		v, err := NormalizeDefault(a.Default, a.Type)
		if err != nil {
			return fmt.Errorf("bad default for %q: %w", path+a.Name, err)
		}
		obj[a.Name] = v
	}
	for _, b := range s.Blocks {
		inner, ok := obj[b.Name].(map[string]any)
		if !ok {
			inner = map[string]any{}
			obj[b.Name] = inner
		}
		if err := b.Schema.fill(inner, path+b.Name+"."); err != nil {
			return err
		}
	}
	return nil
}

// WithDefaults is FillDefaults for a JSON object, as plugins receive it.
func (s Schema) WithDefaults(raw json.RawMessage) (json.RawMessage, error) {
	obj := map[string]any{}
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			return nil, fmt.Errorf("not a JSON object: %w", err)
		}
		if obj == nil {
			obj = map[string]any{}
		}
	}
	if err := s.FillDefaults(obj); err != nil {
		return nil, err
	}
	return json.Marshal(obj)
}

// NormalizeDefault turns a schema default into the value the runner would
// produce for the same value written in HCL, so a defaulted and a written
// value encode alike. Defaults arrive as JSON-decoded values from plugin
// processes and as Go values from in-process plugins.
func NormalizeDefault(d any, t Type) (any, error) {
	switch v := d.(type) {
	case time.Duration:
		d = v.String()
	case Duration:
		d = v.D().String()
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var val any
	if err := dec.Decode(&val); err != nil {
		return nil, err
	}
	bad := fmt.Errorf("%s is not a %s", raw, t)
	switch t {
	case TypeString:
		if _, ok := val.(string); !ok {
			return nil, bad
		}
	case TypeDuration:
		s, ok := val.(string)
		if !ok {
			return nil, bad
		}
		if _, err := ParseDuration(s); err != nil {
			return nil, err
		}
	case TypeNumber:
		n, ok := val.(json.Number)
		if !ok {
			return nil, bad
		}
		f, _, err := big.ParseFloat(n.String(), 10, 512, big.ToNearestEven)
		if err != nil {
			return nil, bad
		}
		return JSONNumber(f)
	case TypeBool:
		if _, ok := val.(bool); !ok {
			return nil, bad
		}
	case TypeListString:
		l, ok := val.([]any)
		if !ok {
			return nil, bad
		}
		out := make([]string, len(l))
		for i, e := range l {
			if out[i], ok = e.(string); !ok {
				return nil, bad
			}
		}
		return out, nil
	case TypeMapString:
		m, ok := val.(map[string]any)
		if !ok {
			return nil, bad
		}
		out := make(map[string]string, len(m))
		for k, e := range m {
			if out[k], ok = e.(string); !ok {
				return nil, bad
			}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unknown type (%d)", int(t))
	}
	return val, nil
}

// JSONNumber writes a number as plugins receive it: integers without an
// exponent, so that a plugin can decode 5000000 into an int64.
func JSONNumber(f *big.Float) (json.Number, error) {
	if !NumberInRange(f) {
		return "", fmt.Errorf("number %s is out of range", f.Text('g', 6))
	}
	if f.IsInt() {
		return json.Number(f.Text('f', 0)), nil
	}
	return json.Number(f.Text('g', -1)), nil
}

// NumberInRange is true for the numbers a float64 can hold. Beyond that no plugin
// can decode them, and printing one digit by digit can take forever.
func NumberInRange(f *big.Float) bool {
	if f.IsInf() {
		return false
	}
	a := new(big.Float).Abs(f)
	return a.Sign() == 0 || (a.Cmp(big.NewFloat(math.MaxFloat64)) <= 0 && a.Cmp(big.NewFloat(math.SmallestNonzeroFloat64)) >= 0)
}
