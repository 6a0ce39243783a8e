//go:build tools

// Package envtest pins the Kubernetes control plane (kube-apiserver, etcd, kubectl) that the
// tests run against. It is its own module so that k8s.io/kubernetes' replace directives never
// reach the main module; hack/control-plane.sh builds the binaries from it.
package envtest

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
