package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ebbscale/ebb/core/host"
	"github.com/ebbscale/ebb/core/metrics"
	"github.com/ebbscale/ebb/internal/jsontext"
	"github.com/ebbscale/ebb/sdk"
)

// docs/plugins/NAME.md is this command's --markdown output for each builtin;
// scripts/test fails when a committed page is stale.
//go:generate go run . plugins --markdown-dir ../../docs/plugins

func newPluginsCmd() *cobra.Command {
	var c common
	var configPath, markdownDir string
	var markdown bool
	cmd := &cobra.Command{
		Use:   "plugins [NAME]",
		Short: "list the plugins found (builtin and in the plugin directory), or show one plugin's config and policy keys",
		Long: `Without NAME: every plugin found, builtin and in the plugin directory
(--plugin-dir, or the plugin_dir of --config), with kind and version.
With NAME: the keys of the plugin's config { } block and, for evaluators, of
a chain's policy { } block, with types, defaults and descriptions.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			logger := c.logger(nil, cmd.ErrOrStderr(), true)
			dir := c.pluginDir
			if configPath != "" {
				cfg, loaded, err := c.load(configPath, logger, metrics.New())
				if err != nil {
					return err
				}
				loaded.Close()
				dir = cfg.PluginDir
			} else if err := c.checkPluginDir(); err != nil {
				return err
			}
			h, err := newHost(logger, nil, dir)
			if err != nil {
				return err
			}
			defer h.Close()
			out := cmd.OutOrStdout()
			switch {
			case markdownDir != "":
				return writeMarkdownDir(h, markdownDir)
			case len(args) == 1:
				info, err := h.Info(sdk.KindUnknown, args[0], "")
				if err != nil {
					return err
				}
				if markdown {
					return writeMarkdown(out, info)
				}
				return writeSchemas(out, info)
			}
			return listPlugins(out, h)
		},
	}
	cmd.Flags().StringVar(&c.pluginDir, "plugin-dir", "", "directory of external plugin binaries")
	cmd.Flags().StringVar(&configPath, "config", "", "read plugin_dir (and -var) from this configuration")
	cmd.Flags().StringArrayVar(&c.vars, "var", nil, "set a variable of --config: -var name=value (repeatable)")
	cmd.Flags().BoolVar(&markdown, "markdown", false, "with NAME: print the reference page as Markdown")
	cmd.Flags().StringVar(&markdownDir, "markdown-dir", "", "write DIR/NAME.md for every builtin plugin")
	cmd.Flags().MarkHidden("markdown-dir")
	return cmd
}

func listPlugins(w io.Writer, h *host.Host) error {
	found, err := h.List()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tVERSION\tSOURCE")
	for _, f := range found {
		src := f.Path
		if f.Builtin {
			src = "builtin"
		}
		info, err := h.Info(sdk.KindUnknown, f.Name, "")
		if err != nil {
			fmt.Fprintf(tw, "%s\t?\t?\t%s (error: %v)\n", f.Name, src, err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, info.Kind, info.Version, src)
	}
	fmt.Fprintln(tw, "\n`ebb plugins NAME` shows a plugin's keys.")
	return tw.Flush()
}

// key is one row of a schema table: an attribute, or a block heading.
type key struct {
	name, typ, def, desc string
}

// keys flattens a schema, nested blocks as "block.key".
func keys(s sdk.Schema, prefix string) []key {
	var out []key
	for _, a := range s.Attributes {
		k := key{name: prefix + a.Name, typ: a.Type.String(), desc: a.Description}
		switch {
		case a.Required:
			k.def = "required"
		case a.Default != nil:
			v, err := sdk.NormalizeDefault(a.Default, a.Type)
			if err != nil {
				k.def = "(bad default)"
				break
			}
			b, _ := jsontext.Marshal(v)
			k.def = string(b)
		default:
			k.def = "unset"
		}
		if a.Sensitive {
			k.desc = strings.TrimSpace(k.desc + " (sensitive: never logged)")
		}
		out = append(out, k)
	}
	for _, b := range s.Blocks {
		out = append(out, key{name: prefix + b.Name + " { }", typ: "block", desc: b.Description})
		out = append(out, keys(b.Schema, prefix+b.Name+".")...)
	}
	return out
}

func writeSchemas(w io.Writer, info sdk.Info) error {
	fmt.Fprintf(w, "%s: %s, version %s, plugin protocol %d\n", info.Name, info.Kind, info.Version, info.ProtocolVersion)
	section := func(title string, s sdk.Schema) {
		fmt.Fprintf(w, "\n%s\n", title)
		if s.Empty() {
			fmt.Fprintln(w, "  (no keys)")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  KEY\tTYPE\tDEFAULT\tDESCRIPTION")
		for _, k := range keys(s, "") {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", k.name, k.typ, k.def, k.desc)
		}
		tw.Flush()
	}
	section(fmt.Sprintf("config { } keys, in %s \"NAME\" { plugin = %q ... }:", info.Kind, info.Name), info.ConfigSchema)
	if info.Kind == sdk.KindEvaluator {
		section("policy { } keys, in a chain that uses it:", info.PolicySchema)
	}
	return nil
}

// writeMarkdown writes a plugin's reference page. It leaves out the
// version, so that the committed pages change only when a schema does.
func writeMarkdown(w io.Writer, info sdk.Info) error {
	fmt.Fprintf(w, "# %s\n\n", info.Name)
	fmt.Fprintf(w, "A %s plugin. Generated by `ebb plugins --markdown %s` from the schemas the plugin publishes; do not edit.\n", info.Kind, info.Name)
	table := func(title string, s sdk.Schema) {
		fmt.Fprintf(w, "\n## %s\n\n", title)
		if s.Empty() {
			fmt.Fprintln(w, "No keys.")
			return
		}
		fmt.Fprintln(w, "| Key | Type | Default | Description |")
		fmt.Fprintln(w, "|---|---|---|---|")
		for _, k := range keys(s, "") {
			def := k.def
			if def != "required" && def != "unset" && def != "" {
				def = "`" + def + "`"
			}
			fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", k.name, k.typ, def, strings.ReplaceAll(k.desc, "|", `\|`))
		}
	}
	table(fmt.Sprintf("`config { }` of a `%s` block", info.Kind), info.ConfigSchema)
	if info.Kind == sdk.KindEvaluator {
		table("`policy { }` of a chain", info.PolicySchema)
	}
	return nil
}

func writeMarkdownDir(h *host.Host, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range builtinNames() {
		info, err := h.Info(sdk.KindUnknown, name, "")
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := writeMarkdown(&b, info); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".md"), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// checkPluginDir makes a --plugin-dir that does not exist an error.
func (c *common) checkPluginDir() error {
	if c.pluginDir == "" {
		return nil
	}
	if err := host.CheckPluginDir(c.pluginDir); err != nil {
		return fmt.Errorf("--plugin-dir: %w", err)
	}
	return nil
}
