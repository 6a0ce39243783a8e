package controllers

import (
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// oldestClaim returns the resource that wins a database key (a username, a role name) that
// several resources claim: the oldest by creation time, then by namespace/name so the answer
// is the same on every run. Resources being deleted take part: they still own their row until
// their finalizer has released it. nil when claims is empty.
func oldestClaim[T client.Object](claims []T) T {
	var best T
	found := false
	for _, c := range claims {
		if !found || olderThan(c, best) {
			best, found = c, true
		}
	}
	return best
}

func olderThan(a, b client.Object) bool {
	ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	if a.GetNamespace() != b.GetNamespace() {
		return a.GetNamespace() < b.GetNamespace()
	}
	return a.GetName() < b.GetName()
}

// claimInputs are the facts that decide whether a resource may write the row for its key.
type claimInputs struct {
	What        string // "user alice", "role artists" — for messages
	MyRef       string // this resource's owner_ref value
	RowExists   bool
	RowOwnerRef string
	// RowOwnerGone: the row's owner_ref names a resource that no longer exists (deleted with
	// its finalizer removed by hand, or a Disable policy that kept the row).
	RowOwnerGone bool
	Adopt        bool
	// FreeToTake: an unowned row that needs no adoption (a built-in role, which a ComfyRole
	// overrides by design).
	FreeToTake bool
	// WinnerRef is the owner_ref of the oldest resource claiming the key (this one or another).
	WinnerRef string
}

// claimDecision says whether the resource may write its row and, if not, why.
type claimDecision struct {
	Allowed  bool
	Adopting bool // the row exists unowned and is taken over now
	Reason   string
	Message  string
}

// decideClaim applies the ownership rules: a row owned by a live resource stays with it; among
// resources claiming one key the oldest wins; an existing unowned row is taken over only with
// adopt: true (built-in roles excepted).
func decideClaim(in claimInputs) claimDecision {
	switch {
	case in.RowExists && in.RowOwnerRef == in.MyRef:
		return claimDecision{Allowed: true}
	case in.RowExists && in.RowOwnerRef != "" && !in.RowOwnerGone:
		return claimDecision{Reason: "OwnedByOther",
			Message: fmt.Sprintf("%s is owned by %s; this resource changes nothing", in.What, in.RowOwnerRef)}
	case in.WinnerRef != "" && in.WinnerRef != in.MyRef:
		return claimDecision{Reason: "Conflict",
			Message: fmt.Sprintf("%s is also claimed by %s, which is older and wins; this resource changes nothing", in.What, in.WinnerRef)}
	case in.RowExists && in.FreeToTake:
		return claimDecision{Allowed: true}
	case in.RowExists && in.Adopt:
		return claimDecision{Allowed: true, Adopting: true}
	case in.RowExists && in.RowOwnerRef != "":
		return claimDecision{Reason: "NotAdopted",
			Message: fmt.Sprintf("%s was owned by %s, which no longer exists; set spec.adopt: true to take it over", in.What, in.RowOwnerRef)}
	case in.RowExists:
		return claimDecision{Reason: "NotAdopted",
			Message: fmt.Sprintf("%s already exists in the database and is not managed by a resource; set spec.adopt: true to take it over (its settings are then replaced by this resource's)", in.What)}
	}
	return claimDecision{Allowed: true}
}
