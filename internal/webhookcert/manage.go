package webhookcert

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// Options of the certificate manager.
type Options struct {
	// Client reads and writes uncached (the manager's cache holds no Secret values).
	Client client.Client
	// Namespace and SecretName of the Secret that holds the CA and the certificate.
	Namespace, SecretName string
	// CertDir receives tls.crt and tls.key (the webhook server's CertDir).
	CertDir string
	// DNSNames and IPs the certificate is valid for (the Service's names: svc, svc.ns, svc.ns.svc).
	DNSNames []string
	IPs      []net.IP
	// WebhookConfigName is the MutatingWebhookConfiguration whose caBundle is kept current
	// ("" = none; a missing one is logged, not an error, so the manager runs without it).
	WebhookConfigName string
	// Validity of a new certificate (default 1 year); it is renewed RenewBefore its end
	// (default a third of Validity).
	Validity, RenewBefore time.Duration
	// Interval between checks in Start (default 1 hour).
	Interval time.Duration
	Now      func() time.Time
}

func (o *Options) defaults() {
	if o.Validity <= 0 {
		o.Validity = 365 * 24 * time.Hour
	}
	if o.RenewBefore <= 0 {
		o.RenewBefore = o.Validity / 3
	}
	if o.Interval <= 0 {
		o.Interval = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Manager keeps the webhook's certificate; it is a manager.Runnable that runs on every replica.
type Manager struct{ o Options }

// New returns a Manager; call Ensure once before the webhook server starts (it needs the files).
func New(o Options) *Manager {
	o.defaults()
	return &Manager{o: o}
}

// NeedLeaderElection: every replica serves the webhook, so every replica needs the files.
func (m *Manager) NeedLeaderElection() bool { return false }

// Start re-checks every Interval until ctx ends.
func (m *Manager) Start(ctx context.Context) error {
	t := time.NewTicker(m.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.Ensure(ctx); err != nil {
				logf.FromContext(ctx).Error(err, "webhook certificate")
			}
		}
	}
}

// Ensure makes the Secret hold a good certificate (creating or renewing it), writes it to
// CertDir, and puts the CA bundle into the webhook configuration.
func (m *Manager) Ensure(ctx context.Context) error {
	b, err := m.secretBundle(ctx)
	if err != nil {
		return err
	}
	if err := m.writeFiles(b); err != nil {
		return err
	}
	return m.patchCABundle(ctx, b.caBundle(m.o.Now()))
}

// secretBundle reads the Secret and renews it when needed. Two replicas renewing at once
// conflict on the Secret's resourceVersion; the loser re-reads and takes the winner's.
func (m *Manager) secretBundle(ctx context.Context) (bundle, error) {
	key := types.NamespacedName{Namespace: m.o.Namespace, Name: m.o.SecretName}
	for attempt := 0; attempt < 3; attempt++ {
		sec := &corev1.Secret{}
		err := m.o.Client.Get(ctx, key, sec)
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return bundle{}, fmt.Errorf("webhook certificate secret %s: %w", key, err)
		}
		b := bundle{CA: sec.Data[KeyCA], PrevCA: sec.Data[KeyPrevCA], Cert: sec.Data[KeyCert], Key: sec.Data[KeyKey]}
		why := renewalReason(b, m.o.DNSNames, m.o.IPs, m.o.Now(), m.o.RenewBefore)
		if why == "" {
			return b, nil
		}
		nb, err := generate(m.o.DNSNames, m.o.IPs, m.o.Now(), m.o.Validity)
		if err != nil {
			return bundle{}, err
		}
		nb.PrevCA = b.CA
		sec.Data = map[string][]byte{KeyCA: nb.CA, KeyCert: nb.Cert, KeyKey: nb.Key}
		if len(nb.PrevCA) > 0 {
			sec.Data[KeyPrevCA] = nb.PrevCA
		}
		sec.Type = corev1.SecretTypeOpaque
		if exists {
			err = m.o.Client.Update(ctx, sec)
		} else {
			sec.ObjectMeta = metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "mss-login"}}
			err = m.o.Client.Create(ctx, sec)
		}
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return bundle{}, fmt.Errorf("webhook certificate secret %s: %w", key, err)
		}
		logf.FromContext(ctx).Info("webhook certificate issued", "secret", key.String(), "reason", why)
		return nb, nil
	}
	return bundle{}, fmt.Errorf("webhook certificate secret %s: kept changing under us", key)
}

// writeFiles writes the pair only when it changed (controller-runtime watches the files).
// The key is written first, then the certificate: the watcher reloads on either, and a
// mismatched pair fails to load and is retried, never served.
func (m *Manager) writeFiles(b bundle) error {
	if err := os.MkdirAll(m.o.CertDir, 0o700); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{KeyKey, b.Key}, {KeyCert, b.Cert}, {KeyCA, b.CA}} {
		p := filepath.Join(m.o.CertDir, f.name)
		if have, err := os.ReadFile(p); err == nil && bytes.Equal(have, f.data) {
			continue
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
	}
	return nil
}

// patchCABundle sets the bundle on every webhook of the configuration that lacks it.
func (m *Manager) patchCABundle(ctx context.Context, ca []byte) error {
	if m.o.WebhookConfigName == "" {
		return nil
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := m.o.Client.Get(ctx, types.NamespacedName{Name: m.o.WebhookConfigName}, cfg); err != nil {
		if apierrors.IsNotFound(err) {
			logf.FromContext(ctx).Info("no MutatingWebhookConfiguration to put the CA into; pods are not injected", "name", m.o.WebhookConfigName)
			return nil
		}
		return err
	}
	orig := cfg.DeepCopy()
	changed := false
	for i := range cfg.Webhooks {
		if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, ca) {
			cfg.Webhooks[i].ClientConfig.CABundle = ca
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return m.o.Client.Patch(ctx, cfg, client.MergeFrom(orig))
}
