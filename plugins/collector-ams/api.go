package collectorams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ebbscale/ebb/internal/amoro"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// apiPrefix: all dashboard REST endpoints live under /api/ams/v1
// (DashboardServer.java, amoro.md §4.2).
const apiPrefix = "/api/ams/v1"

// maxBody bounds what is read from one response.
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

// get calls GET apiPrefix+path and returns the envelope's result and the
// server's Date. Errors name no query string: with token auth it carries the
// api key and a replayable signature.
func (a *amsAPI) get(ctx context.Context, path string, params url.Values) (json.RawMessage, time.Time, error) {
	q := url.Values{}
	for k, v := range params {
		q[k] = append([]string(nil), v...)
	}
	if a.cfg.AuthType == AuthToken {
		q.Set("apiKey", a.cfg.APIKey)
		q.Set("signature", amoro.Signature(a.cfg.APIKey, a.cfg.Secret, q, a.now(), a.loc))
	}
	u := strings.TrimRight(a.cfg.URL, "/") + apiPrefix + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	body, hdr, err := a.do(ctx, u)
	if err != nil {
		return nil, time.Time{}, err
	}
	res, err := decodeEnvelope(body)
	if err != nil {
		return nil, time.Time{}, err
	}
	var date time.Time
	if d := hdr.Get("Date"); d != "" {
		date, _ = http.ParseTime(d)
	}
	return res, date, nil
}

func (a *amsAPI) do(ctx context.Context, u string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if a.cfg.AuthType == AuthBasic {
		req.SetBasicAuth(a.cfg.Username, a.cfg.Password)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return nil, nil, fmt.Errorf("timed out: %w", err)
		}
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading response: %w", err)
	}
	if len(body) > maxBody {
		return nil, nil, fmt.Errorf("response larger than %d bytes", maxBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return body, resp.Header, nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// fetchAll reads every page of a PageResult listing (`page` from 1,
// `pageSize`, amoro.md §4.2). A page that comes back empty before `total`
// is reached is a missing page, an error, never a short list. budget, if not
// nil, is decremented per call.
func fetchAll[T any](ctx context.Context, a *amsAPI, path string, params url.Values, budget *int) ([]T, time.Time, error) {
	var all []T
	var first time.Time
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
		res, date, err := a.get(ctx, path, q)
		if err != nil {
			return nil, first, err
		}
		if pg == 1 {
			first = date
		}
		p, err := decodePage[T](res)
		if err != nil {
			return nil, first, err
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

// metrics scrapes the Prometheus exporter (amoro.md §5.2).
func (a *amsAPI) metrics(ctx context.Context, group string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.cfg.MetricsURL, nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := a.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return parseGroupMetrics(io.LimitReader(resp.Body, maxBody), group)
}

// taskWalk is what the task lists of running processes told.
type taskWalk struct {
	complete                  bool // every running process of the group was read
	calls                     int
	err                       error
	planned, scheduled, acked int64
	busy                      map[string]int64     // token -> SCHEDULED+ACKED
	lastEnd                   map[string]time.Time // token -> latest task end
}

// processingActions are the table statuses that hold a running process:
// OptimizingStatus.isProcessing (amoro.md §2.3).
var processingActions = []string{"full", "major", "minor", "committing"}

// walkTasks lists the group's processing tables, their RUNNING processes and
// those processes' tasks, within maxCalls calls. A thread is busy from
// SCHEDULED until it completes, as AMS's DRA counts it (amoro.md §6.3).
func walkTasks(ctx context.Context, a *amsAPI, group string, maxCalls int) taskWalk {
	w := taskWalk{busy: map[string]int64{}, lastEnd: map[string]time.Time{}}
	budget := maxCalls
	g := url.PathEscape(group)
	tables, _, err := fetchAll[tableInfo](ctx, a, "/optimize/optimizerGroups/"+g+"/tables", url.Values{"actions[]": processingActions}, &budget)
	if err != nil {
		w.setErr("GET /optimize/optimizerGroups/"+group+"/tables", err)
		w.calls = maxCalls - budget
		return w
	}
	for _, t := range tables {
		id := t.TableIdentifier
		base := "/tables/catalogs/" + url.PathEscape(id.Catalog) + "/dbs/" + url.PathEscape(id.Database) + "/tables/" + url.PathEscape(id.TableName) + "/optimizing-processes"
		procs, _, err := fetchAll[processInfo](ctx, a, base, url.Values{"status": {"RUNNING"}}, &budget)
		if err != nil {
			w.setErr("GET "+base, err)
			w.calls = maxCalls - budget
			return w
		}
		for _, p := range procs {
			path := base + "/" + strconv.FormatInt(int64(p.ProcessID), 10) + "/tasks"
			tasks, _, err := fetchAll[taskInfo](ctx, a, path, nil, &budget)
			if err != nil {
				w.setErr("GET "+path, err)
				w.calls = maxCalls - budget
				return w
			}
			for _, tk := range tasks {
				w.add(tk)
			}
		}
	}
	w.complete = true
	w.calls = maxCalls - budget
	return w
}

func (w *taskWalk) setErr(what string, err error) {
	if errors.Is(err, errBudget) {
		// Not a failure: the snapshot says busy threads are unknown.
		return
	}
	w.err = fmt.Errorf("%s: %w", what, err)
}

func (w *taskWalk) add(tk taskInfo) {
	switch tk.Status {
	case "PLANNED":
		w.planned++
	case "SCHEDULED":
		w.scheduled++
		w.busy[tk.OptimizerToken]++
	case "ACKED":
		w.acked++
		w.busy[tk.OptimizerToken]++
	}
	if tk.OptimizerToken != "" {
		if end := msTime(int64(tk.EndTime)); end.After(w.lastEnd[tk.OptimizerToken]) {
			w.lastEnd[tk.OptimizerToken] = end
		}
	}
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
