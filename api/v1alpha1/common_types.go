package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types shared by the kinds that own rows in the users database.
const (
	// ConditionReady is True when the database matches the resource.
	ConditionReady = "Ready"
	// ConditionPasswordSynced (ComfyUser) is True when the stored password comes from the
	// Secret version recorded in status.passwordSecretResourceVersion.
	ConditionPasswordSynced = "PasswordSynced"
)

// SyncStatus is the part of the status every database-backed kind shares.
type SyncStatus struct {
	// ObservedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready plus kind-specific ones. The Ready reason says why a resource is not
	// applied (for example Conflict, RoleNotFound, DatabaseUnavailable).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// OwnerRef is the value written to the owner_ref column of the rows this resource owns
	// ("<Kind>/<namespace>/<name>"); the admin API names it when it refuses an edit.
	// +optional
	OwnerRef string `json:"ownerRef,omitempty"`
}

// SecretKeyRef names one key of a Secret in the resource's own namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key in the Secret's data.
	// +kubebuilder:default=password
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}
