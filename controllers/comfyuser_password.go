package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/store"
)

// passwordResult is the PasswordSynced outcome. It never carries the value, only the hash
// to write (when one must be written) and the Secret version it came from.
type passwordResult struct {
	OK       bool
	Reason   string
	Message  string
	Hash     string // "" = leave the stored password alone
	RV       string // Secret resourceVersion the hash came from
	NewInput bool   // a Secret version not applied before
	Verified bool   // the stored hash already holds the Secret's password: nothing written
}

// password reads the Secret only when its version differs from the one applied, or when the
// stored password moved; a Secret that is missing or unreadable never changes the stored
// password (cloudnative-pg #9677).
func (s userSyncer) password(ctx context.Context, u *authv1alpha1.ComfyUser, row *store.User) (passwordResult, error) {
	ref := u.Spec.PasswordSecretRef
	if ref == nil {
		return passwordResult{OK: true, Reason: "NotManaged", Message: "no passwordSecretRef: the stored password is left alone"}, nil
	}
	key := ref.Key
	if key == "" {
		key = "password"
	}
	where := fmt.Sprintf("Secret %s/%s", u.Namespace, ref.Name)
	keep := "; the stored password is unchanged"
	if row == nil {
		keep = "; the user is created once the Secret can be read"
	}
	nn := types.NamespacedName{Namespace: u.Namespace, Name: ref.Name}

	// The version first, from the metadata-only cache: no Secret value is held in memory.
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := s.client.Get(ctx, nn, meta); err != nil {
		if apierrors.IsNotFound(err) {
			return passwordResult{Reason: "SecretNotFound", Message: where + " not found" + keep}, nil
		}
		return passwordResult{Reason: "SecretUnreadable", Message: fmt.Sprintf("%s cannot be read: %v%s", where, apierrors.ReasonForError(err), keep)}, nil
	}
	var changedAt time.Time
	if row != nil {
		changedAt = row.PasswordChangedAt
	}
	if !passwordNeeded(row != nil, changedAt, u.Status.PasswordSecretResourceVersion, u.Status.PasswordChangedAt, meta.ResourceVersion) {
		return passwordResult{OK: true, Reason: "Applied", Message: fmt.Sprintf("password from %s (version %s)", where, meta.ResourceVersion), RV: meta.ResourceVersion}, nil
	}

	var secret corev1.Secret
	if err := s.reader.Get(ctx, nn, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return passwordResult{Reason: "SecretNotFound", Message: where + " not found" + keep}, nil
		}
		return passwordResult{Reason: "SecretUnreadable", Message: fmt.Sprintf("%s cannot be read: %v%s", where, apierrors.ReasonForError(err), keep)}, nil
	}
	value, ok := secret.Data[key]
	if !ok {
		return passwordResult{Reason: "KeyNotFound", Message: fmt.Sprintf("%s has no key %q%s", where, key, keep)}, nil
	}
	if len(value) == 0 {
		return passwordResult{Reason: "EmptyPassword", Message: fmt.Sprintf("%s key %q is empty%s", where, key, keep)}, nil
	}
	if row != nil && !password.IsHash(strings.TrimRight(string(value), "\r\n")) && row.PasswordHash != "" {
		// The stored hash already holds this password (a reconcile that saw a stale status, or a
		// re-hash by the auth server): nothing to write, and a fresh hash would only differ in
		// its salt.
		if res, _ := password.Verify(row.PasswordHash, string(value)); res.OK {
			return passwordResult{OK: true, Reason: "Applied", Message: fmt.Sprintf("password from %s (version %s)", where, secret.ResourceVersion),
				RV: secret.ResourceVersion, Verified: true, NewInput: secret.ResourceVersion != u.Status.PasswordSecretResourceVersion}, nil
		}
	}
	hash, err := hashForSecretValue(value)
	if err != nil {
		return passwordResult{}, fmt.Errorf("hashing the password from %s: %w", where, err)
	}
	return passwordResult{
		OK: true, Reason: "Applied", Message: fmt.Sprintf("password from %s (version %s)%s", where, secret.ResourceVersion, policyNote(value)),
		Hash: hash, RV: secret.ResourceVersion, NewInput: secret.ResourceVersion != u.Status.PasswordSecretResourceVersion,
	}, nil
}

// policyNote says which rule of the login form's password policy a plaintext Secret password
// breaks (it is applied all the same: the Secret is the admin's choice), or "".
func policyNote(value []byte) string {
	v := string(value)
	if password.IsHash(strings.TrimRight(v, "\r\n")) {
		return ""
	}
	if err := password.CheckPolicy(v); err != nil {
		return "; it breaks the password policy of the login form (" + strings.TrimPrefix(err.Error(), "password: ") + ")"
	}
	return ""
}

func (r passwordResult) condition() metav1.Condition {
	st := metav1.ConditionFalse
	if r.OK {
		st = metav1.ConditionTrue
	}
	return metav1.Condition{Type: authv1alpha1.ConditionPasswordSynced, Status: st, Reason: r.Reason, Message: r.Message}
}
