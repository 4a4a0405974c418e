package config

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/ebbscale/ebb/sdk"
)

// A chain's policy block gives each evaluator its keys. Written flat, a key
// goes to every evaluator whose schema declares it, which is only safe when
// one does: two evaluators that both read `max-parallelism` would silently
// share one value. So a key two evaluators read is an error where it is
// written, and a block named after an evaluator of the chain holds that
// evaluator's keys alone:
//
//	policy {
//	  dra   { max-parallelism = 32 }
//	  guard { max-parallelism = 16 }
//	}

// policyNamespaces finds the namespace blocks of a policy body, by evaluator.
func policyNamespaces(body hcl.Body, evaluators []string) (map[string]*hcl.Block, hcl.Diagnostics) {
	hs := &hcl.BodySchema{}
	for _, n := range evaluators {
		hs.Blocks = append(hs.Blocks, hcl.BlockHeaderSchema{Type: n})
	}
	content, _, diags := body.PartialContent(hs)
	out := map[string]*hcl.Block{}
	for _, b := range content.Blocks {
		if first := out[b.Type]; first != nil {
			diags = append(diags, duplicateBlock(b.Type, b, first))
			continue
		}
		out[b.Type] = b
	}
	return out, diags
}

// namespacedSchema is what the policy body accepts: the flat evaluators'
// keys and one block per evaluator of the chain. An evaluator named like a
// policy key would make its block ambiguous.
func namespacedSchema(union sdk.Schema, evaluators []string, schemas []sdk.Schema, evaluatorsAttr *hcl.Attribute) (sdk.Schema, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	out := union
	out.Blocks = append([]sdk.Block{}, union.Blocks...)
	for i, n := range evaluators {
		if indexAttr(union, n) >= 0 || indexBlock(union, n) >= 0 {
			diags = append(diags, attrError(evaluatorsAttr, "Ambiguous evaluator name",
				fmt.Sprintf("evaluator %q is named like a policy key of this chain, so `%s { }` in its policy block would be ambiguous; rename the evaluator block.", n, n)))
			continue
		}
		out.Blocks = append(out.Blocks, sdk.Block{Name: n, Description: "policy keys of evaluator " + n, Schema: schemas[i]})
	}
	return out, diags
}

// policyClashes reports each key written in the flat policy body that more
// than one of the flat evaluators reads, at the key.
func policyClashes(body hcl.Body, names []string, schemas []sdk.Schema) hcl.Diagnostics {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	readers := map[string][]string{}
	var walk func(s sdk.Schema, prefix, name string)
	walk = func(s sdk.Schema, prefix, name string) {
		for _, a := range s.Attributes {
			readers[prefix+a.Name] = append(readers[prefix+a.Name], name)
		}
		for _, b := range s.Blocks {
			walk(b.Schema, prefix+b.Name+".", name)
		}
	}
	for i, n := range names {
		walk(schemas[i], "", n)
	}
	var diags hcl.Diagnostics
	var visit func(b *hclsyntax.Body, prefix string)
	visit = func(b *hclsyntax.Body, prefix string) {
		for _, a := range sortedAttrs(b) {
			key := prefix + a.Name
			if r := readers[key]; len(r) > 1 {
				blocks := make([]string, len(r))
				for i, n := range r {
					blocks[i] = "`" + n + " { " + a.Name + " = ... }`"
				}
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Policy key read by several evaluators",
					Detail: fmt.Sprintf("%q is a policy key of evaluators %s, so this one value would configure all of them; write it inside the policy block as %s.",
						key, quoteAll(r), strings.Join(blocks, " or ")),
					Subject: a.NameRange.Ptr(),
				})
			}
		}
		for _, blk := range b.Blocks {
			visit(blk.Body, prefix+blk.Type+".")
		}
	}
	visit(sb, "")
	return diags
}

func sortedAttrs(b *hclsyntax.Body) []*hclsyntax.Attribute {
	out := make([]*hclsyntax.Attribute, 0, len(b.Attributes))
	for _, a := range b.Attributes {
		out = append(out, a)
	}
	// Source order, so errors read top to bottom.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].SrcRange.Start.Byte < out[j-1].SrcRange.Start.Byte; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, " and ")
}
