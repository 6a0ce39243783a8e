// Package v1alpha1 contains the API of mss-login: the resources the operator reconciles into
// the users database (ComfyUser, ComfyRole, IPRule), the Lockout mirror of active bans, and
// S3Mount.
//
// +kubebuilder:object:generate=true
// +groupName=auth.mss-login.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "auth.mss-login.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
