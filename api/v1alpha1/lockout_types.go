package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LockoutKind is what is locked out.
// +kubebuilder:validation:Enum=IP;Device
type LockoutKind string

// The two kinds of lockout the database holds.
const (
	LockoutIP     LockoutKind = "IP"
	LockoutDevice LockoutKind = "Device"
)

// LockoutSpec describes one active ban in the database. The operator writes it; people read
// it and delete the object to lift the ban.
type LockoutSpec struct {
	// Kind: IP (an address banned after too many failures, or by an admin) or Device (a
	// locked X-Device-ID).
	Kind LockoutKind `json:"kind"`

	// Subject is the banned address or the device id.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=191
	Subject string `json:"subject"`

	// Source of an IP ban: automatic (too many failures) or manual (an admin).
	// +optional
	Source string `json:"source,omitempty"`

	// Attempts is the number of failed logins counted for the subject when it was mirrored.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`

	// Reason recorded with the ban.
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Reason string `json:"reason,omitempty"`

	// Since is when the ban started.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`

	// ExpiresAt is when the ban ends by itself; empty for a permanent ban.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
}

// LockoutStatus reports lifting the ban when the object is deleted.
type LockoutStatus struct {
	// Conditions: only Ready, set False with reason LiftFailed while the object is deleted and
	// its ban cannot be lifted yet (retried with backoff).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Lockout mirrors an active ban of the users database. Deleting it lifts the ban.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=lo,categories=mss-login
// +kubebuilder:printcolumn:name="Subject",type=string,JSONPath=`.spec.subject`
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.kind`
// +kubebuilder:printcolumn:name="Attempts",type=integer,JSONPath=`.spec.attempts`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.spec.expiresAt`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Lockout struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   LockoutSpec   `json:"spec"`
	Status LockoutStatus `json:"status,omitempty"`
}

// LockoutList is a list of Lockouts.
// +kubebuilder:object:root=true
type LockoutList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Lockout `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Lockout{}, &LockoutList{})
}
