package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPAction allows or denies the listed addresses.
// +kubebuilder:validation:Enum=Allow;Deny
type IPAction string

// The two actions. Any Allow rule switches the auth server to allow-list mode.
const (
	ActionAllow IPAction = "Allow"
	ActionDeny  IPAction = "Deny"
)

// IPRuleSpec allows or denies a set of addresses and networks.
type IPRuleSpec struct {
	// Action: Allow or Deny. Any Allow rule switches on allow-list mode, as in the original.
	Action IPAction `json:"action"`

	// CIDRs are IP addresses or CIDR networks, IPv4 or IPv6.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:XValidation:rule="isIP(self) || isCIDR(self)",messageExpression="'every entry must be an IP address or a CIDR (IPv4 or IPv6); not: ' + self"
	// +listType=set
	CIDRs []string `json:"cidrs"`

	// ExpiresAt ends the rule: its rows are removed then. A time already past is accepted (CEL
	// has no clock); nothing is written and the status says Expired.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// Comment is stored as the rules' reason.
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Comment string `json:"comment,omitempty"`
}

// IPRuleStatus is what the operator last applied.
type IPRuleStatus struct {
	SyncStatus `json:",inline"`

	// Rules is the number of rows this resource has in the database.
	// +optional
	Rules int32 `json:"rules,omitempty"`

	// Expired is true once expiresAt has passed and the rows were removed.
	// +optional
	Expired bool `json:"expired,omitempty"`
}

// IPRule allows or denies addresses at the auth server.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ipr,categories=mss-login
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`
// +kubebuilder:printcolumn:name="CIDRs",type=string,JSONPath=`.spec.cidrs`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.spec.expiresAt`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name must be at most 63 characters (it is recorded in the database as the rows' owner)"
type IPRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IPRuleSpec   `json:"spec"`
	Status IPRuleStatus `json:"status,omitempty"`
}

// GetSyncStatus returns the shared part of the status.
func (r *IPRule) GetSyncStatus() *SyncStatus { return &r.Status.SyncStatus }

// IPRuleList is a list of IPRules.
// +kubebuilder:object:root=true
type IPRuleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPRule `json:"items"`
}

func init() {
	SchemeBuilder.Register(&IPRule{}, &IPRuleList{})
}
