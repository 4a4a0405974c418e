package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/ebbscale/ebb/sdk"
)

// decodeBody decodes an HCL body against a plugin's schema into a JSON-ready
// object of what is written (withDefaults adds the rest). own is the schema
// whose keys end up in the result; accept (a superset of own) lists the keys that are not an error, so
// that a chain's policy block can hold the keys of several evaluators. where
// is the block reported when something required is missing; path prefixes
// names in messages ("auto-restart.").
func decodeBody(body hcl.Body, own, accept sdk.Schema, ctx *hcl.EvalContext, where hcl.Range, path string) (map[string]any, hcl.Diagnostics) {
	hs := bodySchema(accept)
	content, diags := body.Content(hs)
	suggest(diags, hs)
	out := map[string]any{}
	for _, a := range own.Attributes {
		if attr, ok := content.Attributes[a.Name]; ok {
			v, d := evalExpr(attr.Expr, ctx)
			if d.HasErrors() {
				diags = append(diags, d...)
				continue
			}
			// null means "not set", as elsewhere in HCL, so a variable
			// can opt out of an attribute and get its default.
			if !v.IsNull() {
				cv, err := convertValue(v, a.Type)
				if err != nil {
					diags = append(diags, attrError(attr, "Incorrect attribute value type", fmt.Sprintf("%s%s: %v.", path, a.Name, err)))
					continue
				}
				out[a.Name] = cv
				continue
			}
		}
		if a.Required {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing required argument",
				Detail:   fmt.Sprintf("The argument %q is required%s.", path+a.Name, describeAttr(a)),
				Subject:  where.Ptr(),
			})
		}
	}
	for _, b := range own.Blocks {
		blocks := content.Blocks.OfType(b.Name)
		for _, dup := range blocks[min(1, len(blocks)):] {
			diags = append(diags, duplicateBlock(b.Name, dup, blocks[0]))
		}
		inner, innerWhere := hcl.EmptyBody(), where
		if len(blocks) > 0 {
			inner, innerWhere = blocks[0].Body, blocks[0].DefRange
		}
		acceptInner, _ := accept.Block(b.Name)
		obj, d := decodeBody(inner, b.Schema, acceptInner.Schema, ctx, innerWhere, path+b.Name+".")
		diags = append(diags, d...)
		out[b.Name] = obj
	}
	return out, diags
}

func describeAttr(a sdk.Attribute) string {
	if a.Description == "" {
		return ""
	}
	return " (" + a.Description + ")"
}

func bodySchema(s sdk.Schema) *hcl.BodySchema {
	hs := &hcl.BodySchema{}
	for _, a := range s.Attributes {
		hs.Attributes = append(hs.Attributes, hcl.AttributeSchema{Name: a.Name})
	}
	for _, b := range s.Blocks {
		hs.Blocks = append(hs.Blocks, hcl.BlockHeaderSchema{Type: b.Name})
	}
	return hs
}

// convertValue converts a known, non-null HCL value to the JSON-ready Go
// value of a schema type: string, json.Number, bool, []string,
// map[string]string. Durations stay strings, as written.
func convertValue(v cty.Value, t sdk.Type) (any, error) {
	switch t {
	case sdk.TypeString, sdk.TypeDuration:
		s, err := convert.Convert(v, cty.String)
		if err != nil {
			return nil, fmt.Errorf("a %s is required, got %s", t, v.Type().FriendlyName())
		}
		if t == sdk.TypeDuration {
			if _, err := sdk.ParseDuration(s.AsString()); err != nil {
				return nil, err
			}
		}
		return s.AsString(), nil
	case sdk.TypeNumber:
		n, err := convert.Convert(v, cty.Number)
		if err != nil {
			return nil, fmt.Errorf("a number is required, got %s", v.Type().FriendlyName())
		}
		return sdk.JSONNumber(n.AsBigFloat())
	case sdk.TypeBool:
		b, err := convert.Convert(v, cty.Bool)
		if err != nil {
			return nil, fmt.Errorf("a bool is required, got %s", v.Type().FriendlyName())
		}
		return b.True(), nil
	case sdk.TypeListString:
		l, err := convert.Convert(v, cty.List(cty.String))
		if err != nil {
			return nil, fmt.Errorf("a list of strings is required, got %s", v.Type().FriendlyName())
		}
		out := []string{}
		for it := l.ElementIterator(); it.Next(); {
			i, e := it.Element()
			if e.IsNull() {
				return nil, fmt.Errorf("element %s must not be null", i.AsBigFloat().Text('f', 0))
			}
			out = append(out, e.AsString())
		}
		return out, nil
	case sdk.TypeMapString:
		m, err := convert.Convert(v, cty.Map(cty.String))
		if err != nil {
			return nil, fmt.Errorf("a map of strings is required, got %s", v.Type().FriendlyName())
		}
		out := map[string]string{}
		for it := m.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if e.IsNull() {
				return nil, fmt.Errorf("key %q must not be null", k.AsString())
			}
			out[k.AsString()] = e.AsString()
		}
		return out, nil
	}
	return nil, fmt.Errorf("the plugin's schema gives it an unknown type (%d)", int(t))
}

// withDefaults fills in the schema's defaults with the SDK's own
// implementation, the one sdktest uses, so that tests and production agree.
func withDefaults(s sdk.Schema, obj map[string]any, where hcl.Range) hcl.Diagnostics {
	if err := s.FillDefaults(obj); err != nil {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid plugin schema",
			Detail:   fmt.Sprintf("The plugin publishes a %v.", err),
			Subject:  where.Ptr(),
		}}
	}
	return nil
}

// unionSchema merges the policy schemas of a chain's evaluators. A key two
// evaluators declare with different types cannot be written once for both,
// so it is a conflict.
func unionSchema(names []string, schemas []sdk.Schema) (sdk.Schema, []string) {
	var out sdk.Schema
	var conflicts []string
	owner := map[string]string{}
	var merge func(into *sdk.Schema, from sdk.Schema, prefix, name string)
	merge = func(into *sdk.Schema, from sdk.Schema, prefix, name string) {
		for _, a := range from.Attributes {
			key := prefix + a.Name
			i := indexAttr(*into, a.Name)
			if i < 0 {
				into.Attributes = append(into.Attributes, a)
				owner[key] = name
				continue
			}
			if into.Attributes[i].Type != a.Type {
				conflicts = append(conflicts, fmt.Sprintf("policy key %q is a %s for evaluator %q but a %s for evaluator %q",
					key, into.Attributes[i].Type, owner[key], a.Type, name))
			}
			into.Attributes[i].Required = into.Attributes[i].Required || a.Required
		}
		for _, b := range from.Blocks {
			i := indexBlock(*into, b.Name)
			if i < 0 {
				into.Blocks = append(into.Blocks, sdk.Block{Name: b.Name, Description: b.Description})
				i = len(into.Blocks) - 1
			}
			merge(&into.Blocks[i].Schema, b.Schema, prefix+b.Name+".", name)
		}
	}
	for i, s := range schemas {
		merge(&out, s, "", names[i])
	}
	return out, conflicts
}

func indexAttr(s sdk.Schema, name string) int {
	for i, a := range s.Attributes {
		if a.Name == name {
			return i
		}
	}
	return -1
}

func indexBlock(s sdk.Schema, name string) int {
	for i, b := range s.Blocks {
		if b.Name == name {
			return i
		}
	}
	return -1
}
