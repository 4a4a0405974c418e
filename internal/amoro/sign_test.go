package amoro

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sig(t *testing.T, q url.Values, now time.Time, loc *time.Location) string {
	t.Helper()
	s, err := Signature("k", "s", q, now, loc)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The example from Amoro's TestParamSignatureCalculator.
func TestSignatureParams(t *testing.T) {
	q := url.Values{"name": {""}, "value": {"111"}, "age": {"11"}, "sex": {"1"}, "high": {"180"}, "nick": {""}}
	if got, err := signedParams(q); err != nil || got != "age11high180sex1value111" {
		t.Fatalf("got %q, %v", got, err)
	}
	// No parameters: the date is signed.
	d := sig(t, url.Values{"apiKey": {"k"}}, t0, time.UTC)
	if d != sig(t, nil, t0.Add(time.Hour), time.UTC) || d == sig(t, nil, t0.Add(24*time.Hour), time.UTC) {
		t.Fatal("date signature does not follow the day")
	}
}

// The date is AMS's, not ours: at 23:30 UTC it is already tomorrow in
// Shanghai, so the two signatures differ.
func TestSignatureTimeZone(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Skip("no tz database:", err)
	}
	late := time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC)
	if sig(t, nil, late, sh) == sig(t, nil, late, time.UTC) {
		t.Fatal("the time zone does not change the signed date")
	}
	if sig(t, nil, late, sh) != sig(t, nil, time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC), time.UTC) {
		t.Fatal("Shanghai's 2 March is not UTC's 2 March")
	}
}

// java.net.URLDecoder throws on a malformed escape, so AMS answers 403
// whatever the signature: refuse to sign such a value.
func TestSignatureMalformedEscape(t *testing.T) {
	for _, v := range []string{"50%", "%zz", "a%4"} {
		_, err := Signature("k", "s", url.Values{"tableSearchInput": {v}}, t0, time.UTC)
		if err == nil || !strings.Contains(err.Error(), "tableSearchInput") {
			t.Errorf("%q: got %v, want an error naming the parameter", v, err)
		}
	}
	// A well-formed escape is decoded once more, as AMS does.
	a := sig(t, url.Values{"x": {"%41"}}, t0, time.UTC)
	if a != sig(t, url.Values{"x": {"A"}}, t0, time.UTC) {
		t.Fatal("%41 is not signed as A")
	}
}
