package chart_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/mss-login/mss-login/internal/chartgen"
)

var postgres = []string{"database.backend=postgresql", "database.host=pg.db", "database.passwordSecret.name=pg-auth", "authserver.replicas=3"}

func TestChartGeneratedTemplatesUpToDate(t *testing.T) {
	want, err := chartgen.Generate(root)
	if err != nil {
		t.Fatal(err)
	}
	for rel, body := range want {
		got, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil || string(got) != string(body) {
			t.Errorf("%s differs from config/ (or is missing): run make helm-crds", rel)
		}
	}
	have, _ := filepath.Glob(filepath.Join(chartDir, "templates/crds/*.yaml"))
	for _, p := range have {
		rel, _ := filepath.Rel(root, p)
		if _, ok := want[rel]; !ok {
			t.Errorf("%s has no source in config/crd/bases: run make helm-crds", rel)
		}
	}
}

func TestChartLint(t *testing.T) {
	for _, sets := range [][]string{nil, postgres} {
		args := []string{"lint", "--strict", chartDir}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		if out, err := run(t, nil, helm(t), args...); err != nil {
			t.Errorf("helm lint %v: %v\n%s", sets, err, out)
		}
	}
}

func TestChartSQLiteTopology(t *testing.T) {
	r := render(t)
	deps := all[*appsv1.Deployment](r)
	if len(deps) != 1 {
		t.Fatalf("want one Deployment with SQLite, got %d", len(deps))
	}
	d := deps[0]
	if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("SQLite pod: replicas %d strategy %s, want 1 and Recreate", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 2 || pod.Containers[0].Name != "manager" || pod.Containers[1].Name != "authserver" {
		t.Fatalf("want containers manager and authserver, got %+v", pod.Containers)
	}
	checkTokenOnlyInManager(t, pod)
	if vol := volume(pod, "data"); vol == nil || vol.PersistentVolumeClaim == nil || vol.PersistentVolumeClaim.ClaimName != "rel-mss-login-data" {
		t.Errorf("data volume is not the chart's PVC: %+v", vol)
	}
	for _, c := range pod.Containers {
		if env(c, "USERS_DB_SQLITE_PATH") != "/data/mss_login_data.db" || env(c, "USERS_DB_BACKEND") != "sqlite" {
			t.Errorf("%s: database environment %+v", c.Name, c.Env)
		}
		if !mounted(c, "data", "/data") {
			t.Errorf("%s does not mount the shared data volume at /data", c.Name)
		}
	}
	pvcs := all[*corev1.PersistentVolumeClaim](r)
	if len(pvcs) != 1 || pvcs[0].Annotations["helm.sh/resource-policy"] != "keep" {
		t.Errorf("want one PVC kept on uninstall, got %+v", pvcs)
	}
	if k := r.kinds(); k["PodDisruptionBudget"] != 0 {
		t.Errorf("no PDB for the single SQLite pod, got %d", k["PodDisruptionBudget"])
	}
	checkRestricted(t, r)
	checkSecretKey(t, r, true)
	checkCRDs(t, r)
	checkRBAC(t, r)
	checkService(t, r, "server")
	if cfg := configJSON(t, r); !reflect.DeepEqual(cfg, map[string]any{"upstream_url": "http://comfyui:8188"}) {
		t.Errorf("config.json with default values holds more than upstream_url: %v", cfg)
	}
}

func TestChartPostgreSQLTopology(t *testing.T) {
	r := render(t, postgres...)
	deps := map[string]*appsv1.Deployment{}
	for _, d := range all[*appsv1.Deployment](r) {
		deps[d.Name] = d
	}
	mgr, as := deps["rel-mss-login-manager"], deps["rel-mss-login-authserver"]
	if len(deps) != 2 || mgr == nil || as == nil {
		t.Fatalf("want the manager and the auth server Deployments, got %v", slices.Sorted(maps.Keys(deps)))
	}
	if *as.Spec.Replicas != 3 || *mgr.Spec.Replicas != 1 {
		t.Errorf("replicas: authserver %d (want 3), manager %d (want 1)", *as.Spec.Replicas, *mgr.Spec.Replicas)
	}
	checkTokenOnlyInManager(t, mgr.Spec.Template.Spec)
	asPod := as.Spec.Template.Spec
	if asPod.AutomountServiceAccountToken == nil || *asPod.AutomountServiceAccountToken || volume(asPod, "kube-api-access") != nil {
		t.Error("the auth server pods must have no service-account token")
	}
	if asPod.ServiceAccountName == mgr.Spec.Template.Spec.ServiceAccountName {
		t.Error("the auth server must not run as the manager's service account")
	}
	if !slices.Contains(mgr.Spec.Template.Spec.Containers[0].Args, "--leader-elect") {
		t.Error("the manager Deployment must elect a leader")
	}
	for _, d := range deps {
		for _, c := range d.Spec.Template.Spec.Containers {
			if env(c, "USERS_DB_BACKEND") != "postgresql" || env(c, "USERS_DB_POSTGRES_HOST") != "pg.db" || env(c, "USERS_DB_POSTGRES_PORT") != "5432" {
				t.Errorf("%s/%s: database environment %+v", d.Name, c.Name, c.Env)
			}
			pw := envVar(c, "USERS_DB_PASSWORD")
			if pw == nil || pw.ValueFrom == nil || pw.ValueFrom.SecretKeyRef == nil || pw.ValueFrom.SecretKeyRef.Name != "pg-auth" || pw.Value != "" {
				t.Errorf("%s/%s: the password must come from the Secret pg-auth: %+v", d.Name, c.Name, pw)
			}
		}
		if v := volume(d.Spec.Template.Spec, "data"); v == nil || v.EmptyDir == nil {
			t.Errorf("%s: no PVC in the database topology, want an emptyDir data volume", d.Name)
		}
	}
	if n := len(all[*corev1.PersistentVolumeClaim](r)); n != 0 {
		t.Errorf("no PVC with PostgreSQL, got %d", n)
	}
	pdbs := all[*policyv1.PodDisruptionBudget](r)
	if len(pdbs) != 1 || pdbs[0].Spec.Selector.MatchLabels["app.kubernetes.io/component"] != "authserver" {
		t.Errorf("want one PDB for the auth server, got %+v", pdbs)
	}
	checkRestricted(t, r)
	checkSecretKey(t, r, true)
	checkService(t, r, "authserver")

	my := render(t, "database.backend=mysql", "database.host=maria", "database.passwordSecret.name=m")
	for _, d := range all[*appsv1.Deployment](my) {
		if c := d.Spec.Template.Spec.Containers[0]; env(c, "USERS_DB_MYSQL_HOST") != "maria" || env(c, "USERS_DB_MYSQL_PORT") != "3306" {
			t.Errorf("mysql: %s environment %+v", d.Name, c.Env)
		}
	}
}

func TestChartOptions(t *testing.T) {
	r := render(t,
		"upstream.url=http://comfy.ml.svc:8188",
		"config.blacklist_after_attempts=5", "config.trusted_proxies[0]=10.0.0.0/8",
		"secretKey.existingSecret=my-key", "secretKey.key=key",
		"ingress.enabled=true", "ingress.className=nginx",
		"httpRoute.enabled=true", "httpRoute.parentRefs[0].name=public", "httpRoute.hostnames[0]=comfy.example.com",
		"serviceMonitor.enabled=true", "webhook.enabled=true", "manager.metrics.enabled=false",
		"networkPolicy.ingressFrom[0].namespaceSelector.matchLabels.team=edge")
	cfg := configJSON(t, r)
	want := map[string]any{"upstream_url": "http://comfy.ml.svc:8188", "blacklist_after_attempts": float64(5), "trusted_proxies": []any{"10.0.0.0/8"}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config.json = %v, want %v", cfg, want)
	}
	checkSecretKey(t, r, false)
	for _, d := range all[*appsv1.Deployment](r) {
		for _, c := range d.Spec.Template.Spec.Containers {
			if ref := envVar(c, "SECRET_KEY").ValueFrom.SecretKeyRef; ref.Name != "my-key" || ref.Key != "key" {
				t.Errorf("%s: SECRET_KEY from %s/%s, want my-key/key", c.Name, ref.Name, ref.Key)
			}
		}
		if mgr := d.Spec.Template.Spec.Containers[0]; !slices.Contains(mgr.Args, "--metrics-bind-address=0") {
			t.Errorf("manager.metrics.enabled=false must pass --metrics-bind-address=0: %v", mgr.Args)
		}
	}
	k := r.kinds()
	for kind, n := range map[string]int{"Ingress": 1, "HTTPRoute": 1, "ServiceMonitor": 1, "MutatingWebhookConfiguration": 1, "NetworkPolicy": 1} {
		if k[kind] != n {
			t.Errorf("%d %s rendered, want %d", k[kind], kind, n)
		}
	}
	ing := all[*networkingv1.Ingress](r)[0]
	if *ing.Spec.IngressClassName != "nginx" || ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name != "rel-mss-login" {
		t.Errorf("ingress: %+v", ing.Spec)
	}
	for _, u := range all[*unstructured.Unstructured](r) {
		if u.GetKind() == "HTTPRoute" {
			name, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
			if !strings.Contains(r.raw, "name: public") || len(name) != 1 {
				t.Errorf("HTTPRoute: %v", u.Object["spec"])
			}
		}
	}
	np := all[*networkingv1.NetworkPolicy](r)[0]
	if len(np.Spec.Ingress) != 3 || len(np.Spec.Ingress[0].From) != 1 {
		t.Errorf("network policy: want http (from the edge namespace), metrics and webhook rules, got %+v", np.Spec.Ingress)
	}
	if !strings.Contains(r.raw, "path: /mutate-v1-pod-s3mount") {
		t.Error("the webhook configuration does not point at the S3Mount webhook path")
	}
	if k := render(t, "crds.install=false").kinds(); k["CustomResourceDefinition"] != 0 {
		t.Errorf("crds.install=false still renders %d CRDs", k["CustomResourceDefinition"])
	}
}

// TestChartRejectsBadValues: values.schema.json and the template checks name the value.
func TestChartRejectsBadValues(t *testing.T) {
	for _, c := range []struct {
		sets []string
		want string
	}{
		{[]string{"database.backend=oracle"}, "/database/backend"},
		{[]string{"upstream.url=comfyui:8188"}, "/upstream/url"},
		{[]string{"authserver.replicas=0"}, "/authserver/replicas"},
		{[]string{"replicaCount=2"}, "replicaCount"},
		{[]string{"manager.resyncPeriod=often"}, "/manager/resyncPeriod"},
		{[]string{"database.backend=postgresql", "database.passwordSecret.name=x"}, "database.host: required"},
		{[]string{"database.backend=mysql", "database.host=m"}, "database.passwordSecret.name"},
		{[]string{"config.upstream_url=http://x"}, "upstream.url"},
		{[]string{"httpRoute.enabled=true"}, "httpRoute.parentRefs"},
	} {
		_, err := renderErr(t, c.sets...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: want an error naming %q, got %v", c.sets, c.want, err)
		}
	}
}

// --- checks shared by the topologies ---

// checkTokenOnlyInManager: no automount on the pod; the projected token only in the manager.
func checkTokenOnlyInManager(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod must not automount the service-account token")
	}
	v := volume(pod, "kube-api-access")
	if v == nil || v.Projected == nil || v.Projected.Sources[0].ServiceAccountToken == nil {
		t.Fatal("no projected service-account token volume")
	}
	for _, c := range pod.Containers {
		has := mounted(c, "kube-api-access", "/var/run/secrets/kubernetes.io/serviceaccount")
		if has != (c.Name == "manager") {
			t.Errorf("container %s: token mounted = %v", c.Name, has)
		}
	}
}

