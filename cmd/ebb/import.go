package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ebbscale/ebb/internal/amoro"
	dra "github.com/ebbscale/ebb/plugins/evaluator-dra"
)

// maxImportBody bounds the resourceGroups response read.
const maxImportBody = 8 << 20

// amsAuth is the collector-ams auth settings (same names), as flags.
type amsAuth struct {
	url, authType, apiKey, secret, username, password, timezone string
	timeout                                                     time.Duration
}

func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "translate another autoscaler's settings into an ebb policy",
	}
	cmd.AddCommand(newImportAmoroCmd())
	return cmd
}

func newImportAmoroCmd() *cobra.Command {
	var a amsAuth
	var group string
	cmd := &cobra.Command{
		Use:   "amoro --url URL --group G",
		Short: "print the chain policy { } block equivalent to an AMS group's dynamic-allocation.* properties",
		Long: `Reads GET /api/ams/v1/optimize/resourceGroups from AMS and prints the policy block
that makes evaluator-dra behave as AMS's own dynamic allocation for that group, with a note
for each key that has no counterpart. Paste it into a chain targeting the group, then set
dynamic-allocation.enabled=false on the group: ebb refuses a group AMS scales itself.
Secrets: --secret and --password, or the environment variables EBB_AMS_SECRET and
EBB_AMS_PASSWORD (which stay out of the process list).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.url == "" || group == "" {
				return errors.New("import amoro: --url and --group are required")
			}
			if a.secret == "" {
				a.secret = os.Getenv("EBB_AMS_SECRET")
			}
			if a.password == "" {
				a.password = os.Getenv("EBB_AMS_PASSWORD")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
			defer cancel()
			groups, err := fetchResourceGroups(ctx, a)
			if err != nil {
				return fmt.Errorf("import amoro: %s: %w", redactSecrets(a.url, a), err)
			}
			var names []string
			for _, g := range groups {
				if g.ResourceGroup == nil {
					continue
				}
				names = append(names, g.ResourceGroup.Name)
				if g.ResourceGroup.Name != group {
					continue
				}
				im, err := dra.FromAmoro(g.ResourceGroup.Properties)
				if err != nil {
					return fmt.Errorf("import amoro: group %q: %w", group, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "# ebb import amoro: group %q (container %q) from %s\n", group, g.ResourceGroup.Container, a.url)
				fmt.Fprint(cmd.OutOrStdout(), im.Block(""))
				return nil
			}
			sort.Strings(names)
			return fmt.Errorf("import amoro: AMS has no resource group %q (it has: %s)", group, strings.Join(names, ", "))
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.url, "url", "", "AMS base URL, e.g. http://ams:19090")
	f.StringVar(&group, "group", "", "the resource (optimizer) group")
	f.StringVar(&a.authType, "auth-type", "none", "none, token (apiKey + signature) or basic, as collector-ams's auth-type")
	f.StringVar(&a.apiKey, "api-key", "", "API key for auth-type token")
	f.StringVar(&a.secret, "secret", "", "API secret for auth-type token (or EBB_AMS_SECRET)")
	f.StringVar(&a.username, "username", "", "user for auth-type basic")
	f.StringVar(&a.password, "password", "", "password for auth-type basic (or EBB_AMS_PASSWORD)")
	f.StringVar(&a.timezone, "signature-timezone", "UTC", "AMS's time zone, for the date signed on requests without parameters")
	f.DurationVar(&a.timeout, "timeout", 10*time.Second, "bound on the whole request")
	return cmd
}

// resourceGroupInfo is OptimizerResourceInfo as AMS serializes it
// (dashboard/model/OptimizerResourceInfo.java, resource/ResourceGroup.java).
type resourceGroupInfo struct {
	ResourceGroup *struct {
		Name       string            `json:"name"`
		Container  string            `json:"container"`
		Properties map[string]string `json:"properties"`
	} `json:"resourceGroup"`
	OccupationCore   int   `json:"occupationCore"`
	OccupationMemory int64 `json:"occupationMemory"`
}

// fetchResourceGroups calls OptimizerGroupController.getResourceGroup,
// signed as collector-ams signs (internal/amoro), following no redirect:
// AMS does not redirect, and a redirect must not carry credentials away.
func fetchResourceGroups(ctx context.Context, a amsAuth) ([]resourceGroupInfo, error) {
	q := url.Values{}
	switch a.authType {
	case "none", "basic":
	case "token":
		loc, err := time.LoadLocation(a.timezone)
		if err != nil {
			return nil, fmt.Errorf("--signature-timezone %q: %w", a.timezone, err)
		}
		q.Set("apiKey", a.apiKey)
		sig, err := amoro.Signature(a.apiKey, a.secret, q, time.Now(), loc)
		if err != nil {
			return nil, fmt.Errorf("signing the request: %w", err)
		}
		q.Set("signature", sig)
	default:
		return nil, fmt.Errorf("--auth-type %q: want none, token or basic", a.authType)
	}
	u := strings.TrimRight(a.url, "/") + "/api/ams/v1/optimize/resourceGroups"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if a.authType == "basic" {
		req.SetBasicAuth(a.username, a.password)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry the signature
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxImportBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if len(body) > maxImportBody {
		return nil, fmt.Errorf("response larger than %d bytes", maxImportBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("HTTP %d (AMS does not redirect; check --url)", resp.StatusCode)
	}
	var env struct {
		Code    *int                `json:"code"`
		Message string              `json:"message"`
		Result  []resourceGroupInfo `json:"result"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("malformed response: %w", err)
	}
	if env.Code == nil {
		return nil, errors.New(`malformed response: no "code" field`)
	}
	if *env.Code != 200 {
		return nil, fmt.Errorf("AMS answered code %d: %s", *env.Code, env.Message)
	}
	return env.Result, nil
}

func redactSecrets(s string, a amsAuth) string {
	for _, secret := range []string{a.secret, a.password} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "(redacted)")
		}
	}
	return s
}
