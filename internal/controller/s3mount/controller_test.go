package s3mount_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/controllers"
	"github.com/mss-login/mss-login/internal/controller/s3mount"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
	webhookv1 "github.com/mss-login/mss-login/internal/webhook/v1"
	"github.com/mss-login/mss-login/internal/webhookcert"
)

// s3World is one S3 test: a namespace, a bucket on the real S3 server, a Secret with its
// credentials, and a manager running the S3Mount controller and the pod webhook, served with
// the certificate the manager makes itself and trusted through the caBundle it patches.
type s3World struct {
	t      *testing.T
	ctx    context.Context
	c      client.Client
	ns     string
	bucket string
	s3url  string
	store  *store.Store // where the controller records each mount's models
}

func newS3World(t *testing.T) *s3World {
	b := testenv.S3Bucket(t, "op", map[string]string{"studio/models/loras/a.safetensors": "a"})
	access, secret := b.AccessKey, b.SecretKey
	cfg := cp.Config(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	w := &s3World{t: t, ctx: ctx, c: c, ns: testenv.Namespace(t, ctx, c), bucket: b.Bucket, s3url: b.Endpoint, store: testenv.Open(t, store.SQLite)}

	w.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: w.ns},
		Data: map[string][]byte{"AWS_ACCESS_KEY_ID": []byte(access), "AWS_SECRET_ACCESS_KEY": []byte(secret)}})
	w.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "wrong-creds", Namespace: w.ns},
		Data: map[string][]byte{"AWS_ACCESS_KEY_ID": []byte(access), "AWS_SECRET_ACCESS_KEY": []byte("wrong-secret-do-not-show")}})

	// The webhook configuration as an installation has it, pointed at this test's server and
	// limited to this test's namespace; its caBundle is left empty for the manager to fill.
	port := freePort(t)
	whName := "mss-login-s3mount-" + w.ns
	w.create(&admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: whName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "s3mount.pods.auth.mss-login.dev",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL: ptr.To("https://127.0.0.1:" + strconv.Itoa(port) + webhookv1.S3MountPath),
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": w.ns}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail), // a broken webhook must fail the test
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
		}},
	})
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: whName}})
	})

	certDir := t.TempDir()
	certs := webhookcert.New(webhookcert.Options{Client: c, Namespace: w.ns, SecretName: "mss-login-webhook-cert", CertDir: certDir,
		DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, WebhookConfigName: whName})
	if err := certs.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{w.ns: {}}, ByObject: controllers.CacheByObject(w.ns)},
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		WebhookServer:          webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: certDir}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(certs); err != nil {
		t.Fatal(err)
	}
	inject := s3mount.InjectConfig{SyncImage: "mss-login:test", FUSEImage: "rclone:test"}
	webhookv1.SetupS3MountWebhook(mgr, inject)
	if err := s3mount.Setup(mgr, s3mount.Options{Recheck: time.Second, Store: w.store, Inject: inject}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func (w *s3World) create(o client.Object) {
	w.t.Helper()
	if err := w.c.Create(w.ctx, o); err != nil {
		w.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
	}
}

func (w *s3World) mount(name, path, secret string, mutate ...func(*authv1alpha1.S3MountSpec)) *authv1alpha1.S3Mount {
	m := &authv1alpha1.S3Mount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns}, Spec: authv1alpha1.S3MountSpec{
		Bucket: w.bucket, Endpoint: w.s3url, PathStyle: true, Prefix: "studio", MountPath: path,
		Selector:             metav1.LabelSelector{MatchLabels: map[string]string{"app": "comfyui"}},
		CredentialsSecretRef: &authv1alpha1.S3CredentialsRef{Name: secret},
	}}
	for _, f := range mutate {
		f(&m.Spec)
	}
	w.create(m)
	return m
}

func (w *s3World) pod(name string, labels, annotations map[string]string) (*corev1.Pod, error) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "comfyui", Image: "comfyui:latest"}}}}
	err := w.c.Create(w.ctx, p)
	return p, err
}

