package ams

import (
	"net/http"
	"strings"
	"time"
)

// FaultKind is a way the emulator can misbehave on purpose, so that clients
// can be tested against the failures a real AMS (or what sits in front of
// it) produces.
type FaultKind int

const (
	// FaultErrorCode answers HTTP 200 with an AMS error body carrying Code
	// (403 or 500 in AMS, amoro.md §4.1).
	FaultErrorCode FaultKind = iota + 1
	// FaultHTTPStatus answers with HTTP status Code, as a proxy would.
	FaultHTTPStatus
	// FaultMalformedJSON answers HTTP 200 with a body that is not JSON.
	FaultMalformedJSON
	// FaultHang holds the request until the client gives up (or MaxHang).
	FaultHang
	// FaultEmptyPages answers pages after the first with an empty list
	// while `total` still counts everything.
	FaultEmptyPages
)

// MaxHang bounds FaultHang in wall time so a forgotten client cannot pin a
// handler for ever.
const MaxHang = time.Minute

// Fault applies to requests whose path starts with Path ("" = all, the
// metrics handler included).
type Fault struct {
	Path    string
	Kind    FaultKind
	Code    int
	Message string
	// Times is how many requests it hits; 0 means until ClearFaults.
	Times int
	hits  int
}

// InjectFault adds a fault. Faults are checked in the order added.
func (e *Emulator) InjectFault(f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := f
	e.faults = append(e.faults, &c)
}

// ClearFaults removes every fault.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = nil
}

func (e *Emulator) takeFault(path string) *Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, f := range e.faults {
		if !strings.HasPrefix(path, f.Path) {
			continue
		}
		f.hits++
		if f.Times > 0 && f.hits >= f.Times {
			e.faults = append(e.faults[:i], e.faults[i+1:]...)
		}
		c := *f
		return &c
	}
	return nil
}

func (e *Emulator) withFaults(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := e.takeFault(r.URL.Path)
		if f == nil {
			h.ServeHTTP(w, r)
			return
		}
		msg := f.Message
		if msg == "" {
			msg = "injected fault"
		}
		switch f.Kind {
		case FaultErrorCode:
			writeJSON(w, http.StatusOK, errorResponse{Message: msg, Code: f.Code})
		case FaultHTTPStatus:
			http.Error(w, msg, f.Code)
		case FaultMalformedJSON:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"message":"success","code":200,"result":{"list":[{"token":`))
		case FaultHang:
			select {
			case <-r.Context().Done():
			case <-time.After(MaxHang):
			}
		case FaultEmptyPages:
			if p := r.URL.Query().Get("page"); p != "" && p != "1" {
				q := r.URL.Query()
				q.Set("page", "1")
				q.Set("pageSize", "1")
				rec := &totalOnly{header: http.Header{}}
				r2 := r.Clone(r.Context())
				r2.URL.RawQuery = q.Encode()
				h.ServeHTTP(rec, r2)
				writeJSON(w, http.StatusOK, okResponse{Message: "success", Code: 200, Result: pageResult{List: []any{}, Total: rec.total()}})
				return
			}
			h.ServeHTTP(w, r)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// totalOnly captures a page response to read its `total`.
type totalOnly struct {
	header http.Header
	body   []byte
}

func (t *totalOnly) Header() http.Header         { return t.header }
func (t *totalOnly) WriteHeader(int)             {}
func (t *totalOnly) Write(b []byte) (int, error) { t.body = append(t.body, b...); return len(b), nil }
func (t *totalOnly) total() int {
	var v struct {
		Result struct {
			Total int `json:"total"`
		} `json:"result"`
	}
	_ = jsonUnmarshal(t.body, &v)
	return v.Result.Total
}
