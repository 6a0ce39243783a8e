package s3sync

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func statusErr(code int) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New(http.StatusText(code))}}
}

// A server without conditional writes (501) gets the write again without its precondition,
// then every later write without one, said once in the log; 412 means "changed meanwhile".
func TestConditionalFallback(t *testing.T) {
	var logs []string
	w := &WorkflowSync{o: Options{Logf: func(f string, a ...any) { logs = append(logs, f) }}}
	var calls []bool
	write := func(results ...error) func(bool) error {
		return func(cond bool) error {
			calls = append(calls, cond)
			r := results[0]
			results = results[1:]
			return r
		}
	}
	if ok, err := w.conditional(write(statusErr(http.StatusPreconditionFailed))); ok || err != nil {
		t.Fatalf("412: %v %v", ok, err)
	}
	if ok, err := w.conditional(write(statusErr(http.StatusNotImplemented), nil)); !ok || err != nil || !w.uncond {
		t.Fatalf("501 then plain: %v %v uncond=%v", ok, err, w.uncond)
	}
	if ok, err := w.conditional(write(nil)); !ok || err != nil {
		t.Fatalf("after the fallback: %v %v", ok, err)
	}
	if got := []bool{true, true, false, false}; len(calls) != 4 || calls[0] != got[0] || calls[1] != got[1] || calls[2] != got[2] || calls[3] != got[3] {
		t.Fatalf("writes with precondition: %v, want %v", calls, got)
	}
	if len(logs) != 1 || !strings.Contains(logs[0], "does not implement conditional writes") {
		t.Fatalf("logs %q", logs)
	}
	if ok, err := (&WorkflowSync{}).conditional(write(statusErr(http.StatusForbidden))); ok || HTTPStatus(err) != http.StatusForbidden {
		t.Fatalf("403 is an error: %v %v", ok, err)
	}
}
