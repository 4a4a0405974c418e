package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/ebbscale/ebb/sdk"
)

// maxFileSize bounds file(): configuration snippets are small, and a typo
// such as file("/var/log/huge") must not exhaust memory.
const maxFileSize = 1 << 20

// invalidDependency marks the diagnostic of an expression that depends on a
// variable which already has an error. Parse drops such diagnostics, so that
// one bad variable is reported once, at the variable.
type invalidDependency struct{}

func dependsOnInvalid(expr hcl.Expression) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Value depends on an invalid variable",
		Subject:  expr.Range().Ptr(),
		Extra:    invalidDependency{},
	}
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "default"}, {Name: "description"}},
}

// variables decodes the variable blocks and applies the -var overrides. A
// variable with an error gets an unknown value, which marks everything
// computed from it as invalid without reporting it again.
func (l *loader) variables(blocks hcl.Blocks, overrides map[string]string) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	// Defaults may call functions but not refer to variables: no ordering
	// or cycles to explain.
	ctx := &hcl.EvalContext{Functions: l.functions()}
	vals := map[string]cty.Value{}
	decls := map[string]*hcl.Block{}
	for _, blk := range blocks {
		name := blk.Labels[0]
		if !hclsyntax.ValidIdentifier(name) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid variable name",
				Detail:   fmt.Sprintf("%q is not a valid name: expressions refer to it as var.NAME, so use letters, digits, underscores and dashes, starting with a letter.", name),
				Subject:  blk.LabelRanges[0].Ptr(),
			})
			continue
		}
		if first, ok := decls[name]; ok {
			diags = append(diags, duplicateName("variable", name, "declared", first, blk))
			continue
		}
		decls[name] = blk
		vals[name] = cty.DynamicVal

		content, d := blk.Body.Content(variableSchema)
		suggest(d, variableSchema)
		diags = append(diags, d...)
		if a, ok := content.Attributes["description"]; ok {
			_, d := evalString(a, ctx)
			diags = append(diags, d...)
		}
		raw, override := overrides[name]
		a, hasDefault := content.Attributes["default"]
		var def cty.Value
		if hasDefault {
			v, d := evalExpr(a.Expr, ctx)
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			def = v
		}
		switch {
		case override:
			v, err := convertOverride(raw, def, hasDefault)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("Invalid value for variable %q", name),
					Detail:   fmt.Sprintf("-var %s=%q: %v.", name, raw, err),
					Subject:  blk.DefRange.Ptr(),
				})
				continue
			}
			vals[name] = v
		case hasDefault:
			vals[name] = def
		default:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("No value for variable %q", name),
				Detail:   fmt.Sprintf("Variable %q has no default; set one, or pass -var %s=VALUE.", name, name),
				Subject:  blk.DefRange.Ptr(),
			})
		}
	}
	names := make([]string, 0, len(overrides))
	for k := range overrides {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if _, ok := decls[k]; !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Undeclared variable %q", k),
				Detail:   fmt.Sprintf("-var %s=... sets a variable that %s does not declare; add variable %q { default = ... }.", k, l.filename, k),
			})
		}
	}
	return vals, diags
}

