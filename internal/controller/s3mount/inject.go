package s3mount

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
)

// Pod metadata the S3Mount webhook reads and writes.
const (
	// AnnotationInject set to "false" on a pod opts it out of every S3Mount.
	AnnotationInject = "s3.mss-login.dev/inject"
	// AnnotationInjected lists the mounts injected into a pod as "name=configHash,…": it makes
	// injection idempotent and tells the controller which pods run an older configuration.
	AnnotationInjected = "s3.mss-login.dev/injected"
	// LabelInjected marks injected pods, so the controller lists only those.
	LabelInjected = "s3.mss-login.dev/injected"
)

// sidecarPortBase is the port of the first sidecar's probe endpoint; a second S3Mount in the
// same pod gets the next one (containers of a pod share its network namespace).
const sidecarPortBase = 9477

// InjectConfig is the operator-wide part of injection.
type InjectConfig struct {
	// SyncImage runs `mss-login s3sync` (the operator's own image).
	SyncImage string
	// FUSEImage runs `rclone mount` in FUSE mode.
	FUSEImage string
}

// InjectResult is what the webhook does with a pod.
type InjectResult struct {
	Pod      *corev1.Pod // the pod to admit (a copy; nil when untouched)
	Injected []string    // mounts injected now
	Deny     string      // refusal, said so that `kubectl describe replicaset` explains it
}

// ConfigHash identifies what a mount puts into a pod: the spec and the images. Pods keep the
// hash they were given; a pod with another hash runs an older configuration.
func ConfigHash(m *authv1alpha1.S3Mount, cfg InjectConfig) string {
	b, _ := json.Marshal(struct {
		Spec  authv1alpha1.S3MountSpec
		Cfg   InjectConfig
		Proto int
	}{m.Spec, cfg, 1})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}

// parseInjected reads AnnotationInjected ("a=hash,b=hash").
func parseInjected(v string) map[string]string {
	out := map[string]string{}
	for _, item := range strings.Split(v, ",") {
		if name, hash, ok := strings.Cut(strings.TrimSpace(item), "="); ok && name != "" {
			out[name] = hash
		}
	}
	return out
}

func formatInjected(m map[string]string) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + m[n]
	}
	return strings.Join(parts, ",")
}

// matches reports whether a mount's selector selects the pod. An empty selector selects no
// pod: bringing a bucket into every pod of a namespace must be asked for by a label.
func matches(m *authv1alpha1.S3Mount, pod *corev1.Pod) bool {
	sel, ok := podSelector(m)
	return ok && sel.Matches(labels.Set(pod.Labels))
}

// podSelector is the mount's selector; ok is false when it selects no pod: empty, or invalid
// (which the controller reports as InvalidSpec).
func podSelector(m *authv1alpha1.S3Mount) (sel labels.Selector, ok bool) {
	if selectsNothing(m.Spec.Selector) {
		return nil, false
	}
	sel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
	return sel, err == nil
}

func selectsNothing(s metav1.LabelSelector) bool {
	return len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}

func mountPathOf(spec authv1alpha1.S3MountSpec) string {
	if spec.MountPath == "" {
		return "/workspace/s3"
	}
	return path.Clean(spec.MountPath)
}

// overlaps: one path equals or contains the other.
func overlaps(a, b string) bool {
	return a == b || strings.HasPrefix(a, strings.TrimSuffix(b, "/")+"/") || strings.HasPrefix(b, strings.TrimSuffix(a, "/")+"/")
}