// checkRestricted: every pod meets the restricted Pod Security Standard (the install test also
// has the API server's PodSecurity admission check it).
func checkRestricted(t *testing.T, r *rendered) {
	t.Helper()
	for _, d := range all[*appsv1.Deployment](r) {
		ps := d.Spec.Template.Spec.SecurityContext
		if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod security context %+v", d.Name, ps)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			s := c.SecurityContext
			if s == nil || s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation || s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem ||
				s.Capabilities == nil || !reflect.DeepEqual(s.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("%s/%s: container security context %+v", d.Name, c.Name, s)
			}
			if c.Image != "ghcr.io/mss-login/mss-login:0.1.0" {
				t.Errorf("%s/%s: image %s, want the chart's appVersion", d.Name, c.Name, c.Image)
			}
		}
	}
}

func checkSecretKey(t *testing.T, r *rendered, generated bool) {
	t.Helper()
	var found *corev1.Secret
	for _, s := range all[*corev1.Secret](r) {
		if s.Name == "rel-mss-login-secret-key" {
			found = s
		}
	}
	if !generated {
		if found != nil {
			t.Error("secretKey.existingSecret is set: the chart must not render its own SECRET_KEY Secret")
		}
		return
	}
	if found == nil || found.Annotations["helm.sh/resource-policy"] != "keep" || len(found.Data["SECRET_KEY"]) < 32 {
		t.Errorf("want a kept, generated SECRET_KEY Secret of at least 32 bytes, got %+v", found)
	}
}