// convertOverride turns a -var string into a value of the default's type:
// strings stay as written, numbers and bools are parsed, and lists, maps and
// objects are read as HCL expressions (-var 'tags=["a","b"]').
func convertOverride(raw string, def cty.Value, hasDefault bool) (cty.Value, error) {
	if !hasDefault || def.IsNull() || def.Type() == cty.String {
		return cty.StringVal(raw), nil
	}
	t := def.Type()
	if t.IsPrimitiveType() {
		v, err := convert.Convert(cty.StringVal(strings.TrimSpace(raw)), t)
		if err != nil {
			return cty.NilVal, fmt.Errorf("want a %s like the default", t.FriendlyName())
		}
		if t == cty.Number && !sdk.NumberInRange(v.AsBigFloat()) {
			return cty.NilVal, fmt.Errorf("number is out of range")
		}
		return v, nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), "-var", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("want an HCL %s like the default: %s", t.FriendlyName(), diags[0].Summary)
	}
	if d := checkNumbers(&hclsyntax.Body{Attributes: hclsyntax.Attributes{"v": {Name: "v", Expr: expr}}}); d.HasErrors() {
		return cty.NilVal, fmt.Errorf("number is out of range")
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("want an HCL %s like the default: %s", t.FriendlyName(), diags[0].Summary)
	}
	sequence := func(t cty.Type) bool { return t.IsTupleType() || t.IsListType() || t.IsSetType() }
	mapping := func(t cty.Type) bool { return t.IsObjectType() || t.IsMapType() }
	switch {
	case sequence(t) && sequence(v.Type()), mapping(t) && mapping(v.Type()):
		if t.IsListType() || t.IsSetType() || t.IsMapType() {
			return convertErr(v, t)
		}
		return v, nil
	}
	return cty.NilVal, fmt.Errorf("want a %s like the default, got a %s", t.FriendlyName(), v.Type().FriendlyName())
}

func convertErr(v cty.Value, t cty.Type) (cty.Value, error) {
	out, err := convert.Convert(v, t)
	if err != nil {
		return cty.NilVal, fmt.Errorf("want a %s like the default: %v", t.FriendlyName(), err)
	}
	return out, nil
}

// evalContext builds the expression context: var.NAME, functions, and the
// given extra root objects (chains use collector, evaluator and realizer).
func (l *loader) evalContext(extra map[string]cty.Value) *hcl.EvalContext {
	vars := map[string]cty.Value{"var": cty.ObjectVal(l.vars)}
	for k, v := range extra {
		vars[k] = v
	}
	return &hcl.EvalContext{Variables: vars, Functions: l.functions()}
}

func (l *loader) functions() map[string]function.Function {
	return map[string]function.Function{
		"env":       envFunc,
		"file":      l.fileFunc(),
		"lower":     stdlib.LowerFunc,
		"upper":     stdlib.UpperFunc,
		"trimspace": stdlib.TrimSpaceFunc,
		"join":      stdlib.JoinFunc,
		"split":     stdlib.SplitFunc,
		"concat":    stdlib.ConcatFunc,
		"coalesce":  stdlib.CoalesceFunc,
	}
}

// envFunc is env(NAME) or env(NAME, DEFAULT): the environment variable, or
// DEFAULT (else "") when it is unset or empty.
var envFunc = function.New(&function.Spec{
	Description: "Returns an environment variable, or the default when it is unset or empty.",
	Params:      []function.Parameter{{Name: "name", Type: cty.String}},
	VarParam:    &function.Parameter{Name: "default", Type: cty.String},
	Type: func(args []cty.Value) (cty.Type, error) {
		if len(args) > 2 {
			return cty.NilType, fmt.Errorf("env takes a name and at most one default")
		}
		return cty.String, nil
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if v := os.Getenv(args[0].AsString()); v != "" {
			return cty.StringVal(v), nil
		}
		if len(args) == 2 {
			return args[1], nil
		}
		return cty.StringVal(""), nil
	},
})

// fileFunc is file(PATH): the contents of a UTF-8 text file, relative paths
// resolving against the configuration's directory.
func (l *loader) fileFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the contents of a text file.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if !filepath.IsAbs(p) {
				p = filepath.Join(l.dir, p)
			}
			f, err := os.Open(p)
			if err != nil {
				return cty.NilVal, fmt.Errorf("reading file: %w", err)
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return cty.NilVal, fmt.Errorf("reading file: %w", err)
			}
			if !st.Mode().IsRegular() {
				return cty.NilVal, fmt.Errorf("%s is not a regular file", p)
			}
			b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
			if err != nil {
				return cty.NilVal, fmt.Errorf("reading file: %w", err)
			}
			if len(b) > maxFileSize {
				return cty.NilVal, fmt.Errorf("%s is larger than %d bytes", p, maxFileSize)
			}
			if !utf8.Valid(b) {
				return cty.NilVal, fmt.Errorf("%s is not UTF-8 text", p)
			}
			return cty.StringVal(string(b)), nil
		},
	})
}

