package s3sync

import (
	"fmt"
	"path"
	"strings"
)

// ModelPathsFile is the name of the file written at the top of Dir. ComfyUI loads it with
//
//	python main.py --extra-model-paths-config <mountPath>/extra_model_paths.yaml
const ModelPathsFile = "extra_model_paths.yaml"

// modelPathsYAML is ComfyUI's extra_model_paths.yaml for the synced folders, as the app
// containers see them (base is the mount path there). One section, "mss_login_s3", so it can
// sit next to sections of the user's own file.
func modelPathsYAML(base string, folders []string) string {
	var b strings.Builder
	b.WriteString("# Written by mss-login s3sync; load it with --extra-model-paths-config.\n")
	b.WriteString("mss_login_s3:\n")
	fmt.Fprintf(&b, "  base_path: %s\n", quote(base))
	for _, f := range folders {
		fmt.Fprintf(&b, "  %s: %s\n", f, quote(path.Join("models", f)))
	}
	return b.String()
}

// quote makes a YAML double-quoted scalar. Folder names are restricted to safe characters;
// only the base path can hold something unusual.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}
