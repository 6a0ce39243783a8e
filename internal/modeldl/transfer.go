// Package modeldl moves one model file from an HTTP source (Hugging Face, CivitAI, anything
// with ranges) into the studio's storage: an S3 bucket through a streamed multipart upload, or
// a directory. It never holds more than one part in memory and never writes the file to local
// disk on its way to S3; it resumes an interrupted transfer with an HTTP range from the last
// part stored (State is what a job row keeps between attempts, on any replica); and it verifies
// the size and the sha256 the source publishes before the file becomes visible — a failed,
// cancelled or wrong transfer leaves no object and no file behind.
package modeldl

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// PartSize is the size of each uploaded part (the last may be shorter): S3's minimum is 5 MiB,
// and one part is what a transfer holds in memory.
const PartSize = 8 << 20

// Source is where the bytes come from.
type Source struct {
	URL    string
	Header http.Header // an API key (Authorization), never logged
	// Size is the file's size when the source publishes it (0: unknown).
	Size int64
	// SHA256 is the hex digest the source publishes ("": none; then none is checked).
	SHA256 string
}

// Part is one stored part of a multipart upload.
type Part struct {
	Number int32  `json:"n"`
	ETag   string `json:"e"`
	Size   int64  `json:"s"`
}

// State is a transfer's progress, kept between attempts so that the next one goes on from
// Done. The zero State starts from the beginning.
type State struct {
	Done      int64  `json:"done"`
	Total     int64  `json:"total"`      // from the source's answer, when it says
	HashState []byte `json:"hash_state"` // the sha256 of the first Done bytes, mid-computation
	UploadID  string `json:"upload_id,omitempty"`
	Parts     []Part `json:"parts,omitempty"`
	// Validator is the source's ETag (or Last-Modified): a resumed range must be of the same file.
	Validator string `json:"validator,omitempty"`
	SHA256    string `json:"sha256,omitempty"` // the digest of the whole file, once done
}

// Dest is where the bytes go. Begin starts (or, with st.Done > 0, goes on with) the upload;
// Write stores the next part; Commit makes the file visible under its name, refusing to replace
// one; Abort removes every trace of it.
type Dest interface {
	Begin(ctx context.Context, st *State) error
	Write(ctx context.Context, part []byte, st *State) error
	Commit(ctx context.Context, st *State) error
	Abort(ctx context.Context, st *State) error
}

// Errors a caller tells apart.
var (
	ErrChecksum = errors.New("the file does not match the checksum its source publishes")
	ErrSize     = errors.New("the file is not of the size its source publishes")
	ErrExists   = errors.New("a file of this name exists already")
	// ErrCancelled, returned by the saved callback, stops the transfer and removes every
	// trace of it (a user's cancel). Any other error from it stops the transfer resumably.
	ErrCancelled = errors.New("the download was cancelled")
)

// Run transfers src into dst from st (its Done bytes are stored already), calling saved after
// each part is stored with the state to keep. On ErrChecksum, ErrSize, ErrExists or
// ErrCancelled (from saved) the destination is aborted; on any other error — a cancelled ctx
// (the process stops) included — st stays resumable.
func Run(ctx context.Context, client *http.Client, src Source, dst Dest, st *State, saved func(State) error) error {
	h := sha256.New()
	if st.Done > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.HashState); err != nil {
			*st = State{} // an unreadable hash state: start again
			h.Reset()
		}
	}
	body, restarted, err := open(ctx, client, src, st)
	if err != nil {
		return err
	}
	defer body.Close()
	if restarted {
		// The source answered the whole file (no ranges, or it changed): start over.
		_ = dst.Abort(ctx, st)
		*st = State{Total: st.Total, Validator: st.Validator}
		h.Reset()
	}
	if err := dst.Begin(ctx, st); err != nil {
		return err
	}
	buf := make([]byte, PartSize)
	for {
		n, rerr := fill(body, buf)
		if rerr != nil && rerr != io.EOF {
			// A broken connection: the unfinished part is dropped (only the last part may be
			// short), the next attempt asks for it again.
			return fmt.Errorf("reading from the source: %w", rerr)
		}
		if n > 0 {
			if err := dst.Write(ctx, buf[:n], st); err != nil {
				return err
			}
			h.Write(buf[:n])
			st.Done += int64(n)
			st.HashState, _ = h.(encoding.BinaryMarshaler).MarshalBinary()
			if saved != nil {
				if err := saved(*st); errors.Is(err, ErrCancelled) {
					_ = dst.Abort(context.WithoutCancel(ctx), st)
					return err
				} else if err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	// The server's own length is exact; a published size (CivitAI's is in KB) is the fallback.
	want := st.Total
	if want == 0 {
		want = src.Size
	}
	if want > 0 && st.Done != want {
		if st.Done < want && ctx.Err() == nil {
			return fmt.Errorf("the source ended at %d of %d bytes", st.Done, want) // resumable
		}
		_ = dst.Abort(ctx, st)
		return ErrSize
	}
	st.SHA256 = hex.EncodeToString(h.Sum(nil))
	if src.SHA256 != "" && !strings.EqualFold(src.SHA256, st.SHA256) {
		_ = dst.Abort(ctx, st)
		return ErrChecksum
	}
	if err := dst.Commit(ctx, st); err != nil {
		if errors.Is(err, ErrExists) {
			_ = dst.Abort(ctx, st)
		}
		return err
	}
	return nil
}

// fill reads until buf is full (nil), the body ends cleanly (io.EOF, with what came before it)
// or breaks (any other error, a truncated body's io.ErrUnexpectedEOF included).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// open asks the source for the bytes from st.Done; restarted says the answer is the whole file.
func open(ctx context.Context, client *http.Client, src Source, st *State) (io.ReadCloser, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return nil, false, err
	}
	for k, v := range src.Header {
		req.Header[k] = v
	}
	if st.Done > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(st.Done, 10)+"-")
		if st.Validator != "" {
			req.Header.Set("If-Range", st.Validator) // a changed file answers 200: start over
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("the source: %w", stripURL(err))
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && st.Done > 0:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(st.Done, 10)+"-") {
			resp.Body.Close()
			return nil, false, fmt.Errorf("the source answered another range (%s)", resp.Header.Get("Content-Range"))
		}
		if _, total, ok := strings.Cut(resp.Header.Get("Content-Range"), "/"); ok && total != "*" {
			st.Total, _ = strconv.ParseInt(total, 10, 64)
		}
		return resp.Body, false, nil
	case resp.StatusCode == http.StatusOK:
		st.Total = max(resp.ContentLength, 0)
		st.Validator = resp.Header.Get("ETag")
		if st.Validator == "" {
			st.Validator = resp.Header.Get("Last-Modified")
		}
		return resp.Body, st.Done > 0, nil
	default:
		resp.Body.Close()
		return nil, false, &StatusError{Code: resp.StatusCode}
	}
}

// StatusError is a source's refusal.
type StatusError struct{ Code int }

func (e *StatusError) Error() string {
	switch e.Code {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Sprintf("the source refused the download (%d): an API key may be needed", e.Code)
	case http.StatusNotFound:
		return "the source has no such file (404)"
	}
	return fmt.Sprintf("the source answered %d", e.Code)
}

// stripURL keeps a URL (which may carry a token in its query) out of an error.
func stripURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil && strings.Contains(err.Error(), "://") {
			return inner
		}
	}
	return err
}
