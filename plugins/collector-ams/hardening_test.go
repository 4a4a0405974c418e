package collectorams

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

const optsPath = "/optimize/optimizerGroups/ebb/optimizers"

func optimizer(token, unit string, threads int, touch int64) string {
	return fmt.Sprintf(`{"token":%q,"startTime":1788264000000,"touchTime":%d,"jobId":%q,"groupName":"ebb","coreNumber":%d,"memory":1024,"jobStatus":"RUNNING","container":"external"}`, token, touch, unit, threads)
}

func pageBody(total int, items ...string) string {
	return fmt.Sprintf(`{"message":"success","code":200,"result":{"list":[%s],"total":%d}}`, strings.Join(items, ","), total)
}

// An optimizer listed twice, within a page or across pages, or one unit
// under two tokens, must never double the group's threads in a complete
// snapshot (issue 11: two of three units drained).
func TestDuplicateOptimizers(t *testing.T) {
	const live = 1788264090000
	a, b, c := optimizer("tok-a", "unit-1", 4, live), optimizer("tok-b", "unit-2", 4, live), optimizer("tok-c", "unit-3", 4, live)
	cases := []struct {
		name    string
		serve   func(w http.ResponseWriter, r *http.Request)
		config  map[string]any
		reason  string
		threads int64
	}{
		{"token twice in a page", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, pageBody(3, a, b, a)) },
			nil, "listed twice", 8},
		{"token twice across pages", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("page") == "1" {
				fmt.Fprint(w, pageBody(3, a, b))
			} else {
				fmt.Fprint(w, pageBody(3, b))
			}
		}, map[string]any{"page-size": 2}, "listed twice", 8},
		{"unit under two tokens", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, pageBody(3, a, c, optimizer("tok-a2", "unit-1", 4, live-50000)))
		}, nil, "unit unit-1 is listed as 2 optimizers", 8},
		{"absurd thread count", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, pageBody(1, optimizer("tok-x", "unit-9", 1<<40, live)))
		}, nil, "reports 1099511627776 threads", 1 << 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newReplay(t, "0.9")
			r.routes[optsPath] = tc.serve
			s := collectOnce(t, r.collector(t, tc.config), "ebb")
			if s.Complete || !hasReason(s, tc.reason) {
				t.Fatalf("want incomplete with %q: complete=%v %q", tc.reason, s.Complete, s.IncompleteReasons)
			}
			var threads int64
			units := map[string]bool{}
			for _, w := range s.Workers {
				threads += w.Threads
				if units[w.UnitID] {
					t.Fatalf("unit %s reported twice: %+v", w.UnitID, s.Workers)
				}
				units[w.UnitID] = true
			}
			if threads != tc.threads {
				t.Fatalf("threads %d, want %d: %+v", threads, tc.threads, s.Workers)
			}
		})
	}
}

// The folded registration's busy threads still count for the unit.
func TestDuplicateUnitKeepsBusy(t *testing.T) {
	r := newReplay(t, "0.9")
	// unit-2's task is held by its token 9b2d…; a newer registration of
	// unit-2 (a restarted pod) is listed too.
	r.routes[optsPath] = func(w http.ResponseWriter, _ *http.Request) {
		body := string(r.body("optimizers.json"))
		body = strings.Replace(body, `],"total":3}`, `,`+optimizer("tok-new", "unit-2", 2, 1788264095000)+`],"total":4}`, 1)
		fmt.Fprint(w, body)
	}
	s := collectOnce(t, r.collector(t, nil), "ebb")
	w, ok := workerByUnit(s, "unit-2")
	if !ok || w.BusyThreads != 1 || w.ID != WorkerID("tok-new") || s.Complete {
		t.Fatalf("unit-2: %+v (complete %v)", w, s.Complete)
	}
}

// NaN, +Inf and 1e19 are not counts: each is a reason, the other gauges
// still count, and nothing overflows into a negative demand.
func TestNonsenseGauges(t *testing.T) {
	for _, bad := range []string{"NaN", "+Inf", "1e19", "-1.0"} {
		t.Run(bad, func(t *testing.T) {
			r := newReplay(t, "0.9")
			r.routes["/metrics"] = func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprint(w, strings.Replace(string(r.body("metrics.txt")), `executing_tasks{group="ebb",} 1.0`, `executing_tasks{group="ebb",} `+bad, 1))
			}
			s := collectOnce(t, r.collector(t, nil), "ebb")
			if s.Complete || !hasReason(s, `amoro_optimizer_group_executing_tasks{group="ebb"} is`) {
				t.Fatalf("want a reason for %s: %v", bad, s.IncompleteReasons)
			}
			if _, ok := s.Metrics["amoro_optimizer_group_executing_tasks"]; ok || s.Metrics["amoro_optimizer_group_threads"] != 4 {
				t.Fatalf("metrics: %v", s.Metrics)
			}
			if s.Demand.PlannedTasks != 2 || s.Demand.RunningTasks != 1 {
				t.Fatalf("demand %+v", s.Demand)
			}
		})
	}
}

