// Command noop is a main package for sdktest's own tests of Build.
package main

func main() {}
