// Package version holds the binary's version, set at build time:
//
//	go build -ldflags "-X github.com/mss-login/mss-login/internal/version.Version=v0.1.0"
package version

// Version is the release this binary was built from; "dev" for an unversioned build.
var Version = "dev"

// Commit is the source revision, when the build knows it.
var Commit = ""
