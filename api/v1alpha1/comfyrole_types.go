package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ComfyRoleSpec is a named permission set.
//
// The list of permission names in the rule below is checked against internal/roles by
// TestPermissionRuleMatchesRoles, so that the API server and the database cannot disagree.
type ComfyRoleSpec struct {
	// RoleName is the role's name in the database, which ComfyUsers refer to (default:
	// metadata.name). A built-in name (admin, power, user, guest) overrides that role while
	// this resource exists; deleting the resource restores the original's defaults. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="roleName is immutable"
	// +optional
	RoleName string `json:"roleName,omitempty"`

	// Permissions the server enforces (can_run, can_upload, …, mfa_required). A flag not
	// listed is false for a custom role and keeps the original's default for a built-in one.
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, k in ['can_run', 'can_upload', 'can_access_api', 'can_access_manager', 'can_manage_extensions', 'can_modify_workflows', 'can_see_restricted_settings', 'can_have_api_tokens', 'can_have_non_expiring_jwt', 'can_view_console', 'mfa_required', 'can_view_all_comfyui_items', 'can_access_s3_storage', 'can_download_models', 'can_manage_model_sharing', 'can_login_locally_without_auth'])",message="unknown permission name: the known ones are can_run, can_upload, can_access_api, can_access_manager, can_manage_extensions, can_modify_workflows, can_see_restricted_settings, can_have_api_tokens, can_have_non_expiring_jwt, can_view_console, mfa_required, can_view_all_comfyui_items, can_access_s3_storage, can_download_models, can_manage_model_sharing, can_login_locally_without_auth"
	// +kubebuilder:validation:XValidation:rule="!('can_login_locally_without_auth' in self) || !self['can_login_locally_without_auth']",message="can_login_locally_without_auth: not supported, by design: a login without a password for anyone on a network deemed local would let any device there act as this role; give scripts an API token instead"
	// +kubebuilder:validation:XValidation:rule="!('can_see_restricted_settings' in self) || !self['can_see_restricted_settings']",message="can_see_restricted_settings: not supported: in the original it showed MSS-Login's own settings panel inside ComfyUI, which mss-login does not have (its settings are the config file and these resources)"
	// +optional
	Permissions map[string]bool `json:"permissions,omitempty"`

	// UI flags passed to the browser; names start with ui_, cat_ or settings_.
	// +kubebuilder:validation:MaxProperties=256
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^(ui|cat|settings)_[A-Za-z0-9_.-]+$'))",message="UI flag names must start with ui_, cat_ or settings_"
	// +optional
	UI map[string]bool `json:"ui,omitempty"`

	// Adopt takes over a custom role that already exists in the database and is not owned by
	// a resource. Built-in roles need no adoption.
	// +optional
	Adopt bool `json:"adopt,omitempty"`

	// Models granted to every member of the role: per model folder, exact names or glob
	// patterns over the path inside the folder. Members see and use only the models they are
	// granted (by their role, their ComfyUser, or through the admin API), unless the role has
	// can_view_all_comfyui_items; S3 models need can_access_s3_storage as well.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Models []ModelGrant `json:"models,omitempty"`
}

// ComfyRoleStatus is what the operator last applied.
type ComfyRoleStatus struct {
	SyncStatus `json:",inline"`

	// RoleName is the name of the role row this resource owns.
	// +optional
	RoleName string `json:"roleName,omitempty"`

	// Builtin is true when this resource overrides a built-in role.
	// +optional
	Builtin bool `json:"builtin,omitempty"`

	// Models: how many models each pattern of spec.models matches now.
	// +optional
	Models []ModelGrantStatus `json:"models,omitempty"`
}

// ComfyRole is a role of the users database, owned by this resource.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=crole,categories=mss-login
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.status.roleName`
// +kubebuilder:printcolumn:name="Builtin",type=boolean,JSONPath=`.status.builtin`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name must be at most 63 characters (it is recorded in the database as the row's owner)"
type ComfyRole struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ComfyRoleSpec   `json:"spec,omitempty"`
	Status ComfyRoleStatus `json:"status,omitempty"`
}

// GetSyncStatus returns the shared part of the status.
func (r *ComfyRole) GetSyncStatus() *SyncStatus { return &r.Status.SyncStatus }

// EffectiveRoleName is spec.roleName, else metadata.name.
func (r *ComfyRole) EffectiveRoleName() string {
	if r.Spec.RoleName != "" {
		return r.Spec.RoleName
	}
	return r.Name
}

// ComfyRoleList is a list of ComfyRoles.
// +kubebuilder:object:root=true
type ComfyRoleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ComfyRole `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ComfyRole{}, &ComfyRoleList{})
}
