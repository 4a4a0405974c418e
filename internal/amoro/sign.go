// Package amoro holds facts of Apache Amoro's wire formats that both ebb's
// collector and its AMS emulator need, so that the two cannot drift apart.
package amoro

import (
	"crypto/md5"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Signature computes AMS's API-token signature the way
// ApiTokenController.checkApiToken and ParamSignatureCalculator do
// (amoro.md §4.3): md5_hex(apiKey + S + secret), where S concatenates, over the
// query parameters other than apiKey and signature sorted by key, the key and
// the smallest non-blank value URL-decoded once more; when S is blank it is
// today's date as yyyyMMdd in loc. The request body is not signed.
func Signature(apiKey, secret string, params url.Values, now time.Time, loc *time.Location) string {
	s := signedParams(params)
	if strings.TrimSpace(s) == "" {
		if loc == nil {
			loc = time.UTC
		}
		s = now.In(loc).Format("20060102")
	}
	sum := md5.Sum([]byte(apiKey + s + secret))
	return hex.EncodeToString(sum[:])
}

func signedParams(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k == "apiKey" || k == "signature" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		var vals []string
		for _, v := range params[k] {
			if strings.TrimSpace(v) != "" {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			continue
		}
		sort.Strings(vals)
		// URLDecoder.decode on a value the web server already decoded:
		// '+' becomes a space and %XX is decoded again.
		v, err := url.QueryUnescape(vals[0])
		if err != nil {
			v = vals[0]
		}
		b.WriteString(k)
		b.WriteString(v)
	}
	return b.String()
}