func checkCRDs(t *testing.T, r *rendered) {
	t.Helper()
	crds := all[*apiextensionsv1.CustomResourceDefinition](r)
	if len(crds) != 5 {
		t.Errorf("want the 5 CRDs of config/crd, got %d", len(crds))
	}
	for _, c := range crds {
		if c.Annotations["helm.sh/resource-policy"] != "keep" || c.Spec.Group != "auth.mss-login.dev" {
			t.Errorf("CRD %s: annotations %v", c.Name, c.Annotations)
		}
	}
}

// checkRBAC: the manager's ClusterRole has exactly the rules of config/rbac/role.yaml.
func checkRBAC(t *testing.T, r *rendered) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, "config/rbac/role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want rbacv1.ClusterRole
	if err := yaml.Unmarshal(src, &want); err != nil {
		t.Fatal(err)
	}
	for _, cr := range all[*rbacv1.ClusterRole](r) {
		if cr.Name == "rel-mss-login-manager" {
			if !reflect.DeepEqual(cr.Rules, want.Rules) {
				t.Errorf("the chart's manager ClusterRole differs from config/rbac/role.yaml")
			}
			return
		}
	}
	t.Error("no manager ClusterRole")
}

func checkService(t *testing.T, r *rendered, component string) {
	t.Helper()
	for _, s := range all[*corev1.Service](r) {
		if s.Name == "rel-mss-login" {
			if s.Spec.Selector["app.kubernetes.io/component"] != component || s.Spec.Ports[0].TargetPort.String() != "http" {
				t.Errorf("the Service must select the %s pods' http port: %+v", component, s.Spec)
			}
			return
		}
	}
	t.Error("no Service rel-mss-login")
}

