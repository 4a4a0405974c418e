package runner

import (
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
)

// GuardSettings say who may use the HTTP API.
type GuardSettings struct {
	// Token, when set, must come as "Authorization: Bearer TOKEN" on every
	// request but /v1/health and /v1/ready: a kubelet's probes cannot read
	// a Secret, so they carry no token. Without one (no Authorization
	// header; a wrong token is refused) /v1/ready answers with its status
	// code and status word only, never which chains failed or why.
	Token string
	// AllowedHosts are host names, beyond IP addresses and localhost, that
	// a request's Host header may name. Without a token, any other name is
	// refused: a page on evil.example whose name was rebound to 127.0.0.1
	// would otherwise read the API from the victim's browser.
	AllowedHosts []string
}

// Guard checks every request against settings that a reload can change.
type Guard struct {
	next     http.Handler
	settings atomic.Pointer[GuardSettings]
}

// NewGuard wraps next.
func NewGuard(next http.Handler, s GuardSettings) *Guard {
	g := &Guard{next: next}
	g.Set(s)
	return g
}

// Set replaces the settings; requests in flight finish under the old ones.
func (g *Guard) Set(s GuardSettings) { g.settings.Store(&s) }

func (g *Guard) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	s := g.settings.Load()
	if s.Token == "" && !hostAllowed(req.Host, s.AllowedHosts) {
		writeJSON(w, http.StatusMisdirectedRequest, map[string]string{"error": "host " + quoteHost(req.Host) +
			" is not allowed: use an IP address or localhost, add the name to http { allowed_hosts }, or set a token"})
		return
	}
	if s.Token != "" && req.URL.Path == "/v1/ready" && req.Header.Get("Authorization") == "" {
		req = req.WithContext(context.WithValue(req.Context(), withoutDetail{}, true))
	} else if s.Token != "" && req.URL.Path != "/v1/health" && !tokenOK(req, s.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ebb"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a bearer token is required (Authorization: Bearer ...)"})
		return
	}
	g.next.ServeHTTP(w, req)
}

// withoutDetail marks a request that may learn a status but no detail.
type withoutDetail struct{}

func detailAllowed(req *http.Request) bool { return req.Context().Value(withoutDetail{}) == nil }

func tokenOK(req *http.Request, token string) bool {
	got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// hostAllowed accepts IP literals (a rebound name never arrives as one),
// localhost and the configured names, case-insensitively, with any port.
func hostAllowed(hostport string, allowed []string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	for _, a := range allowed {
		if strings.EqualFold(strings.TrimSuffix(a, "."), host) {
			return true
		}
	}
	return false
}

func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100] + "..."
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' {
			return '?'
		}
		return r
	}, h) + `"`
}

// Loopback reports whether a listen address accepts only local clients.
// An empty or unspecified host (":9464", "0.0.0.0") listens everywhere.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
