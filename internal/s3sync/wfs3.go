package s3sync

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The workflow sync's S3 requests: the listing, downloads, and the writes, which are
// conditional on the object being as listed so that a change another pod made meanwhile is
// never overwritten or deleted.

// remoteWorkflows lists the workflow objects directly under prefix.
func (w *WorkflowSync) remoteWorkflows(ctx context.Context, prefix string) (map[string]WFSide, error) {
	remote := map[string]WFSide{}
	p := s3.NewListObjectsV2Paginator(w.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(w.o.Bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap("ListObjectsV2", w.o.Bucket, err)
		}
		for _, c := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(c.Key), prefix)
			if !isWorkflowName(name) {
				continue
			}
			remote[name] = WFSide{Exists: true, Size: aws.ToInt64(c.Size), ModTime: aws.ToTime(c.LastModified),
				Sum: etag(c.ETag)}
		}
	}
	return remote, nil
}

// etag is an ETag without its quotes.
func etag(s *string) string { return strings.Trim(aws.ToString(s), `"`) }

// upload puts the file at key and returns the baseline of what was sent: the bytes are read
// once, so the MD5, the size and the ETag describe the same content. The write is conditional
// on the object being as listed (absent: If-None-Match *, else If-Match its ETag), so that a
// change another pod made meanwhile is not overwritten: sent is false then.
func (w *WorkflowSync) upload(ctx context.Context, dir *os.Root, name, key string, listed WFSide) (nb *wfBase, sent bool, err error) {
	f, err := openRegular(dir, name)
	if err != nil {
		return nil, false, err
	}
	b, err := io.ReadAll(io.LimitReader(f, w.w.MaxBytes+1))
	f.Close()
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > w.w.MaxBytes {
		return nil, false, fmt.Errorf("grew past the size limit while being read")
	}
	var out *s3.PutObjectOutput
	put := func(cond bool) error {
		in := &s3.PutObjectInput{Bucket: aws.String(w.o.Bucket), Key: aws.String(key),
			Body: bytes.NewReader(b), ContentType: aws.String("application/json")}
		if cond && listed.Exists {
			in.IfMatch = aws.String(`"` + listed.Sum + `"`)
		} else if cond {
			in.IfNoneMatch = aws.String("*")
		}
		var err error
		out, err = w.client.PutObject(ctx, in)
		return err
	}
	if sent, err = w.conditional(put); !sent || err != nil {
		return nil, false, wrap("PutObject", w.o.Bucket, err)
	}
	sum := md5.Sum(b)
	return &wfBase{LocalSize: int64(len(b)), LocalMD5: hex.EncodeToString(sum[:]), ETag: etag(out.ETag), RemoteSize: int64(len(b))}, true, nil
}

// conditional runs a write with its precondition (write(true)): false without an error when
// the precondition failed (412). A server that does not implement preconditions (501) gets
// the write again without one, and every later write too.
func (w *WorkflowSync) conditional(write func(cond bool) error) (bool, error) {
	if !w.uncond {
		err := write(true)
		switch HTTPStatus(err) {
		case http.StatusPreconditionFailed:
			return false, nil
		case http.StatusNotImplemented:
			w.uncond = true
			w.o.Logf("s3sync: workflows: the S3 server does not implement conditional writes; writing without them " +
				"(two pods syncing one user's workflows at the same moment may overwrite each other's change)")
		default:
			return err == nil, err
		}
	}
	err := write(false)
	return err == nil, err
}

// downloadTo writes the object to name in d's workflows folder (created if need be) through a
// temporary file there, and gives it the object's last-modified time so that newer_wins sees
// both sides as equal afterwards. listed is the local file as it was listed: if it changed since
// (it appeared, went, or has another size or mtime — saved while the object was coming down),
// it is left alone and placed is false, without an error; the next sync decides again. An
// object over the size limit (it can grow after the listing) fails. It returns the baseline of
// what was written: its size and MD5 and the object's ETag.
func (w *WorkflowSync) downloadTo(ctx context.Context, key string, d *wfDir, name string, listed WFSide) (nb *wfBase, placed bool, err error) {
	out, err := w.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(w.o.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, false, wrap("GetObject", w.o.Bucket, err)
	}
	defer out.Body.Close()
	dir, err := d.workflows()
	if err != nil {
		return nil, false, err
	}
	f, tmp, err := createTemp(dir, ".wf-", ".tmp")
	if err != nil {
		return nil, false, err
	}
	defer dir.Remove(tmp)
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(out.Body, w.w.MaxBytes+1))
	if err == nil {
		err = f.Chmod(wfFileMode)
	}
	if err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	if n > w.w.MaxBytes {
		return nil, false, fmt.Errorf("grew past the size limit since it was listed")
	}
	if mt := aws.ToTime(out.LastModified); !mt.IsZero() {
		_ = dir.Chtimes(tmp, mt, mt)
	}
	if w.beforePlace != nil {
		w.beforePlace(filepath.Join(d.path, name))
	}
	if placed, err := placeUnlessChanged(dir, tmp, name, listed); err != nil || !placed {
		return nil, false, err
	}
	return &wfBase{LocalSize: n, LocalMD5: hex.EncodeToString(h.Sum(nil)), ETag: etag(out.ETag), RemoteSize: n}, true, nil
}

// deleteRemote deletes key if it still has the listed ETag (If-Match; where the server does
// not implement that, a HEAD just before); false without an error when it changed in between
// (the next sync decides again).
func (w *WorkflowSync) deleteRemote(ctx context.Context, key string, listed WFSide) (bool, error) {
	del := func(cond bool) error {
		in := &s3.DeleteObjectInput{Bucket: aws.String(w.o.Bucket), Key: aws.String(key)}
		if cond {
			in.IfMatch = aws.String(`"` + listed.Sum + `"`)
		} else {
			head, err := w.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(w.o.Bucket), Key: aws.String(key)})
			if HTTPStatus(err) == http.StatusNotFound {
				return nil
			}
			if err != nil {
				return err
			}
			if etag(head.ETag) != listed.Sum {
				return errChanged
			}
		}
		_, err := w.client.DeleteObject(ctx, in)
		return err
	}
	done, err := w.conditional(del)
	switch {
	case errors.Is(err, errChanged):
		return false, nil
	case HTTPStatus(err) == http.StatusNotFound:
		return true, nil // gone already
	case err != nil:
		return false, wrap("DeleteObject", w.o.Bucket, err)
	}
	return done, nil
}

// errChanged: the object is not the one listed (the unconditional path's own check).
var errChanged = errors.New("changed since it was listed")
