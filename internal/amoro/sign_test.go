package amoro

import (
	"net/url"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// The example from Amoro's TestParamSignatureCalculator.
func TestSignatureParams(t *testing.T) {
	q := url.Values{"name": {""}, "value": {"111"}, "age": {"11"}, "sex": {"1"}, "high": {"180"}, "nick": {""}}
	if got := signedParams(q); got != "age11high180sex1value111" {
		t.Fatalf("got %q", got)
	}
	// No parameters: the date is signed.
	d := Signature("k", "s", url.Values{"apiKey": {"k"}}, t0, time.UTC)
	if d != Signature("k", "s", nil, t0.Add(time.Hour), time.UTC) || d == Signature("k", "s", nil, t0.Add(24*time.Hour), time.UTC) {
		t.Fatal("date signature does not follow the day")
	}
}
