// Package v1 owns the admission webhooks on core/v1 kinds (kubebuilder's internal/webhook/v1):
// the mutating webhook on Pod CREATE that injects the S3Mount sidecars. What it injects is
// decided by package s3mount (DecideInjection); this package only serves the decision.
package v1

import (
	"context"
	"encoding/json"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/controller/s3mount"
)

// The manager keeps the webhook's certificate in a Secret and the CA in the webhook
// configuration (internal/webhookcert). Both are granted by name only
// (config/rbac/webhook_cert_role.yaml and the chart's templates/webhook.yaml), not by RBAC
// markers (controller-gen does not read this package), which would grant them cluster-wide.

// S3MountPath is where the pod webhook is served (config/webhook/manifests.yaml).
const S3MountPath = "/mutate-v1-pod-s3mount"

// podS3MountInjector is the mutating admission webhook on Pod CREATE: it reads the S3Mounts
// of the pod's namespace (from the manager's cache) and applies s3mount.DecideInjection.
type podS3MountInjector struct {
	reader  client.Reader
	cfg     s3mount.InjectConfig
	decoder admission.Decoder
}

func (h *podS3MountInjector) Handle(ctx context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := h.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	var mounts authv1alpha1.S3MountList
	if err := h.reader.List(ctx, &mounts, client.InNamespace(req.Namespace)); err != nil {
		// The failurePolicy of the webhook configuration decides what the API server does.
		return admission.Errored(http.StatusInternalServerError, err)
	}
	r := s3mount.DecideInjection(pod, mounts.Items, h.cfg)
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

// SetupS3MountWebhook serves the pod webhook on the manager's webhook server, reading the
// S3Mounts from the manager's cache.
func SetupS3MountWebhook(mgr ctrl.Manager, cfg s3mount.InjectConfig) {
	mgr.GetWebhookServer().Register(S3MountPath, &webhook.Admission{
		Handler: &podS3MountInjector{reader: mgr.GetClient(), cfg: cfg, decoder: admission.NewDecoder(mgr.GetScheme())},
	})
}
