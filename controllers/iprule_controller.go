package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/store"
)

// ipRuleSyncer writes an IPRule to ip_rules rows with source "resource".
type ipRuleSyncer struct {
	deps
}

// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=iprules,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=iprules/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=iprules/finalizers,verbs=update

func (s ipRuleSyncer) Apply(ctx context.Context, r *authv1alpha1.IPRule, ref string) (outcome, error) {
	now := s.now()
	have, err := s.store.IPRulesOwnedBy(ctx, ref)
	if err != nil {
		return outcome{}, err
	}
	if ipRuleExpired(r.Spec, now) {
		// Expired: the rows go, and the status says so. An IPRule created already expired
		// writes nothing (CEL has no clock, so the API server cannot refuse it).
		var changed []string
		if len(have) > 0 {
			if err := s.store.DeleteIPRulesOwnedBy(ctx, ref); err != nil {
				return outcome{}, err
			}
			changed = []string{fmt.Sprintf("removed %d expired rules", len(have))}
		}
		firstTime := !r.Status.Expired
		r.Status.Expired, r.Status.Rules = true, 0
		return outcome{Reason: "Expired", NewInput: firstTime, Changed: changed, Message: fmt.Sprintf(
			"expired at %s; its rules were removed from the database", r.Spec.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"))}, nil
	}
	want, err := desiredIPRules(r.Spec, ref)
	if err != nil {
		return outcome{Reason: "InvalidCIDR", Message: err.Error() + "; nothing was changed"}, nil
	}
	add, remove := diffIPRules(want, have)
	for _, w := range add {
		if _, err := s.store.AddIPRule(ctx, w); err != nil {
			return outcome{}, err
		}
	}
	for _, id := range remove {
		if err := s.store.DeleteIPRule(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return outcome{}, err
		}
	}
	r.Status.Expired, r.Status.Rules = false, int32(len(want))
	out := outcome{Ready: true, Message: fmt.Sprintf("%d %s rules applied", len(want), r.Spec.Action)}
	if len(add) > 0 {
		out.Changed = append(out.Changed, fmt.Sprintf("%d rules written", len(add)))
	}
	if len(remove) > 0 {
		out.Changed = append(out.Changed, fmt.Sprintf("%d rules removed", len(remove)))
	}
	if r.Spec.ExpiresAt != nil {
		out.RequeueAfter = r.Spec.ExpiresAt.Sub(now) + 500*time.Millisecond
	}
	return out, nil
}

// Release removes every row of the resource; none left is fine.
func (s ipRuleSyncer) Release(ctx context.Context, _ *authv1alpha1.IPRule, ref string) error {
	return s.store.DeleteIPRulesOwnedBy(ctx, ref)
}
