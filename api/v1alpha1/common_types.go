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

// ConditionModelsMatched (ComfyRole, ComfyUser with spec.models) is True when every pattern of
// spec.models matches at least one model ComfyUI lists (as the auth server last read them);
// False names the patterns that match none; Unknown until the auth server has read them.
const ConditionModelsMatched = "ModelsMatched"

// ModelGrant grants the models of one ComfyUI model folder whose path inside the folder
// matches one of the patterns.
//
// The folder list below is checked against internal/modelgrant by TestModelFoldersMatch.
type ModelGrant struct {
	// Folder is a ComfyUI model folder (clip and unet are ComfyUI's old names of text_encoders
	// and diffusion_models).
	// +kubebuilder:validation:Enum=audio_encoders;checkpoints;classifiers;clip;clip_vision;configs;controlnet;diffusers;diffusion_models;embeddings;gligen;hypernetworks;latent_upscale_models;loras;model_patches;photomaker;style_models;text_encoders;unet;upscale_models;vae;vae_approx;facerestore_models;insightface;instantid;ipadapter;sams;ultralytics
	Folder string `json:"folder"`

	// Patterns are exact names ("flux1-dev.safetensors") or globs over the path inside the
	// folder: "*", "?" and "[a-z]" within one segment, "**" as a whole segment for any depth
	// ("sdxl/*": the files directly in sdxl; "sdxl/**": at any depth). Relative paths without
	// ".", ".." or empty segments.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=191
	// +kubebuilder:validation:XValidation:rule=`self.all(p, p.matches('^[^/]+(/[^/]+)*$') && !p.contains('\\'))`,messageExpression=`'patterns: ' + self.filter(p, !p.matches('^[^/]+(/[^/]+)*$') || p.contains('\\'))[0] + ' is not a relative path (a leading /, an empty segment or a backslash)'`
	// +kubebuilder:validation:XValidation:rule=`self.all(p, !p.matches('(^|/)[.][.]?(/|$)'))`,messageExpression=`'patterns: ' + self.filter(p, p.matches('(^|/)[.][.]?(/|$)'))[0] + ' has a . or .. segment'`
	// +kubebuilder:validation:XValidation:rule=`self.all(p, !p.matches('[^/][*][*]|[*][*][^/]'))`,messageExpression=`'patterns: ' + self.filter(p, p.matches('[^/][*][*]|[*][*][^/]'))[0] + ': ** must be a whole segment'`
	// +kubebuilder:validation:XValidation:rule=`self.all(p, p.matches('^([^][]|[[]^?[^][]+[]])*$'))`,messageExpression=`'patterns: ' + self.filter(p, !p.matches('^([^][]|[[]^?[^][]+[]])*$'))[0] + ' has an unclosed or empty [ ]'`
	Patterns []string `json:"patterns"`
}

// ModelGrantStatus is how many models one granted pattern matches now.
type ModelGrantStatus struct {
	Folder  string `json:"folder"`
	Pattern string `json:"pattern"`
	// Matches: the models ComfyUI lists in the folder that the pattern matches.
	Matches int32 `json:"matches"`
}
