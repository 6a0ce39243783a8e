// Package msslogin holds what the whole module shares from the repository root: the embedded
// configuration defaults, which must live next to go.mod so that people find and edit them.
package msslogin

import _ "embed"

// DefaultConfigJSON is config.defaults.json, the base layer of every configuration.
//
//go:embed config.defaults.json
var DefaultConfigJSON []byte
