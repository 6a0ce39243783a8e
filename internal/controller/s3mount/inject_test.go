package s3mount

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
)

var testInjectCfg = InjectConfig{SyncImage: "mss-login:test", FUSEImage: "rclone:test"}

func s3m(name, path string, mode authv1alpha1.S3MountMode) authv1alpha1.S3Mount {
	return authv1alpha1.S3Mount{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: authv1alpha1.S3MountSpec{
			Bucket: "models", Endpoint: "http://s3.local:9000", PathStyle: true, Prefix: "studio",
			MountPath: path, Mode: mode, SyncIntervalSeconds: 60,
			Selector:             metav1.LabelSelector{MatchLabels: map[string]string{"app": "comfyui"}},
			CredentialsSecretRef: &authv1alpha1.S3CredentialsRef{Name: "s3-creds", AccessKeyIDKey: "id", SecretAccessKeyKey: "secret"},
		},
	}
}

func comfyPod(labels, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "comfy", Namespace: "ns", Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "setup", Image: "busybox"}},
			Containers:     []corev1.Container{{Name: "comfyui", Image: "comfyui"}, {Name: "helper", Image: "helper"}},
		},
	}
}

var comfyLabels = map[string]string{"app": "comfyui"}

func TestDecideInjection(t *testing.T) {
	tests := []struct {
		name     string
		pod      *corev1.Pod
		mounts   []authv1alpha1.S3Mount
		injected []string
		deny     string
	}{
		{"matching pod", comfyPod(comfyLabels, nil), []authv1alpha1.S3Mount{s3m("models", "", "")}, []string{"models"}, ""},
		{"labels do not match", comfyPod(map[string]string{"app": "other"}, nil), []authv1alpha1.S3Mount{s3m("models", "", "")}, nil, ""},
		{"empty selector selects nothing", comfyPod(comfyLabels, nil), []authv1alpha1.S3Mount{func() authv1alpha1.S3Mount {
			m := s3m("models", "", "")
			m.Spec.Selector = metav1.LabelSelector{}
			return m
		}()}, nil, ""},
		{"opt-out", comfyPod(comfyLabels, map[string]string{AnnotationInject: "false"}), []authv1alpha1.S3Mount{s3m("models", "", "")}, nil, ""},
		{"already injected", comfyPod(comfyLabels, map[string]string{AnnotationInjected: "models=abc"}), []authv1alpha1.S3Mount{s3m("models", "", "")}, nil, ""},
		{"two mounts on distinct paths", comfyPod(comfyLabels, nil),
			[]authv1alpha1.S3Mount{s3m("b-loras", "/workspace/loras", ""), s3m("a-ckpt", "/workspace/ckpt", "")}, []string{"a-ckpt", "b-loras"}, ""},
		{"two mounts on one path", comfyPod(comfyLabels, nil),
			[]authv1alpha1.S3Mount{s3m("a", "/workspace/s3", ""), s3m("b", "", "")}, nil, "both match this pod"},
		{"nested paths", comfyPod(comfyLabels, nil),
			[]authv1alpha1.S3Mount{s3m("a", "/workspace/s3", ""), s3m("b", "/workspace/s3/extra", "")}, nil, "overlap"},
		{"app already uses the path", func() *corev1.Pod {
			p := comfyPod(comfyLabels, nil)
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "x", MountPath: "/workspace/s3"}}
			return p
		}(), []authv1alpha1.S3Mount{s3m("a", "", "")}, nil, "already mounts"},
		{"deleting mount is not injected", comfyPod(comfyLabels, nil), []authv1alpha1.S3Mount{func() authv1alpha1.S3Mount {
			m := s3m("a", "", "")
			m.DeletionTimestamp = &metav1.Time{}
			return m
		}()}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := DecideInjection(tc.pod, tc.mounts, testInjectCfg)
			if tc.deny != "" {
				if !strings.Contains(r.Deny, tc.deny) || r.Pod != nil {
					t.Fatalf("deny %q, want one with %q", r.Deny, tc.deny)
				}
				return
			}
			if r.Deny != "" {
				t.Fatalf("denied: %s", r.Deny)
			}
			if strings.Join(r.Injected, ",") != strings.Join(tc.injected, ",") {
				t.Fatalf("injected %v, want %v", r.Injected, tc.injected)
			}
			if len(tc.injected) == 0 {
				if r.Pod != nil {
					t.Fatal("an untouched pod must not be patched")
				}
				return
			}
			// Re-submitting the injected pod changes nothing.
			if again := DecideInjection(r.Pod, tc.mounts, testInjectCfg); again.Pod != nil || again.Deny != "" {
				t.Fatalf("second injection: %+v", again)
			}
		})
	}
}

