package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// S3MountMode is how the bucket reaches the pod.
// +kubebuilder:validation:Enum=Sync;FUSE
type S3MountMode string

// Sync copies the bucket into a volume (unprivileged); FUSE mounts it (privileged sidecar).
const (
	S3MountSync S3MountMode = "Sync"
	S3MountFUSE S3MountMode = "FUSE"
)

// S3CredentialsRef names the Secret keys that hold the S3 credentials.
type S3CredentialsRef struct {
	// Name of the Secret in the S3Mount's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// AccessKeyIDKey is the key of the access key id.
	// +kubebuilder:default=AWS_ACCESS_KEY_ID
	// +optional
	AccessKeyIDKey string `json:"accessKeyIDKey,omitempty"`
	// SecretAccessKeyKey is the key of the secret access key.
	// +kubebuilder:default=AWS_SECRET_ACCESS_KEY
	// +optional
	SecretAccessKeyKey string `json:"secretAccessKeyKey,omitempty"`
}

// S3MountSpec puts models (and optionally input and output) from a bucket into matching pods.
// The operator's pod webhook injects the sidecar (docs/s3.md); the controller checks the bucket.
// +kubebuilder:validation:XValidation:rule="!has(self.mountPath) || self.mountPath.startsWith('/')",message="mountPath must be an absolute path"
// +kubebuilder:validation:XValidation:rule="!has(self.persistentVolumeClaimName) || !has(self.mode) || self.mode != 'FUSE'",message="persistentVolumeClaimName is for Sync mode only"
// +kubebuilder:validation:XValidation:rule="!has(self.workflowSync) || !has(self.mode) || self.mode != 'FUSE'",message="workflowSync is for Sync mode only (the FUSE sidecar runs rclone)"
// +kubebuilder:validation:XValidation:rule="!has(self.workflowSync) || !has(self.readOnly) || !self.readOnly",message="workflowSync uploads workflows: it cannot be used with readOnly"
type S3MountSpec struct {
	// Bucket name.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	Bucket string `json:"bucket"`
	// Endpoint URL of an S3-compatible server (empty: AWS).
	// +kubebuilder:validation:Pattern=`^https?://`
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// Region of the bucket.
	// +optional
	Region string `json:"region,omitempty"`
	// Prefix inside the bucket; models are read from <prefix>/models/<folder>/.
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// PathStyle addressing (most self-hosted servers need it).
	// +optional
	PathStyle bool `json:"pathStyle,omitempty"`
	// CredentialsSecretRef names the Secret with the credentials.
	// +optional
	CredentialsSecretRef *S3CredentialsRef `json:"credentialsSecretRef,omitempty"`
	// Selector picks the pods that get the sidecar.
	Selector metav1.LabelSelector `json:"selector"`
	// MountPath in the pod.
	// +kubebuilder:default=/workspace/s3
	// +optional
	MountPath string `json:"mountPath,omitempty"`
	// ModelFolders to sync (the original's list when empty).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	ModelFolders []string `json:"modelFolders,omitempty"`
	// ModelDownloads makes the bucket a destination of the auth servers' model download API
	// (<prefix>/models/<folder>/): the manager then keeps the bucket's address and the Secret's
	// keys, encrypted with SECRET_KEY, in the users database for them (the auth servers hold
	// no Kubernetes credentials). Off by default.
	// +optional
	ModelDownloads bool `json:"modelDownloads,omitempty"`
	// Input also syncs <prefix>/input.
	// +optional
	Input bool `json:"input,omitempty"`
	// Output also uploads the pod's output to <prefix>/output.
	// +optional
	Output bool `json:"output,omitempty"`
	// ReadOnly never writes to the bucket.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`
	// SyncIntervalSeconds between re-syncs in Sync mode.
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=10
	// +optional
	SyncIntervalSeconds int32 `json:"syncIntervalSeconds,omitempty"`
	// Mode: Sync (default, unprivileged) or FUSE (privileged sidecar).
	// +kubebuilder:default=Sync
	// +optional
	Mode S3MountMode `json:"mode,omitempty"`
	// PersistentVolumeClaimName keeps the synced files on this PVC (a persistent cache: a new
	// pod only downloads what changed) instead of an emptyDir. Sync mode only.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	PersistentVolumeClaimName string `json:"persistentVolumeClaimName,omitempty"`
	// Writable mounts the volume read-write in the app containers (read-only by default;
	// output implies it, since ComfyUI must write its results).
	// +optional
	Writable bool `json:"writable,omitempty"`
	// Image of the sidecar (default: the operator's --s3sync-image, or --s3-fuse-image in FUSE mode).
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`
	// WorkflowSync also keeps each ComfyUI user's workflows in step with
	// <prefix>/users/<username>/workflows/ (the original's s3_storage.workflow_sync). Sync mode only.
	// +optional
	WorkflowSync *S3WorkflowSync `json:"workflowSync,omitempty"`
}

// WorkflowConflictStrategy decides which side wins when a workflow differs on both sides.
// +kubebuilder:validation:Enum=NewerWins;LocalWins;S3Wins
type WorkflowConflictStrategy string

// Conflict strategies (the original's newer_wins, local_wins, s3_wins).
const (
	WorkflowNewerWins WorkflowConflictStrategy = "NewerWins"
	WorkflowLocalWins WorkflowConflictStrategy = "LocalWins"
	WorkflowS3Wins    WorkflowConflictStrategy = "S3Wins"
)

// S3WorkflowSync syncs the workflows in ComfyUI's user directory. The sidecar needs the same
// directory as ComfyUI: the volume an app container mounts there is mounted into the sidecar
// too; when none does, an emptyDir is mounted there in both (the bucket is then what keeps the
// workflows across pod restarts).
type S3WorkflowSync struct {
	// UserDirectory is ComfyUI's user directory in the app containers (its --user-directory;
	// by default <ComfyUI folder>/user).
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	UserDirectory string `json:"userDirectory"`
	// ConflictStrategy when a workflow was changed on both sides. A deletion never beats a
	// change: the changed copy comes back.
	// +kubebuilder:default=NewerWins
	// +optional
	ConflictStrategy WorkflowConflictStrategy `json:"conflictStrategy,omitempty"`
	// MaxWorkflowSizeMB: larger workflows are left alone.
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	// +optional
	MaxWorkflowSizeMB int32 `json:"maxWorkflowSizeMB,omitempty"`
	// IntervalSeconds between workflow syncs.
	// +kubebuilder:default=120
	// +kubebuilder:validation:Minimum=10
	// +optional
	IntervalSeconds int32 `json:"intervalSeconds,omitempty"`
}

// S3MountStatus reports the mount.
type S3MountStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ConfigHash of the current spec; injected pods carry the hash they were given.
	// +optional
	ConfigHash string `json:"configHash,omitempty"`
	// InjectedPods counts the pods in the namespace that run this mount's sidecar.
	// +optional
	InjectedPods int32 `json:"injectedPods,omitempty"`
	// OutdatedPods names (at most 20 of) the pods injected with an older configuration; they
	// pick up the current one when recreated.
	// +optional
	// +listType=set
	OutdatedPods []string `json:"outdatedPods,omitempty"`
	// UninjectedPods names (at most 20 of) the pods the selector matches that run without this
	// mount's sidecar: created while the webhook was unavailable (its failurePolicy is Ignore)
	// or before the S3Mount existed. They get it when recreated.
	// +optional
	// +listType=set
	UninjectedPods []string `json:"uninjectedPods,omitempty"`
}

// S3Mount puts a bucket's models into the pods its selector matches.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=s3m,categories=mss-login
// +kubebuilder:printcolumn:name="Bucket",type=string,JSONPath=`.spec.bucket`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Pods",type=integer,JSONPath=`.status.injectedPods`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type S3Mount struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   S3MountSpec   `json:"spec"`
	Status S3MountStatus `json:"status,omitempty"`
}

// S3MountList is a list of S3Mounts.
// +kubebuilder:object:root=true
type S3MountList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []S3Mount `json:"items"`
}

func init() {
	SchemeBuilder.Register(&S3Mount{}, &S3MountList{})
}
