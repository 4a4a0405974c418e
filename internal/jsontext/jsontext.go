// Package jsontext encodes JSON for people to read: "<", ">" and "&" stay
// as written. encoding/json escapes them for HTML by default, which turns a
// reason such as "0 threads < min-parallelism 4" into \u003c in the HTTP
// API, plan --json and the decision log.
package jsontext

import (
	"bytes"
	"encoding/json"
)

// Marshal is json.Marshal without HTML escaping.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