func configJSON(t *testing.T, r *rendered) map[string]any {
	t.Helper()
	for _, cm := range all[*corev1.ConfigMap](r) {
		var m map[string]any
		if err := json.Unmarshal([]byte(cm.Data["config.json"]), &m); err != nil {
			t.Fatalf("config.json is not JSON: %v", err)
		}
		return m
	}
	t.Fatal("no ConfigMap with config.json")
	return nil
}

func volume(pod corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

func mounted(c corev1.Container, name, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == name && m.MountPath == path {
			return true
		}
	}
	return false
}

func envVar(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func env(c corev1.Container, name string) string {
	if v := envVar(c, name); v != nil {
		return v.Value
	}
	return ""
}

// TestChartWebhookWiring: the manager's webhook flags name the objects the chart renders (the
// manager patches the caBundle of --webhook-config-name and issues its certificate for
// --webhook-service), and webhook.enabled=false turns the server off.
func TestChartWebhookWiring(t *testing.T) {
	for _, sets := range [][]string{nil, postgres} {
		r := render(t, sets...)
		var args []string
		for _, d := range all[*appsv1.Deployment](r) {
			if c := d.Spec.Template.Spec.Containers[0]; c.Name == "manager" {
				args = c.Args
				if env(c, "MSS_LOGIN_IMAGE") != c.Image {
					t.Errorf("MSS_LOGIN_IMAGE (the s3sync sidecar's image) = %q, want the manager's %q", env(c, "MSS_LOGIN_IMAGE"), c.Image)
				}
				if !hasPort(c, "webhook", 9443) {
					t.Errorf("manager container has no webhook port 9443: %+v", c.Ports)
				}
			}
		}
		mwcs := all[*admissionregistrationv1.MutatingWebhookConfiguration](r)
		if len(mwcs) != 1 {
			t.Fatalf("%v: want one MutatingWebhookConfiguration by default, got %d", sets, len(mwcs))
		}
		w := mwcs[0].Webhooks[0]
		if !slices.Contains(args, "--webhook-config-name="+mwcs[0].Name) || !slices.Contains(args, "--webhook-service="+w.ClientConfig.Service.Name) ||
			*w.ClientConfig.Service.Path != "/mutate-v1-pod-s3mount" || *w.FailurePolicy != admissionregistrationv1.Ignore {
			t.Errorf("%v: webhook configuration %s → %+v does not match the manager's flags %v", sets, mwcs[0].Name, w.ClientConfig.Service, args)
		}
		var svc *corev1.Service
		for _, s := range all[*corev1.Service](r) {
			if s.Name == w.ClientConfig.Service.Name {
				svc = s
			}
		}
		want := "server"
		if sets != nil {
			want = "manager"
		}
		if svc == nil || svc.Spec.Selector["app.kubernetes.io/component"] != want || svc.Spec.Ports[0].Port != 443 {
			t.Errorf("%v: webhook Service %+v must select the %s pods on 443", sets, svc, want)
		}
	}
	off := render(t, "webhook.enabled=false")
	if n := off.kinds()["MutatingWebhookConfiguration"]; n != 0 {
		t.Errorf("webhook.enabled=false still renders %d webhook configurations", n)
	}
	for _, d := range all[*appsv1.Deployment](off) {
		if !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--s3-webhook=false") {
			t.Errorf("webhook.enabled=false must pass --s3-webhook=false: %v", d.Spec.Template.Spec.Containers[0].Args)
		}
	}
}

