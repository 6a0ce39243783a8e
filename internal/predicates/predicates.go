// Package predicates owns the event filters the mss-login controllers share: which changes of
// their own resources wake a reconcile.
package predicates

import (
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// SpecOrDeletion passes creates, deletes, spec changes and the start of a deletion, and drops
// updates that only touched status or metadata written by the operator itself.
var SpecOrDeletion = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		if e.ObjectOld == nil || e.ObjectNew == nil {
			return true
		}
		return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
			(e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero())
	},
}
