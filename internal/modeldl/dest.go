package modeldl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Dest uploads to Bucket/Key as a multipart upload, completed only after the checksum: until
// then no object exists under Key. Completing refuses to replace an object (If-None-Match: *,
// and a HEAD first for servers that ignore it).
type S3Dest struct {
	Client      *s3.Client
	Bucket, Key string
}

func (d *S3Dest) Begin(ctx context.Context, st *State) error {
	if st.UploadID != "" {
		return nil // resuming: the parts so far are stored under it
	}
	if err := d.absent(ctx); err != nil {
		return err
	}
	out, err := d.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &d.Bucket, Key: &d.Key})
	if err != nil {
		return fmt.Errorf("starting the upload to s3://%s/%s: %w", d.Bucket, d.Key, s3Err(err))
	}
	st.UploadID, st.Parts = aws.ToString(out.UploadId), nil
	return nil
}

func (d *S3Dest) Write(ctx context.Context, part []byte, st *State) error {
	n := int32(len(st.Parts) + 1)
	out, err := d.Client.UploadPart(ctx, &s3.UploadPartInput{Bucket: &d.Bucket, Key: &d.Key, UploadId: &st.UploadID,
		PartNumber: &n, Body: bytesReader(part), ContentLength: aws.Int64(int64(len(part)))})
	if err != nil {
		return fmt.Errorf("uploading part %d: %w", n, s3Err(err))
	}
	st.Parts = append(st.Parts, Part{Number: n, ETag: aws.ToString(out.ETag), Size: int64(len(part))})
	return nil
}

func (d *S3Dest) Commit(ctx context.Context, st *State) error {
	if err := d.absent(ctx); err != nil {
		return err
	}
	parts := make([]types.CompletedPart, len(st.Parts))
	for i, p := range st.Parts {
		parts[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag)}
	}
	_, err := d.Client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &d.Bucket, Key: &d.Key,
		UploadId: &st.UploadID, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}, IfNoneMatch: aws.String("*")})
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "PreconditionFailed" || ae.ErrorCode() == "ConditionalRequestConflict") {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("completing the upload: %w", s3Err(err))
	}
	st.UploadID = ""
	return nil
}

func (d *S3Dest) Abort(ctx context.Context, st *State) error {
	if st.UploadID == "" {
		return nil
	}
	_, err := d.Client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &d.Bucket, Key: &d.Key, UploadId: &st.UploadID})
	var nsu *types.NoSuchUpload
	if err != nil && !errors.As(err, &nsu) {
		return fmt.Errorf("aborting the upload: %w", s3Err(err))
	}
	st.UploadID, st.Parts = "", nil
	return nil
}

// absent is ErrExists when an object holds Key.
func (d *S3Dest) absent(ctx context.Context) error {
	_, err := d.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.Bucket, Key: &d.Key})
	if err == nil {
		return ErrExists
	}
	var nf *types.NotFound
	var ae smithy.APIError
	if errors.As(err, &nf) || (errors.As(err, &ae) && (ae.ErrorCode() == "NotFound" || ae.ErrorCode() == "NoSuchKey")) {
		return nil
	}
	return fmt.Errorf("checking s3://%s/%s: %w", d.Bucket, d.Key, s3Err(err))
}

// s3Err keeps the S3 error code and message, without the request's URL.
func s3Err(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}

// DirDest writes into Dir/Name through a hidden partial file next to it, linked into place only
// after the checksum: a file of that name is never replaced, and no half file is ever visible
// under it.
type DirDest struct {
	Dir, Name string
	Job       string // names the partial file, so two jobs never share one
}

func (d *DirDest) partial() string { return filepath.Join(d.Dir, "."+d.Name+".mss-partial-"+d.Job) }
func (d *DirDest) final() string   { return filepath.Join(d.Dir, d.Name) }

func (d *DirDest) Begin(_ context.Context, st *State) error {
	if err := CheckName(d.Name); err != nil {
		return err
	}
	if _, err := os.Lstat(d.final()); err == nil {
		return ErrExists
	}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(d.partial(), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	// What the last attempt wrote past its last saved part is written again.
	return f.Truncate(st.Done)
}

func (d *DirDest) Write(_ context.Context, part []byte, st *State) error {
	f, err := os.OpenFile(d.partial(), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(part, st.Done); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (d *DirDest) Commit(_ context.Context, _ *State) error {
	f, err := os.Open(d.partial())
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	// A hard link fails when the name exists: the check and the placing are one step.
	if err := os.Link(d.partial(), d.final()); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ErrExists
		}
		return err
	}
	return os.Remove(d.partial())
}

func (d *DirDest) Abort(_ context.Context, _ *State) error {
	if err := os.Remove(d.partial()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// CheckName refuses a file name that is not one plain name of a model file: no directories,
// no dot files, no control characters.
func CheckName(name string) error {
	switch {
	case name == "" || len(name) > 200:
		return errors.New("the file name must be 1 to 200 characters")
	case name != path.Base(name) || strings.ContainsAny(name, `/\:`) || name == "." || name == "..":
		return fmt.Errorf("the file name %q is not a plain name", name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("the file name %q starts with a dot", name)
	case strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return errors.New("the file name holds control characters")
	case strings.ContainsAny(name, "*?[]"):
		// The name becomes the user's model grant, where these are wildcards.
		return fmt.Errorf("the file name %q holds * ? [ or ]", name)
	}
	return nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