// A huge exposition is read within the bound, and the snapshot says when
// the bound cut it.
func TestMetricsBound(t *testing.T) {
	var b strings.Builder
	for b.Len() < 64<<10 {
		b.WriteString(`amoro_table_optimizing_status_in_idle{catalog="c",database="d",table="t",group="ebb",} 1.0` + "\n")
	}
	b.WriteString(`amoro_optimizer_group_threads{group="ebb",} 4.0` + "\n")
	scrape, err := scanGroupMetrics(strings.NewReader(b.String()), "ebb", 16<<10)
	if err != nil || len(scrape.problems) != 1 || !strings.Contains(scrape.problems[0], "larger than 16384 bytes") {
		t.Fatalf("cut: %v %v", scrape, err)
	}
	scrape, err = scanGroupMetrics(strings.NewReader(b.String()), "ebb", 1<<20)
	if err != nil || len(scrape.problems) != 0 || scrape.values["amoro_optimizer_group_threads"] != 4 {
		t.Fatalf("whole: %v %v", scrape, err)
	}
	// One line beyond the line bound that is not ours is skipped.
	long := "# " + strings.Repeat("x", maxMetricsLine+10) + "\namoro_optimizer_group_threads{group=\"ebb\"} 2\n"
	if scrape, err := scanGroupMetrics(strings.NewReader(long), "ebb", 1<<20); err != nil || scrape.values["amoro_optimizer_group_threads"] != 2 {
		t.Fatalf("long line: %v %v", scrape, err)
	}
}

// BenchmarkMetricsScan: memory stays at a line whatever the body's size.
func BenchmarkMetricsScan(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 8<<20 {
		sb.WriteString(`amoro_table_optimizing_status_in_idle{catalog="c",database="d",table="t",group="ebb",} 1.0` + "\n")
	}
	body := sb.String()
	b.ResetTimer()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for range b.N {
		if _, err := scanGroupMetrics(strings.NewReader(body), "ebb", maxMetricsBody); err != nil {
			b.Fatal(err)
		}
	}
}

// AMS never redirects: a redirect is refused, so neither Basic auth nor a
// signature reaches where it points, over TLS or not.
func TestRedirectsNotFollowed(t *testing.T) {
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer elsewhere.Close()
	for _, auth := range []map[string]any{
		{"auth-type": "basic", "username": "admin", "password": "pa55"},
		{"auth-type": "token", "api-key": "k", "secret": "s3cret"},
	} {
		r := newReplay(t, "0.9")
		r.routes[optsPath] = func(w http.ResponseWriter, req *http.Request) {
			http.Redirect(w, req, elsewhere.URL+"/api/ams/v1"+optsPath+"?"+req.URL.RawQuery, http.StatusFound)
		}
		s := collectOnce(t, r.collector(t, auth), "ebb")
		if s.Complete || !hasReason(s, "HTTP 302 redirect to "+elsewhere.URL+"/api/ams/v1"+optsPath+" not followed") {
			t.Fatalf("reasons: %v", s.IncompleteReasons)
		}
		if strings.Contains(fmt.Sprint(s.IncompleteReasons), "signature=") {
			t.Fatalf("the redirect's query leaked: %v", s.IncompleteReasons)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests followed the redirect", hits.Load())
	}
}

// A listing that cannot finish before the collection's deadline at its
// first page's pace says so, naming pages and page size, instead of timing
// out on a later page. (The margins are tenfold: the first page takes
// 200 ms, the other 49 would need about 10 s of the 2 s left.)
func TestListingThatCannotFitTheDeadline(t *testing.T) {
	r := newReplay(t, "0.9")
	r.routes[optsPath] = func(w http.ResponseWriter, req *http.Request) {
		time.Sleep(200 * time.Millisecond)
		fmt.Fprint(w, pageBody(5000, optimizer("tok-"+req.URL.Query().Get("page"), "u", 1, 1788264090000)))
	}
	c := r.collector(t, map[string]any{"page-size": 100})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := c.Collect(ctx, sdk.Target{Name: "ebb"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Complete || !hasReason(s, "5000 items take 50 pages of 100") || !hasReason(s, "raise page-size") {
		t.Fatalf("reasons: %v", s.IncompleteReasons)
	}
	if n := len(r.requests(optsPath)); n != 1 {
		t.Fatalf("%d pages asked for, want 1", n)
	}
}
