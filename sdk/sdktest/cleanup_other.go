//go:build !unix

package sdktest

// removeAtExit is a no-op where there is no /bin/sh to outlive the process;
// the directory stays in the system's temporary directory.
func removeAtExit(string) error { return nil }
