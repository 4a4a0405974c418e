// Package amoro holds facts of Apache Amoro's wire formats that both ebb's
// collector and its AMS emulator need, so that the two cannot drift apart.
package amoro

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Signature computes AMS's API-token signature the way
// ApiTokenController.checkApiToken and
// ParamSignatureCalculator.generateParamStringWithValueList do (amoro.md §4.3,
// amoro-ams/.../dashboard/controller/ApiTokenController.java):
// md5_hex(apiKey + S + secret), where S concatenates, over the query
// parameters other than apiKey and signature sorted by key, the key and the
// smallest non-blank value URL-decoded once more; when S is blank it is
// today's date as yyyyMMdd in loc (the AMS JVM's default time zone). The
// request body is not signed.
//
// AMS decodes each signed value with java.net.URLDecoder, which throws on a
// '%' not followed by two hex digits; the check then fails with 403
// "Signature check failed" whatever the signature. Signature returns an error
// for such a value instead of a signature AMS cannot accept.
func Signature(apiKey, secret string, params url.Values, now time.Time, loc *time.Location) (string, error) {
	s, err := signedParams(params)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == "" {
		if loc == nil {
			loc = time.UTC
		}
		s = now.In(loc).Format("20060102")
	}
	sum := md5.Sum([]byte(apiKey + s + secret))
	return hex.EncodeToString(sum[:]), nil
}

func signedParams(params url.Values) (string, error) {
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
			return "", fmt.Errorf("query parameter %q: AMS cannot decode its value a second time (a '%%' must start a %%XX escape), so it rejects the signature: %w", k, err)
		}
		b.WriteString(k)
		b.WriteString(v)
	}
	return b.String(), nil
}
