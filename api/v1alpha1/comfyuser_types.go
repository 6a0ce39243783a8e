package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeletionPolicy says what happens to a user's row when its ComfyUser is deleted.
// +kubebuilder:validation:Enum=Disable;Delete;Orphan
type DeletionPolicy string

const (
	// DeletionDisable keeps the row, refuses login and revokes its sessions and API tokens.
	DeletionDisable DeletionPolicy = "Disable"
	// DeletionDelete removes the row with its sessions, tokens and MFA data.
	DeletionDelete DeletionPolicy = "Delete"
	// DeletionOrphan keeps the row as it is and hands it to the admin API (owner_ref cleared).
	DeletionOrphan DeletionPolicy = "Orphan"
)

// ComfyUserSpec is an account in the users database.
type ComfyUserSpec struct {
	// Username to log in with: letters, digits and underscores, at least 3 characters; guest,
	// default and defaults are reserved. Compared case-insensitively in the database. Immutable:
	// a rename is a new ComfyUser.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="username is immutable: create a new ComfyUser to rename"
	// +kubebuilder:validation:XValidation:rule="!(self.lowerAscii() in ['guest', 'default', 'defaults'])",message="username is reserved (guest, default, defaults)"
	Username string `json:"username"`

	// Role names a role in the database: a built-in one (admin, power, user, guest) or a
	// ComfyRole's roleName. A role that does not exist is reported, never guessed.
	// +kubebuilder:default=user
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]+$`
	// +optional
	Role string `json:"role,omitempty"`

	// PasswordSecretRef names the Secret key that holds the password: plaintext (hashed once
	// per Secret version) or a bcrypt / argon2id hash (stored as is). Without it the operator
	// leaves the stored password alone (a new user has none and cannot log in).
	// +optional
	PasswordSecretRef *SecretKeyRef `json:"passwordSecretRef,omitempty"`

	// Disabled refuses login and revokes the user's sessions and API tokens.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// Owner makes this user the owner, who holds every permission. At most one user in the
	// database is the owner; a second is refused in status.
	// +optional
	Owner bool `json:"owner,omitempty"`

	// DeletionPolicy: Disable (default) keeps the row, disabled; Delete removes it; Orphan
	// keeps it unchanged and no longer managed.
	// +kubebuilder:default=Disable
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// Adopt takes over a user that already exists in the database and is not owned by any
	// resource; its role, flags and (with a Secret) password are then set from this resource.
	// Without it such a user is left alone and the conflict is reported.
	// +optional
	Adopt bool `json:"adopt,omitempty"`

	// Models granted to this user in addition to their role's (see ComfyRole spec.models).
	// Grants made through the admin API are kept apart and left alone.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Models []ModelGrant `json:"models,omitempty"`
}

// ComfyUserStatus is what the operator last applied.
type ComfyUserStatus struct {
	SyncStatus `json:",inline"`

	// UserID is the id of the row in the users database.
	// +optional
	UserID string `json:"userID,omitempty"`

	// PasswordSecretResourceVersion is the resourceVersion of the Secret whose value is the
	// stored password. A new Secret version is hashed and applied once.
	// +optional
	PasswordSecretResourceVersion string `json:"passwordSecretResourceVersion,omitempty"`

	// PasswordChangedAt is the row's password_changed_at after the operator last wrote the
	// password (millisecond precision); a different value in the row means the password was
	// changed behind the operator's back, and the Secret's is put back.
	// +optional
	PasswordChangedAt *metav1.MicroTime `json:"passwordChangedAt,omitempty"`

	// Models: how many models each pattern of spec.models matches now.
	// +optional
	Models []ModelGrantStatus `json:"models,omitempty"`
}

// ComfyUser is an account of the users database, owned by this resource.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cu;cuser,categories=mss-login
// +kubebuilder:printcolumn:name="Username",type=string,JSONPath=`.spec.username`
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.spec.role`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Disabled",type=boolean,JSONPath=`.spec.disabled`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Owner",type=boolean,JSONPath=`.spec.owner`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name must be at most 63 characters (it is recorded in the database as the row's owner)"
type ComfyUser struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ComfyUserSpec   `json:"spec"`
	Status ComfyUserStatus `json:"status,omitempty"`
}

// GetSyncStatus returns the shared part of the status.
func (u *ComfyUser) GetSyncStatus() *SyncStatus { return &u.Status.SyncStatus }

// ComfyUserList is a list of ComfyUsers.
// +kubebuilder:object:root=true
type ComfyUserList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ComfyUser `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ComfyUser{}, &ComfyUserList{})
}
