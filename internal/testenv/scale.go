package testenv

import (
	"context"
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
)

// CreateComfyUsers creates n ComfyUsers u00000… (usernames user_u00000…) in namespace ns, each
// with a password Secret <name>-pw holding hash, from 8 goroutines: the load of the reconcile
// benchmarks (DESIGN.md).
func CreateComfyUsers(t testing.TB, ctx context.Context, c client.Client, ns string, n int, hash string) {
	t.Helper()
	// Every index is queued before the workers start, so a worker that gives up at an error
	// never leaves the sender blocked.
	work := make(chan int, n)
	for i := range n {
		work <- i
	}
	close(work)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				name := fmt.Sprintf("u%05d", i)
				if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-pw", Namespace: ns},
					StringData: map[string]string{"password": hash}}); err != nil {
					t.Error(err)
					return
				}
				if err := c.Create(ctx, &authv1alpha1.ComfyUser{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
					Spec: authv1alpha1.ComfyUserSpec{Username: "user_" + name, Role: "user",
						PasswordSecretRef: &authv1alpha1.SecretKeyRef{Name: name + "-pw"}}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// ReadyComfyUsers counts the ComfyUsers of ns whose Ready condition is True.
func ReadyComfyUsers(ctx context.Context, c client.Client, ns string) (int, error) {
	var list authv1alpha1.ComfyUserList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	ready := 0
	for _, u := range list.Items {
		if meta.IsStatusConditionTrue(u.Status.Conditions, authv1alpha1.ConditionReady) {
			ready++
		}
	}
	return ready, nil
}
