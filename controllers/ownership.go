package controllers

import (
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Username ownership: which resource owns the row of a database key (a username, a role
// name) and may write it. Not the auth server's JWT claims.

// winnerOf returns the resource that wins a database key that several resources want (its
// rivals): the oldest by creation time, then by namespace/name so the answer is the same on
// every run. Resources being deleted take part: they still own their row until their
// finalizer has released it. nil when rivals is empty.
func winnerOf[T client.Object](rivals []T) T {
	var best T
	found := false
	for _, c := range rivals {
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

// ownershipInputs are the facts that decide whether a resource may write the row for its key.
type ownershipInputs struct {
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
	// WinnerRef is the owner_ref of the oldest resource wanting the key (this one or another).
	WinnerRef string
}

// ownershipDecision says whether the resource may write its row and, if not, why.
type ownershipDecision struct {
	Allowed  bool
	Adopting bool // the row exists unowned and is taken over now
	Reason   string
	Message  string
}

// decideOwnership applies the ownership rules: a row owned by a live resource stays with it; among
// resources wanting one key the oldest wins; an existing unowned row is taken over only with
// adopt: true (built-in roles excepted).
func decideOwnership(in ownershipInputs) ownershipDecision {
	switch {
	case in.RowExists && in.RowOwnerRef == in.MyRef:
		return ownershipDecision{Allowed: true}
	case in.RowExists && in.RowOwnerRef != "" && !in.RowOwnerGone:
		return ownershipDecision{Reason: "OwnedByOther",
			Message: fmt.Sprintf("%s is owned by %s; this resource changes nothing", in.What, in.RowOwnerRef)}
	case in.WinnerRef != "" && in.WinnerRef != in.MyRef:
		return ownershipDecision{Reason: "Conflict",
			Message: fmt.Sprintf("%s is also claimed by %s, which is older and wins; this resource changes nothing", in.What, in.WinnerRef)}
	case in.RowExists && in.FreeToTake:
		return ownershipDecision{Allowed: true}
	case in.RowExists && in.Adopt:
		return ownershipDecision{Allowed: true, Adopting: true}
	case in.RowExists && in.RowOwnerRef != "":
		return ownershipDecision{Reason: "NotAdopted",
			Message: fmt.Sprintf("%s was owned by %s, which no longer exists; set spec.adopt: true to take it over", in.What, in.RowOwnerRef)}
	case in.RowExists:
		return ownershipDecision{Reason: "NotAdopted",
			Message: fmt.Sprintf("%s already exists in the database and is not managed by a resource; set spec.adopt: true to take it over (its settings are then replaced by this resource's)", in.What)}
	}
	return ownershipDecision{Allowed: true}
}