// DecideInjection is the webhook's whole decision for one pod, a pure function. Rules:
//   - the opt-out annotation leaves the pod alone;
//   - mounts already injected (named in the annotation) are not injected again;
//   - every matching mount is injected, each on its own path; two mounts whose paths are equal
//     or nested cannot both be, and the pod is refused with a message naming both (silently
//     dropping one would give ComfyUI half the models it was promised);
//   - a mount whose path an app container already uses is refused the same way.
func DecideInjection(pod *corev1.Pod, mounts []authv1alpha1.S3Mount, cfg InjectConfig) InjectResult {
	if strings.EqualFold(pod.Annotations[AnnotationInject], "false") {
		return InjectResult{}
	}
	done := parseInjected(pod.Annotations[AnnotationInjected])
	var todo []*authv1alpha1.S3Mount
	for i := range mounts {
		m := &mounts[i]
		if m.DeletionTimestamp != nil || !matches(m, pod) {
			continue
		}
		if _, ok := done[m.Name]; ok || hasContainer(pod, sidecarName(m.Name)) {
			continue
		}
		todo = append(todo, m)
	}
	if len(todo) == 0 {
		return InjectResult{}
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].Name < todo[j].Name })

	// Paths already taken: by mounts injected before, then by each mount as it is placed.
	taken := map[string]string{}
	for _, c := range pod.Spec.InitContainers {
		if name, ok := strings.CutPrefix(c.Name, "s3sync-"); ok {
			for _, vm := range c.VolumeMounts {
				taken[path.Clean(vm.MountPath)] = "S3Mount " + name
			}
		}
	}
	for _, m := range todo {
		p := mountPathOf(m.Spec)
		for other, who := range taken {
			if overlaps(p, other) {
				return InjectResult{Deny: fmt.Sprintf("S3Mount %s (mountPath %s) and %s (mountPath %s) both match this pod and their paths overlap; give them distinct, non-nested mountPaths or narrow a selector", m.Name, p, who, other)}
			}
		}
		for _, c := range pod.Spec.Containers {
			for _, vm := range c.VolumeMounts {
				if overlaps(p, path.Clean(vm.MountPath)) {
					return InjectResult{Deny: fmt.Sprintf("S3Mount %s: container %s already mounts %s, which overlaps mountPath %s", m.Name, c.Name, vm.MountPath, p)}
				}
			}
		}
		taken[p] = "S3Mount " + m.Name
	}
	if deny := checkWorkflowSync(pod, todo); deny != "" {
		return InjectResult{Deny: deny}
	}

	out := pod.DeepCopy()
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	var names []string
	for _, m := range todo {
		port := sidecarPortBase + len(done)
		injectOne(out, m, cfg, port)
		done[m.Name] = ConfigHash(m, cfg)
		names = append(names, m.Name)
	}
	out.Annotations[AnnotationInjected] = formatInjected(done)
	out.Labels[LabelInjected] = "true"
	return InjectResult{Pod: out, Injected: names}
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// sidecarName and volumeName are derived from the mount's name as DNS labels, the form
// container and volume names must have: an S3Mount's name may hold dots and be 253 long.
func sidecarName(mount string) string { return dnsLabel("s3sync-" + mount) }
func volumeName(mount string) string  { return dnsLabel("s3-" + mount) }

// dnsLabel turns s into a DNS-1123 label (lower-case letters, digits, '-', at most 63). When it
// had to change s (a dot replaced, or cut) it adds a hash of s, so two names stay distinct.
func dnsLabel(s string) string {
	l := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
	if l == s && len(s) <= 63 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	if len(l) > 54 {
		l = l[:54]
	}
	return strings.Trim(l, "-") + "-" + hex.EncodeToString(sum[:])[:8]
}

// freeVolumeName is name, or name with a suffix when the pod already has a volume by that
// name (an injected volume must never replace or collide with the app's).
func freeVolumeName(pod *corev1.Pod, name string) string {
	taken := func(n string) bool {
		for _, v := range pod.Spec.Volumes {
			if v.Name == n {
				return true
			}
		}
		return false
	}
	for i := 2; taken(name); i++ {
		name = dnsLabel(fmt.Sprintf("%s-%d", strings.TrimSuffix(name, "-"), i))
	}
	return name
}

// injectOne adds the volume, the sidecar and the app mounts of one S3Mount to pod.
func injectOne(pod *corev1.Pod, m *authv1alpha1.S3Mount, cfg InjectConfig, port int) {
	mp := mountPathOf(m.Spec)
	vol := corev1.Volume{Name: freeVolumeName(pod, volumeName(m.Name)), VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	if m.Spec.PersistentVolumeClaimName != "" && m.Spec.Mode != authv1alpha1.S3MountFUSE {
		vol.VolumeSource = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: m.Spec.PersistentVolumeClaimName}}
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, vol)

	var sidecar corev1.Container
	appMount := corev1.VolumeMount{Name: vol.Name, MountPath: mp, ReadOnly: !(m.Spec.Writable || m.Spec.Output)}
	if m.Spec.Mode == authv1alpha1.S3MountFUSE {
		sidecar = fuseSidecar(m, cfg, vol.Name, mp)
		appMount.MountPropagation = ptr.To(corev1.MountPropagationHostToContainer)
	} else {
		sidecar = syncSidecar(m, cfg, vol.Name, mp, port)
		if m.Spec.WorkflowSync != nil {
			addWorkflowSync(pod, m, &sidecar)
		}
	}
	// First among the init containers: the models are there before any other init container
	// (or ComfyUI) starts, and the sidecar outlives them all.
	pod.Spec.InitContainers = append([]corev1.Container{sidecar}, pod.Spec.InitContainers...)
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].VolumeMounts = append(pod.Spec.Containers[i].VolumeMounts, appMount)
	}
}

// credentialEnv maps the Secret's keys to the variables the sidecar reads, by reference: the
// values are never in the pod spec.
func credentialEnv(m *authv1alpha1.S3Mount, idVar, secretVar string) []corev1.EnvVar {
	ref := m.Spec.CredentialsSecretRef
	if ref == nil {
		return nil
	}
	idKey, secretKey := credentialKeys(ref)
	from := func(key string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name}, Key: key}}
	}
	return []corev1.EnvVar{{Name: idVar, ValueFrom: from(idKey)}, {Name: secretVar, ValueFrom: from(secretKey)}}
}

