package s3sync

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The engine's own files live in Dir/.s3sync: the state, temporary downloads, the ready
// marker. A dot folder, so ComfyUI's model scans never list them.
const (
	metaDir     = ".s3sync"
	stateFile   = "state.json"
	tmpDir      = "tmp"
	readyMarker = "ready"
)

// stateVersion changes when the file's meaning does; another version is read as empty (every
// file is then downloaded once more, which is slow but right).
const stateVersion = 1

type stateDoc struct {
	Version int              `json:"version"`
	Objects map[string]Entry `json:"objects"`
}

// loadState reads the state file. A missing file is an empty state; an unreadable one is
// reported and treated as empty.
func loadState(dir string) (map[string]Entry, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaDir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Entry{}, nil
	}
	if err != nil {
		return map[string]Entry{}, err
	}
	var d stateDoc
	if err := json.Unmarshal(b, &d); err != nil || d.Version != stateVersion || d.Objects == nil {
		return map[string]Entry{}, fmt.Errorf("state file %s is not usable, starting over: %v", stateFile, err)
	}
	return d.Objects, nil
}

// saveState writes the state atomically (temp file + rename), so a crash leaves the old one.
func saveState(dir string, objects map[string]Entry) error {
	b, err := json.Marshal(stateDoc{Version: stateVersion, Objects: objects})
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, metaDir, stateFile), b, 0o600)
}

// writeFileAtomic writes data to name through a temporary file in the same directory.
func writeFileAtomic(name string, data []byte, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), mode)
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
