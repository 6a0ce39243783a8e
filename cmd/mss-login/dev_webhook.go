package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/spf13/pflag"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	webhookv1 "github.com/mss-login/mss-login/internal/webhook/v1"
)

// devWebhookName is the MutatingWebhookConfiguration `mss-login dev` keeps.
const devWebhookName = "mss-login-s3mount"

// devS3 makes the S3Mount pod webhook work in the local control plane: the API server calls it
// by URL on loopback (there is no Service and no cluster DNS), so the manager's certificate
// is made for 127.0.0.1 and the webhook configuration points there. The port is new on every
// run; the configuration is rewritten to match before the manager patches its caBundle.
func devS3(ctx context.Context, cl client.Client, dataDir string) (s3Flags, string, error) {
	var f s3Flags
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return f, "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// The manager's own defaults (images, names), with the dev values on top.
	fs := pflag.NewFlagSet("dev", pflag.ContinueOnError)
	f.register(fs)
	if err := fs.Parse([]string{"--webhook-port=" + strconv.Itoa(port), "--webhook-host=127.0.0.1",
		"--webhook-cert-dir=" + filepath.Join(dataDir, "webhook-certs"), "--webhook-config-name=" + devWebhookName,
		"--s3-recheck-period=1m"}); err != nil {
		return f, "", err
	}
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, webhookv1.S3MountPath)
	want := admissionregistrationv1.MutatingWebhook{
		Name:                    "s3mount.pods.auth.mss-login.dev",
		ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url},
		AdmissionReviewVersions: []string{"v1"},
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		// As the chart: while the manager is down pods start without the sidecar (and the
		// S3Mount names them in status.uninjectedPods).
		FailurePolicy:      ptr.To(admissionregistrationv1.Ignore),
		TimeoutSeconds:     ptr.To(int32(5)),
		ReinvocationPolicy: ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"},
				Resources: []string{"pods"}, Scope: ptr.To(admissionregistrationv1.NamespacedScope)},
		}},
		NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", "kube-node-lease"}}}},
	}
	cur := &admissionregistrationv1.MutatingWebhookConfiguration{}
	err = cl.Get(ctx, client.ObjectKey{Name: devWebhookName}, cur)
	switch {
	case apierrors.IsNotFound(err):
		cur = &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: devWebhookName},
			Webhooks: []admissionregistrationv1.MutatingWebhook{want}}
		err = cl.Create(ctx, cur)
	case err == nil:
		if len(cur.Webhooks) == 1 {
			want.ClientConfig.CABundle = cur.Webhooks[0].ClientConfig.CABundle // the manager renews it if stale
		}
		cur.Webhooks = []admissionregistrationv1.MutatingWebhook{want}
		err = cl.Update(ctx, cur)
	}
	if err != nil {
		return f, "", fmt.Errorf("S3Mount webhook configuration: %w", err)
	}
	return f, url, nil
}
