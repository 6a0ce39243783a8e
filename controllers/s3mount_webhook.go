package controllers

import (
	"context"
	"encoding/json"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
)

// The manager keeps the webhook's certificate in a Secret and the CA in the webhook
// configuration (internal/webhookcert); controller-gen reads markers from this package only.
// Both are granted by name only (config/rbac/webhook_cert_role.yaml and the chart's
// templates/webhook.yaml), not by markers here, which would grant them cluster-wide.

// S3MountWebhookPath is where the pod webhook is served (config/webhook/manifests.yaml).
const S3MountWebhookPath = "/mutate-v1-pod-s3mount"

// s3MountInjector is the mutating admission webhook on Pod CREATE: it reads the S3Mounts of
// the pod's namespace (from the manager's cache) and applies decideInjection.
type s3MountInjector struct {
	reader  client.Reader
	cfg     InjectConfig
	decoder admission.Decoder
}

func (h *s3MountInjector) Handle(ctx context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := h.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	var mounts authv1alpha1.S3MountList
	if err := h.reader.List(ctx, &mounts, client.InNamespace(req.Namespace)); err != nil {
		// The failurePolicy of the webhook configuration decides what the API server does.
		return admission.Errored(http.StatusInternalServerError, err)
	}
	r := decideInjection(pod, mounts.Items, h.cfg)
	switch {
	case r.Deny != "":
		return admission.Denied(r.Deny)
	case r.Pod == nil:
		return admission.Allowed("no S3Mount to inject")
	}
	raw, err := json.Marshal(r.Pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, raw)
}

// RegisterS3MountWebhook serves the pod webhook on srv.
func RegisterS3MountWebhook(srv webhook.Server, reader client.Reader, scheme *runtime.Scheme, cfg InjectConfig) {
	srv.Register(S3MountWebhookPath, &webhook.Admission{
		Handler: &s3MountInjector{reader: reader, cfg: cfg, decoder: admission.NewDecoder(scheme)},
	})
}