// The Sync sidecar: a native sidecar first among the init containers, credentials by
// reference only, a startup probe, and read-only app mounts.
func TestSyncSidecarSpec(t *testing.T) {
	m := s3m("models", "", "")
	m.Spec.ModelFolders = []string{"checkpoints", "loras"}
	r := DecideInjection(comfyPod(comfyLabels, nil), []authv1alpha1.S3Mount{m}, testInjectCfg)
	p := r.Pod
	if p == nil {
		t.Fatal("not injected")
	}
	sc := p.Spec.InitContainers[0]
	if sc.Name != "s3sync-models" || p.Spec.InitContainers[1].Name != "setup" {
		t.Fatalf("init containers %v", []string{sc.Name, p.Spec.InitContainers[1].Name})
	}
	if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Fatal("the sidecar is not a native sidecar (restartPolicy: Always)")
	}
	if sc.Image != "mss-login:test" || sc.StartupProbe == nil || sc.StartupProbe.HTTPGet.Path != "/readyz" || sc.StartupProbe.HTTPGet.Port.IntVal != 9477 {
		t.Fatalf("image/probe: %s %+v", sc.Image, sc.StartupProbe)
	}
	args := strings.Join(sc.Args, " ")
	for _, want := range []string{"s3sync", "--bucket=models", "--dir=/workspace/s3", "--endpoint=http://s3.local:9000", "--path-style", "--prefix=studio", "--interval=60s", "--model-folders=checkpoints,loras", "--listen=:9477"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if len(sc.Env) != 2 {
		t.Fatalf("env %+v", sc.Env)
	}
	for i, want := range map[int][2]string{0: {"AWS_ACCESS_KEY_ID", "id"}, 1: {"AWS_SECRET_ACCESS_KEY", "secret"}} {
		e := sc.Env[i]
		if e.Name != want[0] || e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "s3-creds" || e.ValueFrom.SecretKeyRef.Key != want[1] {
			t.Errorf("env %d: %+v", i, e)
		}
	}
	if p.Spec.Volumes[0].EmptyDir == nil {
		t.Fatal("the volume is not an emptyDir")
	}
	for _, c := range p.Spec.Containers {
		vm := c.VolumeMounts[len(c.VolumeMounts)-1]
		if vm.MountPath != "/workspace/s3" || !vm.ReadOnly || vm.MountPropagation != nil {
			t.Errorf("container %s mount %+v", c.Name, vm)
		}
	}
	if p.Annotations[AnnotationInjected] != "models="+ConfigHash(&m, testInjectCfg) || p.Labels[LabelInjected] != "true" {
		t.Fatalf("metadata %v %v", p.Annotations, p.Labels)
	}

	m.Spec.PersistentVolumeClaimName, m.Spec.Output = "model-cache", true
	p = DecideInjection(comfyPod(comfyLabels, nil), []authv1alpha1.S3Mount{m}, testInjectCfg).Pod
	if p.Spec.Volumes[0].PersistentVolumeClaim == nil || p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "model-cache" {
		t.Fatal("the PVC is not used")
	}
	if p.Spec.Containers[0].VolumeMounts[0].ReadOnly {
		t.Fatal("output needs a writable mount in the app")
	}
}