// TestChartWebhookCertificates: by default the manager may write only its own certificate
// Secret, in the release namespace (a Role, no Secret writes in the ClusterRole); with
// webhook.certManager.enabled it writes none, mounts cert-manager's Secret, and the webhook
// configuration asks cainjector for the CA of the Certificate the chart renders.
func TestChartWebhookCertificates(t *testing.T) {
	self := render(t)
	webhookConfigRule := func(r *rendered) *rbacv1.PolicyRule {
		var found *rbacv1.PolicyRule
		for _, cr := range all[*rbacv1.ClusterRole](r) {
			for i, rule := range cr.Rules {
				if slices.Contains(rule.Resources, "secrets") && (slices.Contains(rule.Verbs, "create") || slices.Contains(rule.Verbs, "update")) {
					t.Errorf("ClusterRole %s writes Secrets cluster-wide: %+v", cr.Name, rule)
				}
				if slices.Contains(rule.Resources, "mutatingwebhookconfigurations") {
					if !slices.Equal(rule.ResourceNames, []string{"rel-mss-login-s3mount"}) {
						t.Errorf("ClusterRole %s reaches webhook configurations other than the release's: %+v", cr.Name, rule)
					}
					found = &cr.Rules[i]
				}
			}
		}
		return found
	}
	if rule := webhookConfigRule(self); rule == nil || !slices.Equal(rule.Verbs, []string{"get", "patch"}) {
		t.Errorf("self-managed certificate: the manager must get and patch its webhook configuration: %+v", rule)
	}
	var role *rbacv1.Role
	for _, r := range all[*rbacv1.Role](self) {
		if r.Name == "rel-mss-login-webhook-cert" {
			role = r
		}
	}
	if role == nil {
		t.Fatal("no Role for the webhook certificate Secret")
	}
	for _, rule := range role.Rules {
		if slices.Contains(rule.Verbs, "update") && !slices.Equal(rule.ResourceNames, []string{"rel-mss-login-webhook-cert"}) {
			t.Errorf("the Role updates Secrets other than the certificate's: %+v", rule)
		}
	}
	var manager corev1.Container
	for _, d := range all[*appsv1.Deployment](self) {
		if c := d.Spec.Template.Spec.Containers[0]; c.Name == "manager" {
			manager = c
		}
	}
	if !slices.Contains(manager.Args, "--webhook-cert-secret=rel-mss-login-webhook-cert") {
		t.Errorf("the manager's certificate Secret is not the one the Role names: %v", manager.Args)
	}

	for _, sets := range [][]string{{"webhook.certManager.enabled=true"},
		{"webhook.certManager.enabled=true", "webhook.certManager.issuerRef.name=corp-ca", "webhook.certManager.issuerRef.kind=ClusterIssuer"}} {
		r := render(t, sets...)
		if n := len(all[*rbacv1.Role](r)); n != 1 { // leader election only
			t.Errorf("%v: %d Roles, want only leader election's", sets, n)
		}
		if rule := webhookConfigRule(r); rule != nil {
			t.Errorf("%v: cainjector fills the caBundle, yet the manager may patch it: %+v", sets, rule)
		}
		var certs, issuers []*unstructured.Unstructured
		for _, u := range all[*unstructured.Unstructured](r) {
			switch u.GetKind() {
			case "Certificate":
				certs = append(certs, u)
			case "Issuer":
				issuers = append(issuers, u)
			}
		}
		if len(certs) != 1 {
			t.Fatalf("%v: %d Certificates", sets, len(certs))
		}
		secret, _, _ := unstructured.NestedString(certs[0].Object, "spec", "secretName")
		issuer, _, _ := unstructured.NestedString(certs[0].Object, "spec", "issuerRef", "name")
		kind, _, _ := unstructured.NestedString(certs[0].Object, "spec", "issuerRef", "kind")
		dns, _, _ := unstructured.NestedStringSlice(certs[0].Object, "spec", "dnsNames")
		if !slices.Contains(dns, "rel-mss-login-webhook.comfy.svc") {
			t.Errorf("%v: certificate names %v lack the webhook Service", sets, dns)
		}
		if len(sets) == 1 && (len(issuers) != 1 || issuer != issuers[0].GetName()) {
			t.Errorf("%v: certificate issuer %q, self-signed issuers %d", sets, issuer, len(issuers))
		}
		if len(sets) > 1 && (len(issuers) != 0 || issuer != "corp-ca" || kind != "ClusterIssuer") {
			t.Errorf("%v: issuerRef %s/%s with %d chart issuers", sets, kind, issuer, len(issuers))
		}
		mwc := all[*admissionregistrationv1.MutatingWebhookConfiguration](r)[0]
		if got := mwc.Annotations["cert-manager.io/inject-ca-from"]; got != "comfy/"+certs[0].GetName() {
			t.Errorf("%v: inject-ca-from %q", sets, got)
		}
		for _, d := range all[*appsv1.Deployment](r) {
			spec := d.Spec.Template.Spec
			c := spec.Containers[0]
			if c.Name != "manager" {
				continue
			}
			if !slices.Contains(c.Args, "--webhook-certs=external") || slices.Contains(c.Args, "--webhook-certs=self") {
				t.Errorf("%v: manager args %v", sets, c.Args)
			}
			fromSecret := slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool {
				return v.Name == "webhook-certs" && v.Secret != nil && v.Secret.SecretName == secret &&
					v.Secret.Optional != nil && *v.Secret.Optional
			})
			if !mounted(c, "webhook-certs", "/tmp/webhook-certs") || !fromSecret || !slices.Contains(c.Args, "--webhook-cert-dir=/tmp/webhook-certs") {
				t.Errorf("%v: the manager does not read the Certificate's Secret %s at its cert dir", sets, secret)
			}
		}
	}
}

func hasPort(c corev1.Container, name string, port int32) bool {
	for _, p := range c.Ports {
		if p.Name == name && p.ContainerPort == port {
			return true
		}
	}
	return false
}