// waitMount polls an S3Mount until ok says yes (10 s).
func (w *s3World) waitMount(name string, ok func(*authv1alpha1.S3Mount) bool) *authv1alpha1.S3Mount {
	w.t.Helper()
	m := &authv1alpha1.S3Mount{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := w.c.Get(w.ctx, types.NamespacedName{Namespace: w.ns, Name: name}, m); err == nil && ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("S3Mount %s: condition not reached; status %+v", name, m.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readyReason(m *authv1alpha1.S3Mount) (string, string) {
	c := meta.FindStatusCondition(m.Status.Conditions, "Ready")
	if c == nil || c.ObservedGeneration != m.Generation {
		return "", ""
	}
	return c.Reason, c.Message
}

// The controller's conditions for a reachable bucket, a missing one, a wrong secret and a
// missing Secret — each with the S3 error code and never the secret.
func TestS3MountConditions(t *testing.T) {
	w := newS3World(t)
	w.mount("good", "", "s3-creds")
	w.mount("nobucket", "", "s3-creds", func(s *authv1alpha1.S3MountSpec) { s.Bucket = "missing-" + hexID(4) })
	w.mount("badsecret", "", "wrong-creds")
	w.mount("nosecret", "", "absent")

	want := map[string][2]string{
		"good":      {"Reachable", "reachable"},
		"nobucket":  {"BucketUnreachable", "NoSuchBucket"},
		"badsecret": {"BucketUnreachable", "SignatureDoesNotMatch"},
		"nosecret":  {"SecretNotFound", `"absent"`},
	}
	for name, wnt := range want {
		m := w.waitMount(name, func(m *authv1alpha1.S3Mount) bool { r, _ := readyReason(m); return r != "" })
		reason, msg := readyReason(m)
		if reason != wnt[0] || !strings.Contains(msg, wnt[1]) {
			t.Errorf("%s: Ready reason %q message %q, want %q with %q", name, reason, msg, wnt[0], wnt[1])
		}
		if strings.Contains(msg, "wrong-secret-do-not-show") || strings.Contains(msg, testenv.Require(t, testenv.S3SecretKey)) {
			t.Errorf("%s: the condition shows a secret: %s", name, msg)
		}
		ready := meta.IsStatusConditionTrue(m.Status.Conditions, "Ready")
		if ready != (name == "good") {
			t.Errorf("%s: Ready = %v", name, ready)
		}
	}
}

// A reachable mount's models are recorded in the users database for the auth servers
// (can_access_s3_storage), and forgotten when the mount is deleted.
func TestS3MountRecordsModels(t *testing.T) {
	w := newS3World(t)
	m := w.mount("good", "", "s3-creds")
	source := "S3Mount/" + w.ns + "/good"
	listed := func() []store.ListedModel {
		l, err := w.store.ListedModels(w.ctx, source)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(listed()) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if l := listed(); len(l) != 1 || l[0].Folder != "loras" || l[0].Name != "a.safetensors" {
		t.Fatalf("recorded models: %+v", l)
	}
	if err := w.c.Delete(w.ctx, m); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for len(listed()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if l := listed(); len(l) != 0 {
		t.Fatalf("a deleted mount's models stay recorded: %+v", l)
	}
}

// The webhook through the real API server: a matching pod gets the native sidecar, a
// non-matching one is untouched, the opt-out works, re-injection is a no-op, two mounts on
// distinct paths are both injected, overlapping ones are refused with the reason; the
// controller counts the pods and names the ones with an older configuration.
func TestS3MountWebhook(t *testing.T) {
	w := newS3World(t)
	m := w.mount("models", "/workspace/s3", "s3-creds")
	w.waitMount("models", func(m *authv1alpha1.S3Mount) bool { r, _ := readyReason(m); return r == "Reachable" })

	p, err := w.pod("comfy-1", map[string]string{"app": "comfyui"}, nil)
	if err != nil {
		t.Fatalf("creating a matching pod: %v", err)
	}
	if len(p.Spec.InitContainers) != 1 || p.Spec.InitContainers[0].Name != "s3sync-models" {
		t.Fatalf("matching pod not injected: %+v", p.Spec.InitContainers)
	}
	sc := p.Spec.InitContainers[0]
	if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways || sc.StartupProbe == nil {
		t.Fatal("the sidecar is not a native sidecar with a startup probe")
	}
	for _, e := range sc.Env {
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Fatalf("credential env %s is not a secretKeyRef", e.Name)
		}
	}
	vm := p.Spec.Containers[0].VolumeMounts
	if len(vm) == 0 || vm[len(vm)-1].MountPath != "/workspace/s3" || !vm[len(vm)-1].ReadOnly {
		t.Fatalf("app mounts %+v", vm)
	}

	other, err := w.pod("other", map[string]string{"app": "other"}, nil)
	if err != nil || len(other.Spec.InitContainers) != 0 || other.Annotations[s3mount.AnnotationInjected] != "" {
		t.Fatalf("non-matching pod: %v %+v", err, other.Spec.InitContainers)
	}
	opted, err := w.pod("opted-out", map[string]string{"app": "comfyui"}, map[string]string{s3mount.AnnotationInject: "false"})
	if err != nil || len(opted.Spec.InitContainers) != 0 {
		t.Fatalf("opted-out pod: %v %+v", err, opted.Spec.InitContainers)
	}
	// A pod submitted already injected (a re-applied manifest) is not injected twice.
	again := p.DeepCopy()
	again.ObjectMeta = metav1.ObjectMeta{Name: "comfy-again", Namespace: w.ns, Labels: p.Labels, Annotations: p.Annotations}
	if err := w.c.Create(w.ctx, again); err != nil || len(again.Spec.InitContainers) != 1 || len(again.Spec.Volumes) != len(p.Spec.Volumes) {
		t.Fatalf("re-submitted pod: %v, %d init containers", err, len(again.Spec.InitContainers))
	}

	// The API server refuses workflowSync with readOnly (CEL on the CRD).
	bad := &authv1alpha1.S3Mount{ObjectMeta: metav1.ObjectMeta{Name: "ro-workflows", Namespace: w.ns}, Spec: authv1alpha1.S3MountSpec{
		Bucket: w.bucket, ReadOnly: true, Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "comfyui"}},
		WorkflowSync: &authv1alpha1.S3WorkflowSync{UserDirectory: "/comfyui/user"}}}
	if err := w.c.Create(w.ctx, bad); err == nil || !strings.Contains(err.Error(), "cannot be used with readOnly") {
		t.Fatalf("workflowSync with readOnly: err = %v", err)
	}

	w.mount("loras", "/workspace/loras", "s3-creds", func(s *authv1alpha1.S3MountSpec) {
		s.WorkflowSync = &authv1alpha1.S3WorkflowSync{UserDirectory: "/comfyui/user"}
	})
	w.waitMount("loras", func(m *authv1alpha1.S3Mount) bool { r, _ := readyReason(m); return r != "" })
	// comfy-1 and comfy-again are older than "loras": they are named as running without it.
	lo := w.waitMount("loras", func(m *authv1alpha1.S3Mount) bool { return len(m.Status.UninjectedPods) == 2 })
	if strings.Join(lo.Status.UninjectedPods, ",") != "comfy-1,comfy-again" || meta.IsStatusConditionTrue(lo.Status.Conditions, "PodsInjected") {
		t.Fatalf("loras: uninjected %v, conditions %+v", lo.Status.UninjectedPods, lo.Status.Conditions)
	}
	two, err := w.pod("comfy-2", map[string]string{"app": "comfyui"}, nil)
	if err != nil || len(two.Spec.InitContainers) != 2 {
		t.Fatalf("two mounts on distinct paths: %v %+v", err, two.Spec.InitContainers)
	}
	// loras syncs workflows: its sidecar and ComfyUI share the user directory (an emptyDir here).
	i := slices.IndexFunc(two.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == "s3sync-loras" })
	if i < 0 || !strings.Contains(strings.Join(two.Spec.InitContainers[i].Args, " "), "--workflows-dir=/comfyui/user") {
		t.Fatalf("loras sidecar %+v", two.Spec.InitContainers)
	}
	if !slices.ContainsFunc(two.Spec.Containers[0].VolumeMounts, func(v corev1.VolumeMount) bool { return v.MountPath == "/comfyui/user" }) {
		t.Fatalf("ComfyUI does not mount its user directory: %+v", two.Spec.Containers[0].VolumeMounts)
	}
	if ports := []int32{two.Spec.InitContainers[0].Ports[0].ContainerPort, two.Spec.InitContainers[1].Ports[0].ContainerPort}; ports[0] == ports[1] {
		t.Fatalf("both sidecars listen on %d", ports[0])
	}

	w.mount("clash", "/workspace/s3", "s3-creds")
	w.waitMount("clash", func(m *authv1alpha1.S3Mount) bool { r, _ := readyReason(m); return r != "" })
	if _, err := w.pod("comfy-3", map[string]string{"app": "comfyui"}, nil); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Fatalf("overlapping mounts: err = %v, want a refusal naming the overlap", err)
	}
	if err := w.c.Delete(w.ctx, &authv1alpha1.S3Mount{ObjectMeta: metav1.ObjectMeta{Name: "clash", Namespace: w.ns}}); err != nil {
		t.Fatal(err)
	}

	// comfy-1, comfy-again and comfy-2 run "models"; a spec change makes them outdated.
	w.waitMount("models", func(m *authv1alpha1.S3Mount) bool {
		return m.Status.InjectedPods == 3 && len(m.Status.OutdatedPods) == 0 && meta.IsStatusConditionTrue(m.Status.Conditions, "PodsInjected")
	})

	// The webhook unreachable (as if the manager were down; the installed failurePolicy is
	// Ignore): a pod starts without its sidecar and the S3Mount names it.
	setWebhookNamespace(t, w, "elsewhere")
	missed, err := w.pod("missed", map[string]string{"app": "comfyui"}, nil)
	setWebhookNamespace(t, w, w.ns)
	if err != nil || len(missed.Spec.InitContainers) != 0 {
		t.Fatalf("pod created past the webhook: %v %+v", err, missed.Spec.InitContainers)
	}
	got := w.waitMount("models", func(m *authv1alpha1.S3Mount) bool { return slices.Contains(m.Status.UninjectedPods, "missed") })
	if c := meta.FindStatusCondition(got.Status.Conditions, "PodsInjected"); c == nil || c.Status != metav1.ConditionFalse ||
		c.Reason != "PodsWithoutSidecar" || !strings.Contains(c.Message, "missed") {
		t.Fatalf("PodsInjected condition %+v", c)
	}
	if err := w.c.Delete(w.ctx, missed); err != nil {
		t.Fatal(err)
	}
	w.waitMount("models", func(m *authv1alpha1.S3Mount) bool { return !slices.Contains(m.Status.UninjectedPods, "missed") })
	if err := w.c.Get(w.ctx, client.ObjectKeyFromObject(m), m); err != nil {
		t.Fatal(err)
	}
	m.Spec.SyncIntervalSeconds = 600
	if err := w.c.Update(w.ctx, m); err != nil {
		t.Fatal(err)
	}
	got = w.waitMount("models", func(m *authv1alpha1.S3Mount) bool { return len(m.Status.OutdatedPods) == 3 })
	if strings.Join(got.Status.OutdatedPods, ",") != "comfy-1,comfy-2,comfy-again" {
		t.Fatalf("outdated pods %v", got.Status.OutdatedPods)
	}
	if _, msg := readyReason(got); !strings.Contains(msg, "3 of them with an older configuration") {
		t.Fatalf("Ready message %q", msg)
	}
}

