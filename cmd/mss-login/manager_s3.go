package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/mss-login/mss-login/internal/controller/s3mount"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/version"
	webhookv1 "github.com/mss-login/mss-login/internal/webhook/v1"
	"github.com/mss-login/mss-login/internal/webhookcert"
)

// s3Flags are the manager's flags for S3Mounts and their pod webhook (docs/s3.md).
type s3Flags struct {
	webhook    bool
	port       int
	certDir    string
	certs      string // self | external
	service    string
	host       string
	configName string
	certSecret string
	syncImage  string
	fuseImage  string
	recheck    time.Duration
}

func (f *s3Flags) register(fl *pflag.FlagSet) {
	image := os.Getenv("MSS_LOGIN_IMAGE")
	if image == "" {
		image = "ghcr.io/mss-login/mss-login:" + version.Version // the image the chart and `make docker-build` name
	}
	fl.BoolVar(&f.webhook, "s3-webhook", true, "serve the S3Mount pod webhook (injects the sync sidecar)")
	fl.IntVar(&f.port, "webhook-port", 9443, "port of the webhook server")
	fl.StringVar(&f.certDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "folder of the webhook's tls.crt and tls.key")
	fl.StringVar(&f.certs, "webhook-certs", "self",
		"self: the manager issues and renews its certificate (in --webhook-cert-secret) and patches the CA into --webhook-config-name; "+
			"external: the files in --webhook-cert-dir come from elsewhere (cert-manager), and so does the caBundle")
	fl.StringVar(&f.service, "webhook-service", "mss-login-webhook", "Service in front of the webhook (the certificate's names)")
	fl.StringVar(&f.host, "webhook-host", "", "also make the certificate valid for this DNS name or IP: for an API server that calls the webhook by URL "+
		"(mss-login dev) rather than through the Service")
	fl.StringVar(&f.configName, "webhook-config-name", "mss-login-s3mount", "MutatingWebhookConfiguration whose caBundle the manager keeps")
	fl.StringVar(&f.certSecret, "webhook-cert-secret", "mss-login-webhook-cert", "Secret (in --namespace) holding the webhook CA and certificate")
	fl.StringVar(&f.syncImage, "s3sync-image", image, "image of the s3sync sidecar (default $MSS_LOGIN_IMAGE, else this version's image)")
	fl.StringVar(&f.fuseImage, "s3-fuse-image", "rclone/rclone:1.68", "image of the FUSE sidecar (runs rclone mount)")
	fl.DurationVar(&f.recheck, "s3-recheck-period", 5*time.Minute, "how often each S3Mount's bucket is checked")
}

// server is the webhook server for ctrl.Options (nil when the webhook is off).
func (f *s3Flags) server() webhook.Server {
	if !f.webhook {
		return nil
	}
	return webhook.NewServer(webhook.Options{Port: f.port, CertDir: f.certDir})
}

// setupS3 adds the S3Mount controller, the pod webhook and, with --webhook-certs=self, the
// certificate keeper. The certificate is made before the manager starts: the webhook server
// needs its files when it starts.
func setupS3(ctx context.Context, mgr ctrl.Manager, restCfg *rest.Config, f s3Flags, namespace string, st *store.Store) error {
	if f.webhook && f.certs == "self" {
		c, err := client.New(restCfg, client.Options{Scheme: mgr.GetScheme()})
		if err != nil {
			return err
		}
		svc := f.service
		o := webhookcert.Options{
			Client: c, Namespace: namespace, SecretName: f.certSecret, CertDir: f.certDir, WebhookConfigName: f.configName,
			DNSNames: []string{svc, svc + "." + namespace, svc + "." + namespace + ".svc", svc + "." + namespace + ".svc.cluster.local"},
		}
		if ip := net.ParseIP(f.host); ip != nil {
			o.IPs = append(o.IPs, ip)
		} else if f.host != "" {
			o.DNSNames = append(o.DNSNames, f.host)
		}
		certs := webhookcert.New(o)
		if err := certs.Ensure(ctx); err != nil {
			return fmt.Errorf("webhook certificate: %w", err)
		}
		if err := mgr.Add(certs); err != nil {
			return err
		}
	} else if f.webhook && f.certs != "external" {
		return fmt.Errorf("--webhook-certs must be self or external, not %q", f.certs)
	}
	inject := s3mount.InjectConfig{SyncImage: f.syncImage, FUSEImage: f.fuseImage}
	if f.webhook {
		webhookv1.SetupS3MountWebhook(mgr, inject)
	}
	return s3mount.Setup(mgr, s3mount.Options{Recheck: f.recheck, Store: st, Inject: inject})
}
