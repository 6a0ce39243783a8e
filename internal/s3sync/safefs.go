package s3sync

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
)

// File access under ComfyUI's user directory, for the workflow sync. Code running in ComfyUI
// can write there, and the sidecar may have write access elsewhere (the model volume), so
// everything goes through an os.Root (nothing outside it is reached) and no symbolic link is
// followed (users.json excepted, and then only inside the root): folders and files are opened
// after an Lstat and checked to be the ones it found.

// readUsersFile reads users.json in root (a symbolic link is followed only inside root), as a
// regular file: opened without waiting for a writer should it be a FIFO.
func readUsersFile(root *os.Root) ([]byte, error) {
	f, err := root.OpenFile("users.json", os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: f.Name(), Err: errors.New("not a regular file")}
	}
	return io.ReadAll(f)
}

// readDirIn lists the top of root.
func readDirIn(root *os.Root) ([]os.DirEntry, error) {
	f, err := root.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// errLinked: a symbolic link was met where a folder or a regular file was expected (or the
// name was replaced while being opened); it is not followed.
var errLinked = errors.New("is a symbolic link (not followed)")

// openDirNoFollow opens the folder name (one path element) in r as an os.Root, without
// following a symbolic link: errLinked if it is one. The folder is opened through "name/." so
// that nothing else (a FIFO) can block the open, and is checked to be the one found by Lstat.
func openDirNoFollow(r *os.Root, name string) (*os.Root, error) {
	fi, err := lstatNoFollow(r, name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOTDIR}
	}
	sub, err := r.OpenRoot(name + "/.")
	if err != nil {
		return nil, err
	}
	now, err := sub.Stat(".")
	if err = sameAsFound(name, fi, now, err); err != nil {
		sub.Close()
		return nil, err
	}
	return sub, nil
}

// openRegular opens the regular file name (one path element) in r for reading, without
// following a symbolic link (errLinked) and without waiting should it be a FIFO; the file
// opened is checked to be the one found by Lstat.
func openRegular(r *os.Root, name string) (*os.File, error) {
	fi, err := lstatNoFollow(r, name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("not a regular file")}
	}
	f, err := r.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	now, err := f.Stat()
	if err = sameAsFound(name, fi, now, err); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// lstatNoFollow is name's Lstat in r; errLinked if it is a symbolic link.
func lstatNoFollow(r *os.Root, name string) (fs.FileInfo, error) {
	fi, err := r.Lstat(name)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errLinked}
	}
	return fi, nil
}

// sameAsFound checks that what was opened as name (its Stat: now, err) is what Lstat found
// before: errLinked if name was replaced meanwhile.
func sameAsFound(name string, found, now fs.FileInfo, err error) error {
	if err != nil {
		return err
	}
	if !os.SameFile(found, now) {
		return &fs.PathError{Op: "open", Path: name, Err: errLinked} // replaced meanwhile
	}
	return nil
}

// createTemp creates a new file prefix*suffix in r, mode 0600, never through an existing name
// (O_EXCL: not through a symbolic link either). It returns the file and its name in r.
func createTemp(r *os.Root, prefix, suffix string) (*os.File, string, error) {
	for range 100 {
		name := prefix + strconv.FormatUint(rand.Uint64(), 36) + suffix
		f, err := r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", &fs.PathError{Op: "createtemp", Path: prefix + "*" + suffix, Err: fs.ErrExist}
}

// wfDir is one user's folders, each opened without following a symbolic link: home is
// <user id>/, dir its workflows/ (nil while it does not exist); path is workflows/'s full name,
// for messages.
type wfDir struct {
	home, dir *os.Root
	path      string
}

// workflows is the workflows folder, created (in home, which exists) if need be.
func (d *wfDir) workflows() (*os.Root, error) {
	if d.dir == nil {
		dir, err := makeWorkflowsDir(d.home)
		if err != nil {
			return nil, err
		}
		d.dir = dir
	}
	return d.dir, nil
}

func (d *wfDir) close() {
	for _, r := range []*os.Root{d.dir, d.home} {
		if r != nil {
			r.Close()
		}
	}
}

// fileMD5 is the MD5 (hex) of the regular file name in dir, opened as openRegular does.
func fileMD5(dir *os.Root, name string) (string, error) {
	f, err := openRegular(dir, name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Modes of what the workflow sync creates: group-writable, so that with a pod fsGroup ComfyUI,
// running as another uid than the sidecar, can change and replace them.
const (
	wfDirMode  fs.FileMode = 0o775
	wfFileMode fs.FileMode = 0o664
)

// makeWorkflowsDir creates a user's workflows folder (wfDirMode whatever the umask, keeping
// the setgid bit an fsGroup volume gives it) inside home, the user's folder, and opens it.
func makeWorkflowsDir(home *os.Root) (*os.Root, error) {
	err := home.Mkdir("workflows", wfDirMode)
	created := err == nil
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	dir, err := openDirNoFollow(home, "workflows")
	if err != nil || !created {
		return dir, err
	}
	fi, err := dir.Stat(".")
	if err == nil {
		err = dir.Chmod(".", wfDirMode|fi.Mode()&fs.ModeSetgid)
	}
	if err != nil {
		dir.Close()
		return nil, err
	}
	return dir, nil
}

// placeUnlessChanged moves tmp to target, both in dir, if target is still as listed: false
// without an error when it changed in between. Absent when listed, target is made a hard link
// to tmp, which cannot replace a file saved meanwhile (the caller removes tmp); on a file system
// without hard links it is checked and then renamed. Neither follows a symbolic link at target.
func placeUnlessChanged(dir *os.Root, tmp, target string, listed WFSide) (bool, error) {
	if !listed.Exists {
		err := dir.Link(tmp, target)
		if err == nil {
			return true, nil
		}
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		if _, err := dir.Lstat(target); err == nil {
			return false, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		return true, dir.Rename(tmp, target)
	}
	fi, err := dir.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // deleted meanwhile: the next sync decides again
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != listed.Size || !fi.ModTime().Equal(listed.ModTime) {
		return false, nil
	}
	return true, dir.Rename(tmp, target)
}

// deleteLocal removes name in dir if it is still the file that was listed (same size and
// mtime); false without an error when it changed in between (the next sync decides again).
func deleteLocal(dir *os.Root, name string, listed WFSide) (bool, error) {
	fi, err := dir.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != listed.Size || !fi.ModTime().Equal(listed.ModTime) {
		return false, nil
	}
	if err := dir.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// localWorkflows lists the regular *.json files at the top of dir (the user's workflows
// folder). skip holds workflow names that are something else (a symlink, a folder): neither
// synced nor taken as deleted.
func localWorkflows(dir *os.Root) (files map[string]WFSide, skip map[string]bool, err error) {
	files, skip = map[string]WFSide{}, map[string]bool{}
	es, err := readDirIn(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range es {
		if !isWorkflowName(e.Name()) {
			continue
		}
		fi, err := dir.Lstat(e.Name())
		if err != nil {
			continue // gone since the listing
		}
		if !fi.Mode().IsRegular() {
			skip[e.Name()] = true
			continue
		}
		files[e.Name()] = WFSide{Exists: true, Size: fi.Size(), ModTime: fi.ModTime()}
	}
	return files, skip, nil
}
