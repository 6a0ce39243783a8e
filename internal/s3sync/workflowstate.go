package s3sync

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// The workflow sync's baseline lives in <user dir>/.mss-login/workflow-sync-state.json: a dot
// folder, so it is never taken for a user.
const (
	wfStateDir     = ".mss-login"
	wfStateFile    = "workflow-sync-state.json"
	wfStateVersion = 1
)

// wfRemote is the identity of the remote a baseline describes.
type wfRemote struct {
	Endpoint string `json:"endpoint"`
	Bucket   string `json:"bucket"`
	Prefix   string `json:"prefix"`
}

// wfUserState is one user's baseline, by local user id; User is the sanitized username (the
// bucket folder), and a baseline recorded for another username is not used.
type wfUserState struct {
	User  string            `json:"user"`
	Files map[string]wfBase `json:"files"`
}

type wfStateDoc struct {
	Version int                    `json:"version"`
	Remote  wfRemote               `json:"remote"`
	Users   map[string]wfUserState `json:"users"`
}

// loadWFState reads the baseline for remote from root (the user directory); path is the state
// file's full name, for messages. Missing, unreadable (a symbolic link in place of the folder
// or the file is not followed), corrupt, of another version or of another remote, it is empty
// and problem says why ("" when it was read).
func loadWFState(root *os.Root, path string, remote wfRemote) (users map[string]wfUserState, problem string) {
	empty := map[string]wfUserState{}
	b, err := readWFState(root)
	if errors.Is(err, fs.ErrNotExist) {
		return empty, "no sync state yet (" + path + ")"
	}
	if err != nil {
		return empty, fmt.Sprintf("sync state %s is unreadable: %v", path, err)
	}
	var d wfStateDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return empty, fmt.Sprintf("sync state %s is corrupt (%v), starting over", path, err)
	}
	if d.Version != wfStateVersion {
		return empty, fmt.Sprintf("sync state %s has version %d, not %d, starting over", path, d.Version, wfStateVersion)
	}
	if d.Remote != remote {
		return empty, fmt.Sprintf("sync state %s was written for another endpoint, bucket or prefix, starting over", path)
	}
	if d.Users == nil {
		return empty, ""
	}
	return d.Users, ""
}

func readWFState(root *os.Root) ([]byte, error) {
	dir, err := openDirNoFollow(root, wfStateDir)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	f, err := openRegular(dir, wfStateFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// saveWFState writes the baseline atomically (temp file + rename) in a 0700 folder in root,
// the user directory. Only that folder is created; a symbolic link in its place is an error,
// not followed.
func saveWFState(root *os.Root, remote wfRemote, users map[string]wfUserState) error {
	b, err := json.MarshalIndent(wfStateDoc{Version: wfStateVersion, Remote: remote, Users: users}, "", "  ")
	if err != nil {
		return err
	}
	if err := root.Mkdir(wfStateDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	dir, err := openDirNoFollow(root, wfStateDir)
	if err != nil {
		return err
	}
	defer dir.Close()
	f, tmp, err := createTemp(dir, "."+wfStateFile+".tmp-", "")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = dir.Rename(tmp, wfStateFile) // replaces a symbolic link there, never follows it
	}
	if err != nil {
		dir.Remove(tmp)
	}
	return err
}
