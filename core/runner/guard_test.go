package runner

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGuardChecksHostAndToken(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	for _, tc := range []struct {
		name     string
		settings GuardSettings
		path     string
		host     string
		auth     string
		want     int
	}{
		{"loopback IP", GuardSettings{}, "/v1/chains", "127.0.0.1:9464", "", 200},
		{"IPv6 loopback", GuardSettings{}, "/v1/chains", "[::1]:9464", "", 200},
		{"localhost", GuardSettings{}, "/metrics", "localhost:9464", "", 200},
		{"pod IP", GuardSettings{}, "/metrics", "10.1.2.3:9464", "", 200},
		{"rebound name", GuardSettings{}, "/v1/chains", "evil.example:9464", "", http.StatusMisdirectedRequest},
		{"rebound name, no port", GuardSettings{}, "/", "evil.example", "", http.StatusMisdirectedRequest},
		{"localhost lookalike", GuardSettings{}, "/", "localhost.evil.example", "", http.StatusMisdirectedRequest},
		{"allowed name", GuardSettings{AllowedHosts: []string{"ebb.monitoring.svc"}}, "/metrics", "EBB.monitoring.svc:9464", "", 200},
		{"no token sent", GuardSettings{Token: "s3cret"}, "/v1/chains", "127.0.0.1", "", http.StatusUnauthorized},
		{"wrong token", GuardSettings{Token: "s3cret"}, "/metrics", "127.0.0.1", "Bearer s3cre", http.StatusUnauthorized},
		{"not bearer", GuardSettings{Token: "s3cret"}, "/metrics", "127.0.0.1", "Basic s3cret", http.StatusUnauthorized},
		{"right token", GuardSettings{Token: "s3cret"}, "/metrics", "127.0.0.1", "Bearer s3cret", 200},
		// With a token, the token is the defence: any name may be used.
		{"right token, any name", GuardSettings{Token: "s3cret"}, "/v1/chains", "ebb.example", "Bearer s3cret", 200},
		{"health needs no token", GuardSettings{Token: "s3cret"}, "/v1/health", "127.0.0.1", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tc.path, nil)
			req.Host = tc.host
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			NewGuard(ok, tc.settings).ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
		})
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9464": true, "[::1]:9464": true, "localhost:9464": true, "127.0.0.2:1": true,
		"0.0.0.0:9464": false, ":9464": false, "[::]:9464": false, "10.0.0.1:9464": false, "ebb.example:9464": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v", addr, got)
		}
	}
}

// TestGuardReadyWithoutToken: a probe without a token reaches /v1/ready,
// marked so that it gets no detail; a wrong token is still refused.
func TestGuardReadyWithoutToken(t *testing.T) {
	detail := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if detailAllowed(req) {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusAccepted)
		}
	})
	g := NewGuard(detail, GuardSettings{Token: "s3cret"})
	for auth, want := range map[string]int{"": http.StatusAccepted, "Bearer s3cret": 200, "Bearer wrong": http.StatusUnauthorized} {
		req := httptest.NewRequest("GET", "/v1/ready", nil)
		req.Host = "10.1.2.3:9464"
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Authorization %q: %d, want %d", auth, rec.Code, want)
		}
	}
}