// refRoots name the root objects whose attributes are declared names; a
// reference to an undeclared one gets a clearer message than HCL's
// "Unsupported attribute".
var refRoots = map[string]string{
	"var":       "variable",
	"collector": "collector",
	"evaluator": "evaluator",
	"realizer":  "realizer",
}

// evalExpr evaluates an expression, reporting references to undeclared
// names at the reference itself.
func evalExpr(expr hcl.Expression, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		what, ok := refRoots[root]
		if !ok || len(tr) < 2 {
			continue
		}
		obj, ok := ctx.Variables[root]
		step, isAttr := tr[1].(hcl.TraverseAttr)
		if !ok || !isAttr || !obj.Type().IsObjectType() || obj.Type().HasAttribute(step.Name) {
			continue
		}
		summary, detail := "Reference to undefined "+what, fmt.Sprintf("No %s %q is defined.", what, step.Name)
		if root == "var" {
			summary, detail = "Reference to undeclared variable", fmt.Sprintf("No variable %q is declared; add variable %q { default = ... }.", step.Name, step.Name)
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  summary,
			Detail:   detail,
			Subject:  tr.SourceRange().Ptr(),
		})
	}
	if diags.HasErrors() {
		return cty.DynamicVal, diags
	}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return cty.DynamicVal, diags
	}
	v, _ = v.UnmarkDeep()
	if !v.IsWhollyKnown() {
		return cty.DynamicVal, hcl.Diagnostics{dependsOnInvalid(expr)}
	}
	return v, nil
}

// evalAs evaluates an attribute and converts it to a schema type.
func evalAs(a *hcl.Attribute, t sdk.Type, ctx *hcl.EvalContext) (any, hcl.Diagnostics) {
	v, diags := evalExpr(a.Expr, ctx)
	if diags.HasErrors() {
		return nil, diags
	}
	if v.IsNull() {
		return nil, hcl.Diagnostics{attrError(a, "Missing value", fmt.Sprintf("%s must be a %s, not null.", a.Name, t))}
	}
	out, err := convertValue(v, t)
	if err != nil {
		return nil, hcl.Diagnostics{attrError(a, "Incorrect attribute value type", fmt.Sprintf("%s: %v.", a.Name, err))}
	}
	return out, nil
}

func evalString(a *hcl.Attribute, ctx *hcl.EvalContext) (string, hcl.Diagnostics) {
	v, diags := evalAs(a, sdk.TypeString, ctx)
	s, _ := v.(string)
	return s, diags
}

func evalBool(a *hcl.Attribute, ctx *hcl.EvalContext) (bool, hcl.Diagnostics) {
	v, diags := evalAs(a, sdk.TypeBool, ctx)
	b, _ := v.(bool)
	return b, diags
}

func evalDuration(a *hcl.Attribute, ctx *hcl.EvalContext) (time.Duration, hcl.Diagnostics) {
	v, diags := evalAs(a, sdk.TypeDuration, ctx)
	if diags.HasErrors() {
		return 0, diags
	}
	d, _ := sdk.ParseDuration(v.(string))
	return d, nil
}

// evalPositiveDuration is for intervals and deadlines, where zero makes no
// sense.
func evalPositiveDuration(a *hcl.Attribute, ctx *hcl.EvalContext) (time.Duration, hcl.Diagnostics) {
	d, diags := evalDuration(a, ctx)
	if !diags.HasErrors() && d <= 0 {
		diags = append(diags, attrError(a, "Invalid duration", fmt.Sprintf("%s must be greater than zero.", a.Name)))
	}
	return d, diags
}

// attrError reports a problem with an attribute's value, at the value.
func attrError(a *hcl.Attribute, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   detail,
		Subject:  a.Expr.Range().Ptr(),
	}
}

func duplicateBlock(typ string, b, first *hcl.Block) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Duplicate %s block", typ),
		Detail:   fmt.Sprintf("Only one %s block is allowed here; the first is at %s.", typ, posString(first.DefRange)),
		Subject:  b.DefRange.Ptr(),
	}
}

func posString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}
