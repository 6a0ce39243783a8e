package s3sync

import (
	"errors"
	"fmt"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// ErrorCode is the S3 error code in err ("SignatureDoesNotMatch", "NoSuchBucket", …), or ""
// when err is not an answer from the server (a network error, a local file error).
func ErrorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// HTTPStatus is the HTTP status of the S3 answer in err, or 0.
func HTTPStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// s3Error is a failed S3 call, said in one line a person can act on: the operation, the
// bucket, the error code and the server's message. It never holds a credential: the SDK's
// errors carry none, and the request (which holds the signature) is not kept.
type s3Error struct {
	Op, Bucket, Code, Message string
	Status                    int
	err                       error
}

func (e *s3Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("s3 %s on bucket %q: %v", e.Op, e.Bucket, e.err)
	}
	s := fmt.Sprintf("s3 %s on bucket %q: %s", e.Op, e.Bucket, e.Code)
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if hint := hints[e.Code]; hint != "" {
		s += " — " + hint
	}
	return s
}

func (e *s3Error) Unwrap() error { return e.err }

// hints say what the usual codes mean for the person reading the log or the condition.
var hints = map[string]string{
	"SignatureDoesNotMatch": "the secret access key is wrong",
	"InvalidAccessKeyId":    "the access key id is unknown to the server",
	"AccessDenied":          "the credentials may not read this bucket or prefix",
	"NoSuchBucket":          "the bucket does not exist",
	"PermanentRedirect":     "the bucket is in another region, or needs another endpoint",
}

// wrap turns an SDK error into an s3Error (nil stays nil).
func wrap(op, bucket string, err error) error {
	if err == nil {
		return nil
	}
	e := &s3Error{Op: op, Bucket: bucket, err: err, Code: ErrorCode(err), Status: HTTPStatus(err)}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Message = api.ErrorMessage()
	}
	return e
}

// permanent reports whether retrying soon cannot help (wrong credentials, missing bucket):
// the loop then logs it once and waits a full interval.
func permanent(err error) bool {
	switch ErrorCode(err) {
	case "SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "NoSuchBucket", "PermanentRedirect", "InvalidBucketName":
		return true
	}
	return false
}