// FUSE mode: privileged rclone with Bidirectional propagation, HostToContainer in the app.
func TestFUSESidecarSpec(t *testing.T) {
	m := s3m("fuse", "/mnt/models", authv1alpha1.S3MountFUSE)
	p := DecideInjection(comfyPod(comfyLabels, nil), []authv1alpha1.S3Mount{m}, testInjectCfg).Pod
	sc := p.Spec.InitContainers[0]
	if sc.Image != "rclone:test" || sc.SecurityContext == nil || sc.SecurityContext.Privileged == nil || !*sc.SecurityContext.Privileged {
		t.Fatalf("FUSE sidecar %s not privileged", sc.Image)
	}
	if got := *sc.VolumeMounts[0].MountPropagation; got != corev1.MountPropagationBidirectional {
		t.Fatalf("sidecar propagation %s", got)
	}
	if got := *p.Spec.Containers[0].VolumeMounts[0].MountPropagation; got != corev1.MountPropagationHostToContainer {
		t.Fatalf("app propagation %s", got)
	}
	args := strings.Join(sc.Args, " ")
	for _, want := range []string{"mount :s3:models/studio /mnt/models", "--s3-endpoint=http://s3.local:9000", "--s3-force-path-style=true", "--read-only", "--allow-other"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if sc.Env[0].Name != "RCLONE_S3_ACCESS_KEY_ID" || sc.Env[0].ValueFrom == nil || sc.Env[1].Name != "RCLONE_S3_SECRET_ACCESS_KEY" {
		t.Fatalf("env %+v", sc.Env)
	}
	if sc.StartupProbe == nil || sc.StartupProbe.Exec == nil {
		t.Fatal("no startup probe on the mount")
	}
}

func TestConfigHashFollowsSpec(t *testing.T) {
	a := s3m("a", "", "")
	b := a
	b.Spec.Bucket = "other"
	if ConfigHash(&a, testInjectCfg) == ConfigHash(&b, testInjectCfg) {
		t.Fatal("a spec change must change the hash")
	}
	if ConfigHash(&a, testInjectCfg) != ConfigHash(&a, testInjectCfg) {
		t.Fatal("the hash must be stable")
	}
	if ConfigHash(&a, testInjectCfg) == ConfigHash(&a, InjectConfig{SyncImage: "new"}) {
		t.Fatal("a new sidecar image must change the hash")
	}
}

func TestValidateS3Mount(t *testing.T) {
	ok := s3m("a", "", "").Spec
	empty := ok
	empty.Selector = metav1.LabelSelector{}
	badFolder := ok
	badFolder.ModelFolders = []string{"loras", "../etc"}
	twice := ok
	twice.ModelFolders = []string{"vae", "vae"}
	badSel := ok
	badSel.Selector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Nope"}}}
	ownPath := withWorkflows(s3m("a", "", ""), "/workspace/s3/user", "").Spec
	for _, tc := range []struct {
		name string
		spec authv1alpha1.S3MountSpec
		want string
	}{{"ok", ok, ""}, {"empty selector", empty, "selects no pod"}, {"bad folder", badFolder, `"../etc"`},
		{"folder twice", twice, "twice"}, {"bad selector", badSel, "selector:"},
		{"user directory inside its own mountPath", ownPath, "overlaps mountPath /workspace/s3"}} {
		got := validateS3Mount(tc.spec)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCountPods(t *testing.T) {
	pod := func(name, ann string, phase corev1.PodPhase) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{AnnotationInjected: ann}}, Status: corev1.PodStatus{Phase: phase}}
	}
	pods := []corev1.Pod{
		pod("current", "models=h2", corev1.PodRunning),
		pod("old", "models=h1,loras=x", corev1.PodRunning),
		pod("other-mount", "loras=x", corev1.PodRunning),
		pod("done", "models=h1", corev1.PodSucceeded),
		pod("pending-old", "models=h0", corev1.PodPending),
	}
	c := countPods("models", "h2", pods)
	if c.Injected != 3 || c.OutdatedCount != 2 || strings.Join(c.Outdated, ",") != "old,pending-old" {
		t.Fatalf("%+v", c)
	}

	optedOut := pod("opted-out", "", corev1.PodRunning)
	optedOut.Annotations[AnnotationInject] = "False"
	deleting := pod("deleting", "", corev1.PodRunning)
	deleting.DeletionTimestamp = &metav1.Time{}
	names, n := uninjected("models", append(pods, optedOut, deleting, pod("bare", "", corev1.PodPending), pod("failed", "", corev1.PodFailed)))
	if n != 2 || strings.Join(names, ",") != "bare,other-mount" {
		t.Fatalf("uninjected %v (%d), want bare and other-mount", names, n)
	}
	var many []corev1.Pod
	for i := range 25 {
		many = append(many, pod(fmt.Sprintf("p%02d", i), "", corev1.PodRunning))
	}
	if names, n := uninjected("models", many); n != 25 || len(names) != maxOutdatedListed || names[0] != "p00" {
		t.Fatalf("25 pods: %d named of %d, first %q", len(names), n, names[0])
	}
}

func withWorkflows(m authv1alpha1.S3Mount, dir string, s authv1alpha1.WorkflowConflictStrategy) authv1alpha1.S3Mount {
	m.Spec.WorkflowSync = &authv1alpha1.S3WorkflowSync{UserDirectory: dir, ConflictStrategy: s, MaxWorkflowSizeMB: 5, IntervalSeconds: 30}
	return m
}

func sidecarOf(t *testing.T, p *corev1.Pod, mount string) corev1.Container {
	t.Helper()
	for _, c := range p.Spec.InitContainers {
		if c.Name == sidecarName(mount) {
			return c
		}
	}
	t.Fatalf("no sidecar for %s in %v", mount, p.Spec.InitContainers)
	return corev1.Container{}
}

