package sdk

import (
	"sort"
	"strings"
)

// ProblemsOf turns the error of a plugin's config check (what Configure
// would return) into problems, so that a plugin can implement
// ConfigValidator with the very checks Configure runs:
//
//	func (p *P) ValidateConfig(_ context.Context, raw json.RawMessage) ([]sdk.Problem, error) {
//		_, err := parseConfig(raw)
//		return sdk.ProblemsOf(err, configSchema()), nil
//	}
//
// Each error joined with errors.Join is one problem. A message that begins
// with an attribute of the schema ("namespace \"X\": ...", "url is required",
// "command[0] ...", also after a "plugin-name: " prefix) is attributed to it;
// any other is a problem of the whole block.
func ProblemsOf(err error, schema Schema) []Problem {
	if err == nil {
		return nil
	}
	names := schemaPaths(schema, "")
	// Longest first: "image-pull-policy" before "image".
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	var out []Problem
	for _, e := range leafErrors(err) {
		msg := e.Error()
		attr := attributeOf(msg, names)
		if attr == "" {
			if _, rest, ok := strings.Cut(msg, ": "); ok {
				if attr = attributeOf(rest, names); attr != "" {
					msg = rest
				}
			}
		}
		out = append(out, Problem{Attribute: attr, Message: msg})
	}
	return out
}

// leafErrors flattens errors.Join trees.
func leafErrors(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, leafErrors(e)...)
	}
	return out
}

func attributeOf(msg string, names []string) string {
	for _, n := range names {
		rest, ok := strings.CutPrefix(msg, n)
		if ok && (rest == "" || strings.ContainsAny(rest[:1], " :[")) {
			return n
		}
	}
	return ""
}

func schemaPaths(s Schema, prefix string) []string {
	var out []string
	for _, a := range s.Attributes {
		out = append(out, prefix+a.Name)
	}
	for _, b := range s.Blocks {
		out = append(out, prefix+b.Name)
		out = append(out, schemaPaths(b.Schema, prefix+b.Name+".")...)
	}
	return out
}
