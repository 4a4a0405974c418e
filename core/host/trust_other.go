//go:build !unix

package host

// trusted has no owner and mode bits to check here; pin plugins with sha256.
func trusted(Found, string) error { return nil }