func mountAt(c corev1.Container, p string) (corev1.VolumeMount, bool) {
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == p {
			return vm, true
		}
	}
	return corev1.VolumeMount{}, false
}

func TestWorkflowSyncInjection(t *testing.T) {
	t.Run("user directory on the app's volume", func(t *testing.T) {
		p := comfyPod(comfyLabels, nil)
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data", SubPath: "comfy"}}
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: new(int64(1000)), RunAsGroup: new(int64(1001))}
		r := DecideInjection(p, []authv1alpha1.S3Mount{withWorkflows(s3m("models", "", ""), "/data/user/", authv1alpha1.WorkflowS3Wins)}, testInjectCfg)
		if r.Pod == nil {
			t.Fatalf("not injected: %q", r.Deny)
		}
		sc := sidecarOf(t, r.Pod, "models")
		vm, ok := mountAt(sc, "/data")
		if !ok || vm.Name != "data" || vm.SubPath != "comfy" || vm.ReadOnly {
			t.Fatalf("sidecar does not share the app's volume read-write at /data: %+v", sc.VolumeMounts)
		}
		args := strings.Join(sc.Args, " ")
		for _, want := range []string{"--workflows-dir=/data/user", "--workflows-conflict=s3_wins", "--workflows-max-mb=5", "--workflows-interval=30s"} {
			if !strings.Contains(args, want) {
				t.Errorf("sidecar args %q lack %q", args, want)
			}
		}
		if *sc.SecurityContext.RunAsUser != 1000 || *sc.SecurityContext.RunAsGroup != 1001 {
			t.Errorf("sidecar does not run as the app's user: %+v", sc.SecurityContext)
		}
		if len(r.Pod.Spec.Volumes) != 1 {
			t.Errorf("an extra volume was added although the app has one: %v", r.Pod.Spec.Volumes)
		}
	})
	t.Run("no volume: an emptyDir in app and sidecar", func(t *testing.T) {
		r := DecideInjection(comfyPod(comfyLabels, nil), []authv1alpha1.S3Mount{withWorkflows(s3m("models", "", ""), "/comfyui/user", "")}, testInjectCfg)
		if r.Pod == nil {
			t.Fatalf("not injected: %q", r.Deny)
		}
		sc := sidecarOf(t, r.Pod, "models")
		svm, ok := mountAt(sc, "/comfyui/user")
		if !ok {
			t.Fatalf("sidecar lacks the user directory: %+v", sc.VolumeMounts)
		}
		for _, c := range r.Pod.Spec.Containers {
			if vm, ok := mountAt(c, "/comfyui/user"); !ok || vm.Name != svm.Name || vm.ReadOnly {
				t.Errorf("app container %s does not mount %s at /comfyui/user: %+v", c.Name, svm.Name, c.VolumeMounts)
			}
		}
		if !strings.Contains(strings.Join(sc.Args, " "), "--workflows-conflict=newer_wins") {
			t.Errorf("default strategy is not newer_wins: %v", sc.Args)
		}
		if sc.SecurityContext.RunAsUser != nil {
			t.Errorf("runAsUser set without one on the app: %v", *sc.SecurityContext.RunAsUser)
		}
	})
	t.Run("two mounts syncing workflows", func(t *testing.T) {
		r := DecideInjection(comfyPod(comfyLabels, nil), []authv1alpha1.S3Mount{
			withWorkflows(s3m("a", "/workspace/a", ""), "/comfyui/user", ""),
			withWorkflows(s3m("b", "/workspace/b", ""), "/comfyui/user", "")}, testInjectCfg)
		if r.Pod != nil || !strings.Contains(r.Deny, "both sync workflows") {
			t.Fatalf("want a refusal naming both, got %q", r.Deny)
		}
	})
	t.Run("second mount after one that syncs workflows", func(t *testing.T) {
		first := DecideInjection(comfyPod(comfyLabels, nil), []authv1alpha1.S3Mount{withWorkflows(s3m("a", "/workspace/a", ""), "/comfyui/user", "")}, testInjectCfg)
		r := DecideInjection(first.Pod, []authv1alpha1.S3Mount{withWorkflows(s3m("a", "/workspace/a", ""), "/comfyui/user", ""),
			withWorkflows(s3m("b", "/workspace/b", ""), "/comfyui/user", "")}, testInjectCfg)
		if r.Pod != nil || !strings.Contains(r.Deny, "S3Mount b and S3Mount a") {
			t.Fatalf("want a refusal naming a and b, got %q", r.Deny)
		}
	})
	t.Run("user directory inside the model path", func(t *testing.T) {
		r := DecideInjection(comfyPod(comfyLabels, nil), []authv1alpha1.S3Mount{withWorkflows(s3m("a", "/workspace/s3", ""), "/workspace/s3/user", "")}, testInjectCfg)
		if r.Pod != nil || !strings.Contains(r.Deny, "overlaps mountPath") {
			t.Fatalf("want an overlap refusal, got %q", r.Deny)
		}
	})
}