// setWebhookNamespace points this test's webhook configuration at namespace ns.
func setWebhookNamespace(t *testing.T, w *s3World, ns string) {
	t.Helper()
	wh := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := w.c.Get(w.ctx, types.NamespacedName{Name: "mss-login-s3mount-" + w.ns}, wh); err != nil {
		t.Fatal(err)
	}
	wh.Webhooks[0].NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
	if err := w.c.Update(w.ctx, wh); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the API server picks up webhook configurations asynchronously
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func hexID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// spec.modelDownloads: the manager keeps the mount's bucket and keys, encrypted, for the auth
// servers' downloads; a mount without it and a deleted one are no destination.
func TestS3MountRecordsDownloadDestination(t *testing.T) {
	w := newS3World(t)
	w.mount("plain", "/workspace/a", "s3-creds")
	m := w.mount("dl", "/workspace/b", "s3-creds", func(s *authv1alpha1.S3MountSpec) { s.ModelDownloads = true })
	dest := func(name string) string {
		v, _, err := w.store.SecretSetting(w.ctx, store.S3DestinationSetting(w.ns, name))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	deadline := time.Now().Add(20 * time.Second)
	for dest("dl") == "" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	var d store.S3Destination
	if err := json.Unmarshal([]byte(dest("dl")), &d); err != nil || d.Bucket != w.bucket || d.Prefix != "studio" || d.Endpoint != w.s3url ||
		d.AccessKeyID != testenv.Require(t, testenv.S3AccessKey) || d.SecretAccessKey == "" || !d.PathStyle {
		t.Fatalf("the destination: %+v %v", d, err)
	}
	w.waitMount("plain", func(m *authv1alpha1.S3Mount) bool { r, _ := readyReason(m); return r == "Reachable" })
	if dest("plain") != "" {
		t.Error("a mount without spec.modelDownloads is a destination")
	}
	if names, _ := w.store.SettingNames(w.ctx, store.S3DestinationPrefix); len(names) != 1 {
		t.Errorf("destination settings: %v (a mount without spec.modelDownloads writes none)", names)
	}
	if err := w.c.Delete(w.ctx, m); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for dest("dl") != "" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if dest("dl") != "" {
		t.Error("a deleted mount is still a destination")
	}
}
