package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/store"
)

// modelsRecheck is how often a resource with model grants recounts what they match (the models
// ComfyUI lists change without the resource changing).
const modelsRecheck = time.Minute

// flattenGrants lists a spec's grants one pattern at a time, in order, without repeats.
func flattenGrants(spec []authv1alpha1.ModelGrant) []modelgrant.Grant {
	var out []modelgrant.Grant
	for _, m := range spec {
		for _, p := range m.Patterns {
			g := modelgrant.Grant{Folder: m.Folder, Pattern: p}
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}

// grantsResult is what syncing a resource's spec.models did and found.
type grantsResult struct {
	Changed   bool
	Status    []authv1alpha1.ModelGrantStatus
	Condition *metav1.Condition // nil without spec.models
}

// syncGrants makes the rows ref owns the spec's grants (to role, or to the user userID), and
// counts what each matches among the models ComfyUI lists, as the auth server last recorded.
func (d deps) syncGrants(ctx context.Context, ref, role, userID string, spec []authv1alpha1.ModelGrant) (grantsResult, error) {
	want := flattenGrants(spec)
	all, err := d.store.Grants(ctx)
	if err != nil {
		return grantsResult{}, err
	}
	var have []modelgrant.Grant
	for _, g := range all {
		if g.OwnerRef == ref {
			have = append(have, g.Grant)
		}
	}
	var res grantsResult
	if !slices.Equal(have, want) {
		if err := d.store.ReplaceOwnedGrants(ctx, ref, role, userID, want); err != nil {
			return grantsResult{}, err
		}
		res.Changed = true
	}
	if len(want) == 0 {
		return res, nil
	}
	listed, err := d.store.ListedModels(ctx, store.SourceComfyUI)
	if err != nil {
		return grantsResult{}, err
	}
	res.Status, res.Condition = countGrants(want, listed)
	return res, nil
}

// apply puts the result into a resource's outcome and status: "models" among what changed,
// the counts, the ModelsMatched condition (removed without spec.models), a recount soon.
func (res grantsResult) apply(out *outcome, st *authv1alpha1.SyncStatus, counts *[]authv1alpha1.ModelGrantStatus) {
	if res.Changed {
		out.Changed = append(out.Changed, "models")
	}
	*counts = res.Status
	if res.Condition == nil {
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionModelsMatched)
		return
	}
	out.Conditions = append(out.Conditions, *res.Condition)
	next := modelsRecheck
	if res.Condition.Status == metav1.ConditionUnknown {
		next = modelsRecheck / 6 // the auth server records the listings at its first model request
	}
	if out.RequeueAfter == 0 || next < out.RequeueAfter {
		out.RequeueAfter = next
	}
}

// countGrants is the status of grants against the listed models: how many each matches, and
// the ModelsMatched condition naming the patterns that match none.
func countGrants(grants []modelgrant.Grant, listed []store.ListedModel) ([]authv1alpha1.ModelGrantStatus, *metav1.Condition) {
	cond := &metav1.Condition{Type: authv1alpha1.ConditionModelsMatched}
	if len(listed) == 0 {
		cond.Status, cond.Reason = metav1.ConditionUnknown, "ListingsUnknown"
		cond.Message = "the auth server has not yet recorded which models ComfyUI lists"
		return nil, cond
	}
	status := make([]authv1alpha1.ModelGrantStatus, 0, len(grants))
	var none []string
	for _, g := range grants {
		n := int32(0)
		for _, m := range listed {
			if modelgrant.Canonical(m.Folder) == modelgrant.Canonical(g.Folder) && g.Matches(m.Name) {
				n++
			}
		}
		status = append(status, authv1alpha1.ModelGrantStatus{Folder: g.Folder, Pattern: g.Pattern, Matches: n})
		if n == 0 {
			none = append(none, g.String())
		}
	}
	if len(none) > 0 {
		cond.Status, cond.Reason = metav1.ConditionFalse, "PatternMatchesNone"
		cond.Message = fmt.Sprintf("no model ComfyUI lists matches %s", strings.Join(none, ", "))
	} else {
		cond.Status, cond.Reason = metav1.ConditionTrue, "Matched"
		cond.Message = fmt.Sprintf("every pattern matches at least one of the %d models ComfyUI lists", len(listed))
	}
	return status, cond
}