// Names derived from an S3Mount's (which may hold dots and be 253 long) are valid container
// and volume names, distinct for distinct mounts, and never take a volume name the pod uses.
func TestInjectedNames(t *testing.T) {
	long := strings.Repeat("m", 240)
	seen := map[string]string{}
	for _, mount := range []string{"models", "sd1.5-models", "sd1-5-models", "a.b", "a-b", long, long + "x"} {
		for _, n := range []string{sidecarName(mount), volumeName(mount), dnsLabel("s3wf-" + mount)} {
			if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
				t.Errorf("%q from %q: %v", n, mount, errs)
			}
			if other, ok := seen[n]; ok && other != mount {
				t.Errorf("%q and %q both give %q", other, mount, n)
			}
			seen[n] = mount
		}
	}
	if sidecarName("models") != "s3sync-models" {
		t.Errorf("a plain name changed: %q", sidecarName("models"))
	}

	p := comfyPod(comfyLabels, nil)
	p.Spec.Volumes = []corev1.Volume{{Name: "s3-models"}, {Name: "s3wf-models"}}
	r := DecideInjection(p, []authv1alpha1.S3Mount{withWorkflows(s3m("models", "", ""), "/comfyui/user", "")}, testInjectCfg)
	if r.Pod == nil {
		t.Fatalf("not injected: %s", r.Deny)
	}
	names := map[string]int{}
	for _, v := range r.Pod.Spec.Volumes {
		names[v.Name]++
	}
	if len(r.Pod.Spec.Volumes) != 4 || names["s3-models"] != 1 || names["s3wf-models"] != 1 {
		t.Fatalf("volumes %v: the injected ones must get names of their own", names)
	}
}

// The sidecar mounts the user directory as the app container that holds it does: nested
// mounts too, subPathExpr with its variables, as that container's user.
func TestWorkflowSyncUserDirectoryShapes(t *testing.T) {
	mount := []authv1alpha1.S3Mount{withWorkflows(s3m("models", "", ""), "/comfyui/user", "")}
	p := comfyPod(comfyLabels, nil)
	p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: new(int64(7))}
	p.Spec.Containers[1].SecurityContext = &corev1.SecurityContext{RunAsUser: new(int64(1000))}
	p.Spec.Containers[1].Env = []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "OTHER", Value: "x"}}
	p.Spec.Containers[1].VolumeMounts = []corev1.VolumeMount{
		{Name: "data", MountPath: "/comfyui/user", SubPathExpr: "users/$(POD_NAME)"},
		{Name: "alice", MountPath: "/comfyui/user/alice"},
		{Name: "models", MountPath: "/comfyui/models"},
	}
	r := DecideInjection(p, mount, testInjectCfg)
	if r.Pod == nil {
		t.Fatalf("not injected: %s", r.Deny)
	}
	sc := sidecarOf(t, r.Pod, "models")
	if vm, ok := mountAt(sc, "/comfyui/user"); !ok || vm.SubPathExpr != "users/$(POD_NAME)" {
		t.Errorf("user directory mount %+v", sc.VolumeMounts)
	}
	if _, ok := mountAt(sc, "/comfyui/user/alice"); !ok {
		t.Errorf("the nested mount is not shared: %+v", sc.VolumeMounts)
	}
	if _, ok := mountAt(sc, "/comfyui/models"); ok {
		t.Errorf("a mount outside the user directory was shared")
	}
	if len(sc.Env) != 3 || sc.Env[2].Name != "POD_NAME" || sc.Env[2].ValueFrom.FieldRef == nil {
		t.Errorf("sidecar env %+v: want the credentials and POD_NAME only", sc.Env)
	}
	if *sc.SecurityContext.RunAsUser != 1000 {
		t.Errorf("sidecar runs as %d, want the owning container's 1000", *sc.SecurityContext.RunAsUser)
	}

	p.Spec.Containers[1].Env = nil
	if r := DecideInjection(p, mount, testInjectCfg); r.Pod != nil || !strings.Contains(r.Deny, "subPathExpr") {
		t.Fatalf("subPathExpr without its variable: %q", r.Deny)
	}
}
