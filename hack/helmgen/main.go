// Command helmgen writes the chart's generated templates (CRDs, the manager's ClusterRole)
// from config/. Run by `make helm-crds` (and `make manifests`) from the repository root.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mss-login/mss-login/internal/chartgen"
)

func main() {
	files, err := chartgen.Generate(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "helmgen:", err)
		os.Exit(1)
	}
	// Drop stale generated CRDs (a kind that was removed from config/crd).
	old, _ := filepath.Glob(filepath.Join(chartgen.ChartDir, "templates/crds/*.yaml"))
	for _, p := range old {
		if _, keep := files[p]; !keep {
			_ = os.Remove(p)
		}
	}
	for p, b := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "helmgen:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "helmgen:", err)
			os.Exit(1)
		}
	}
}
