package testenv_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/mss-login/mss-login/internal/testenv"
)

// CreateComfyUsers reports failing creates (a missing namespace or CRD) and returns, rather
// than blocking once every worker has given up.
func TestCreateComfyUsersReturnsWhenCreatesFail(t *testing.T) {
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
			return errors.New("denied")
		},
	}).Build()
	rec := &errorCounter{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testenv.CreateComfyUsers(rec, context.Background(), c, "ns", 100, "hash")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("CreateComfyUsers did not return after every create failed")
	}
	if n := rec.count(); n == 0 {
		t.Fatal("the failed creates were not reported")
	}
}

// errorCounter counts the errors reported to it instead of failing the test.
type errorCounter struct {
	testing.TB
	mu sync.Mutex
	n  int
}

func (e *errorCounter) Error(...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
}

func (e *errorCounter) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}
