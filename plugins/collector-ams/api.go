package collectorams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ebbscale/ebb/internal/amoro"
)

// apiPrefix: all dashboard REST endpoints live under /api/ams/v1
// (DashboardServer.java, amoro.md §4.2).
const apiPrefix = "/api/ams/v1"

// maxBody bounds what is read from one REST response.
const maxBody = 32 << 20

// maxPages bounds one listing, so a server that keeps claiming more cannot
// keep the collector paging for ever.
const maxPages = 1000

type amsAPI struct {
	cfg    *Config
	loc    *time.Location
	client *http.Client
	now    func() time.Time
}

// errBudget stops the task walk when max-task-calls is spent.
var errBudget = errors.New("max-task-calls reached")

// newHTTPClient never follows a redirect: AMS does not redirect (its
// Javalin server answers every route itself), and following one would send
// the Basic-auth header or a replayable signature to wherever it points,
// possibly over plain HTTP. The 3xx is reported instead.
func newHTTPClient(tr http.RoundTripper, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get calls GET apiPrefix+path and returns the envelope's result and the
// server's Date. Errors name no query string: with token auth it carries the
// api key and a replayable signature.
func (a *amsAPI) get(ctx context.Context, path string, params url.Values) (json.RawMessage, time.Time, error) {
	q := url.Values{}
	for k, v := range params {
		q[k] = append([]string(nil), v...)
	}
	if a.cfg.AuthType == AuthToken {
		sig, err := amoro.Signature(a.cfg.APIKey, a.cfg.Secret, q, a.now(), a.loc)
		if err != nil {
			return nil, time.Time{}, err
		}
		q.Set("apiKey", a.cfg.APIKey)
		q.Set("signature", sig)
	}
	u := strings.TrimRight(a.cfg.URL, "/") + apiPrefix + path
	if len(q) > 0 {
		// Encode repeats a key with several values (actions[]=a&actions[]=b),
		// which is how Javalin's queryParams reads a list.
		u += "?" + q.Encode()
	}
	resp, err := a.do(ctx, u, true)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("reading response: %w", err)
	}
	if len(body) > maxBody {
		return nil, time.Time{}, fmt.Errorf("response larger than %d bytes", maxBody)
	}
	res, err := decodeEnvelope(body)
	if err != nil {
		return nil, time.Time{}, err
	}
	var date time.Time
	if d := resp.Header.Get("Date"); d != "" {
		date, _ = http.ParseTime(d)
	}
	return res, date, nil
}

// do sends one GET and returns a 2xx response whose body the caller closes.
func (a *amsAPI) do(ctx context.Context, u string, withAuth bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/json, text/plain;version=0.0.4")
	if withAuth && a.cfg.AuthType == AuthBasic {
		req.SetBasicAuth(a.cfg.Username, a.cfg.Password)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return nil, fmt.Errorf("timed out: %w", err)
		}
		return nil, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		resp.Body.Close()
		return nil, fmt.Errorf("HTTP %d redirect to %s not followed: AMS does not redirect, so credentials are never sent on; point the URL at AMS itself",
			resp.StatusCode, redactURL(resp.Header.Get("Location")))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		resp.Body.Close()
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp, nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// fetchAll reads every page of a PageResult listing (`page` from 1,
// `pageSize`, amoro.md §4.2). A page that comes back empty before `total`
// is reached is a missing page, an error, never a short list. budget, if not
// nil, is decremented per call. Duplicates across pages are the caller's to
// judge.
func fetchAll[T any](ctx context.Context, a *amsAPI, path string, params url.Values, budget *int) ([]T, time.Time, error) {
	var all []T
	var first time.Time
	pages := 1
	for pg := 1; ; pg++ {
		if pg > maxPages {
			return nil, first, fmt.Errorf("more than %d pages", maxPages)
		}
		if budget != nil {
			if *budget <= 0 {
				return nil, first, errBudget
			}
			*budget--
		}
		q := url.Values{}
		for k, v := range params {
			q[k] = v
		}
		q.Set("page", strconv.Itoa(pg))
		q.Set("pageSize", strconv.Itoa(a.cfg.PageSize))
		began := time.Now()
		res, date, err := a.get(ctx, path, q)
		if err != nil {
			if pg > 1 {
				// Say how far it got: a listing that cannot fit the
				// chain's timeout needs a larger page-size.
				return nil, first, fmt.Errorf("page %d of %d (page-size %d): %w", pg, pages, a.cfg.PageSize, err)
			}
			return nil, first, err
		}
		if pg == 1 {
			first = date
		}
		p, err := decodePage[T](res)
		if err != nil {
			return nil, first, err
		}
		pages = (p.Total + a.cfg.PageSize - 1) / a.cfg.PageSize
		if pg == 1 {
			if err := fitsDeadline(ctx, time.Since(began), p.Total, pages, a.cfg.PageSize); err != nil {
				return nil, first, err
			}
		}
		all = append(all, p.List...)
		if len(all) >= p.Total {
			return all, first, nil
		}
		if len(p.List) == 0 {
			return nil, first, fmt.Errorf("missing page %d: total is %d but only %d items listed", pg, p.Total, len(all))
		}
	}
}

// fitsDeadline says early, and why, when a listing cannot finish before the
// collection's deadline at the pace of its first page, instead of timing out
// on a later page with no hint (5,000 optimizers in pages of 100 cannot be
// read within a 1 s interval).
func fitsDeadline(ctx context.Context, perPage time.Duration, total, pages, size int) error {
	deadline, ok := ctx.Deadline()
	if !ok || pages <= 1 {
		return nil
	}
	need, left := perPage*time.Duration(pages-1), time.Until(deadline)
	if need <= left {
		return nil
	}
	return fmt.Errorf("%d items take %d pages of %d; at %s a page the rest needs about %s, more than the %s left of the collection's timeout: raise page-size (AMS pages the optimizer list in memory) or the chain's timeout",
		total, pages, size, perPage.Round(time.Millisecond), need.Round(time.Millisecond), left.Round(time.Millisecond))
}

// countTables reads `total` of the group's table list filtered by one
// status display value (amoro.md §4.2 `actions[]`).
func countTables(ctx context.Context, a *amsAPI, escGroup, action string) (int64, error) {
	q := url.Values{"actions[]": {action}, "page": {"1"}, "pageSize": {"1"}}
	res, _, err := a.get(ctx, "/optimize/optimizerGroups/"+escGroup+"/tables", q)
	if err != nil {
		return 0, err
	}
	p, err := decodePage[tableInfo](res)
	if err != nil {
		return 0, err
	}
	return int64(p.Total), nil
}

// metrics scrapes the Prometheus exporter (amoro.md §5.2), streaming, at
// most maxMetricsBody bytes.
func (a *amsAPI) metrics(ctx context.Context, group string) (gaugeScrape, error) {
	// The exporter is simpleclient's HTTPServer, without auth: the AMS
	// credentials are not sent to it.
	resp, err := a.do(ctx, a.cfg.MetricsURL, false)
	if err != nil {
		return gaugeScrape{}, err
	}
	defer resp.Body.Close()
	return scanGroupMetrics(resp.Body, group, maxMetricsBody)
}

// redact removes configured secrets from a message before it leaves the
// collector (AMS error messages are copied into reasons).
func (a *amsAPI) redact(s string) string {
	for _, secret := range []string{a.cfg.Secret, a.cfg.Password} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "(redacted)")
		}
	}
	return s
}

// redactURL drops userinfo and the query string from a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}