// credentialKeys are the Secret's keys of the access key id and the secret access key.
func credentialKeys(ref *authv1alpha1.S3CredentialsRef) (idKey, secretKey string) {
	return cmp.Or(ref.AccessKeyIDKey, "AWS_ACCESS_KEY_ID"), cmp.Or(ref.SecretAccessKeyKey, "AWS_SECRET_ACCESS_KEY")
}

func syncSidecar(m *authv1alpha1.S3Mount, cfg InjectConfig, vol, mp string, port int) corev1.Container {
	s := m.Spec
	args := []string{"s3sync", "--bucket=" + s.Bucket, "--dir=" + mp, "--interval=" + strconv.Itoa(int(orDefault(s.SyncIntervalSeconds, 300))) + "s",
		"--listen=:" + strconv.Itoa(port)}
	if s.Endpoint != "" {
		args = append(args, "--endpoint="+s.Endpoint)
	}
	if s.Region != "" {
		args = append(args, "--region="+s.Region)
	}
	if s.Prefix != "" {
		args = append(args, "--prefix="+s.Prefix)
	}
	if s.PathStyle {
		args = append(args, "--path-style")
	}
	if len(s.ModelFolders) > 0 {
		args = append(args, "--model-folders="+strings.Join(s.ModelFolders, ","))
	}
	if s.Input {
		args = append(args, "--input")
	}
	if s.Output && !s.ReadOnly {
		args = append(args, "--output")
	}
	probe := func(p string, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: p, Port: intstrPort(port)}},
			PeriodSeconds:    2,
			FailureThreshold: failures,
		}
	}
	return corev1.Container{
		Name:          sidecarName(m.Name),
		Image:         cmp.Or(s.Image, cfg.SyncImage),
		Args:          args,
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Env:           credentialEnv(m, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
		VolumeMounts:  []corev1.VolumeMount{{Name: vol, MountPath: mp}},
		// The first sync of large checkpoints can take long: the startup probe waits up to
		// 2 hours (2 s × 3600) before the kubelet gives up and restarts the sidecar.
		StartupProbe:  probe("/readyz", 3600),
		LivenessProbe: probe("/healthz", 5),
		Ports:         []corev1.ContainerPort{{Name: "s3sync-probe", ContainerPort: int32(port)}},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}

// fuseSidecar mounts the bucket with rclone. It must be privileged (FUSE needs /dev/fuse and
// CAP_SYS_ADMIN) and propagate its mount (Bidirectional) to the app's HostToContainer mount:
// the namespace needs the "privileged" Pod Security level.
func fuseSidecar(m *authv1alpha1.S3Mount, cfg InjectConfig, vol, mp string) corev1.Container {
	s := m.Spec
	remote := ":s3:" + path.Join(s.Bucket, strings.Trim(s.Prefix, "/"))
	args := []string{"mount", remote, mp, "--s3-provider=Other", "--allow-other", "--allow-non-empty",
		"--vfs-cache-mode=minimal", "--dir-cache-time=" + strconv.Itoa(int(max(s.SyncIntervalSeconds, 10))) + "s"}
	if s.Endpoint != "" {
		args = append(args, "--s3-endpoint="+s.Endpoint)
	}
	if s.Region != "" {
		args = append(args, "--s3-region="+s.Region)
	}
	if s.PathStyle {
		args = append(args, "--s3-force-path-style=true")
	}
	if s.ReadOnly || !(s.Writable || s.Output) {
		args = append(args, "--read-only")
	}
	env := credentialEnv(m, "RCLONE_S3_ACCESS_KEY_ID", "RCLONE_S3_SECRET_ACCESS_KEY")
	if s.CredentialsSecretRef == nil {
		env = append(env, corev1.EnvVar{Name: "RCLONE_S3_ENV_AUTH", Value: "false"})
	}
	return corev1.Container{
		Name:          sidecarName(m.Name),
		Image:         cmp.Or(s.Image, cfg.FUSEImage),
		Args:          args,
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Env:           env,
		VolumeMounts: []corev1.VolumeMount{{Name: vol, MountPath: mp,
			MountPropagation: ptr.To(corev1.MountPropagationBidirectional)}},
		// Ready when the mount is in the mount table; the app waits for it.
		StartupProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "grep -qs ' " + mp + " fuse' /proc/mounts"}}},
			PeriodSeconds:    1,
			FailureThreshold: 120,
		},
		SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
		// rclone unmounts on SIGTERM; the kubelet stops sidecars after the app containers.
	}
}

func intstrPort(p int) intstr.IntOrString { return intstr.FromInt32(int32(p)) }
