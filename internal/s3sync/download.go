package s3sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// copyBuf is the buffer per copy: large enough that a 4 MiB object is a handful of writes.
const copyBuf = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBuf); return &b }}

// download writes obj to its place under Dir: into a temporary file in Dir/.s3sync/tmp, then
// renamed over the old file, so a reader sees the old file or the new one, never a part. It
// returns what was actually written (the object may have changed since the listing).
func (s *Syncer) download(ctx context.Context, obj Object) (Entry, error) {
	f, err := os.CreateTemp(filepath.Join(s.o.Dir, metaDir, tmpDir), "part-*")
	if err != nil {
		return Entry{}, err
	}
	tmp := f.Name()
	var e Entry
	if obj.Size > s.o.MultipartThreshold {
		e, err = s.getRanged(ctx, f, obj)
	} else {
		e, err = s.getWhole(ctx, f, obj)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	final := filepath.Join(s.o.Dir, filepath.FromSlash(obj.Rel))
	if err == nil {
		// The modification time is the object's: it is how the next sync knows the file on
		// disk is still the one it wrote.
		err = os.Chtimes(tmp, e.LastModified, e.LastModified)
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.MkdirAll(filepath.Dir(final), 0o755)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return Entry{}, fmt.Errorf("%s: %w", obj.Rel, err)
	}
	return e, nil
}

// getWhole fetches an object in one GET.
func (s *Syncer) getWhole(ctx context.Context, w io.Writer, obj Object) (Entry, error) {
	release, err := s.acquire(ctx)
	if err != nil {
		return Entry{}, err
	}
	defer release()
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.o.Bucket), Key: aws.String(s.key(obj.Rel))})
	if err != nil {
		return Entry{}, wrap("GetObject", s.o.Bucket, err)
	}
	defer out.Body.Close()
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	n, err := io.CopyBuffer(w, out.Body, *buf)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Size: n, ETag: aws.ToString(out.ETag), LastModified: aws.ToTime(out.LastModified)}
	if out.ContentLength != nil && *out.ContentLength != n {
		return Entry{}, fmt.Errorf("short body: %d of %d bytes", n, *out.ContentLength)
	}
	s.metrics.bytes.Add(float64(n))
	return e, nil
}

// getRanged fetches a large object in PartSize ranges, in parallel (within the shared request
// limit), each written at its offset. Every part is pinned to the listed ETag (If-Match) so
// parts of two versions can never be stitched together: a change mid-way fails the download,
// and the next sync fetches the new version.
func (s *Syncer) getRanged(ctx context.Context, f *os.File, obj Object) (Entry, error) {
	if err := f.Truncate(obj.Size); err != nil {
		return Entry{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	for off := int64(0); off < obj.Size; off += s.o.PartSize {
		end := min(off+s.o.PartSize, obj.Size) - 1
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.getPart(ctx, f, obj, off, end); err != nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return Entry{}, firstErr
	}
	return Entry{Size: obj.Size, ETag: obj.ETag, LastModified: obj.LastModified}, nil
}

func (s *Syncer) getPart(ctx context.Context, f *os.File, obj Object, off, end int64) error {
	release, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	in := &s3.GetObjectInput{
		Bucket: aws.String(s.o.Bucket), Key: aws.String(s.key(obj.Rel)),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
	}
	if obj.ETag != "" {
		in.IfMatch = aws.String(obj.ETag)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return wrap("GetObject", s.o.Bucket, err)
	}
	defer out.Body.Close()
	if obj.ETag != "" && aws.ToString(out.ETag) != obj.ETag {
		return fmt.Errorf("object changed while downloading (ETag %s, listed %s)", aws.ToString(out.ETag), obj.ETag)
	}
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	want := end - off + 1
	n, err := io.CopyBuffer(io.NewOffsetWriter(f, off), io.LimitReader(out.Body, want), *buf)
	if err != nil {
		return err
	}
	if n != want {
		return errors.New("short ranged read")
	}
	s.metrics.bytes.Add(float64(n))
	return nil
}

// acquire takes one of the Concurrency request slots.
func (s *Syncer) acquire(ctx context.Context) (func(), error) {
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
