package s3mount

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/s3sync"
)

// Workflow sync in the pod: the sidecar runs `s3sync --workflows-dir=<userDirectory>` and must
// see ComfyUI's user directory at the same path as the app containers do.

const workflowsDirFlag = "--workflows-dir="

// checkWorkflowSync refuses what cannot work: two mounts syncing workflows into one pod (two
// sidecars writing the same files, perhaps to two buckets), or a user directory that overlaps
// a synced model folder.
func checkWorkflowSync(pod *corev1.Pod, todo []*authv1alpha1.S3Mount) string {
	owner := ""
	for _, c := range pod.Spec.InitContainers {
		if name, ok := strings.CutPrefix(c.Name, "s3sync-"); ok {
			for _, a := range c.Args {
				if strings.HasPrefix(a, workflowsDirFlag) {
					owner = name
				}
			}
		}
	}
	for _, m := range todo {
		wf := m.Spec.WorkflowSync
		if wf == nil {
			continue
		}
		if owner != "" {
			return fmt.Sprintf("S3Mount %s and S3Mount %s both sync workflows into this pod; enable workflowSync on one of them", m.Name, owner)
		}
		owner = m.Name
		ud := path.Clean(wf.UserDirectory)
		if u := planUserDir(pod, ud); u.deny != "" {
			return fmt.Sprintf("S3Mount %s: %s", m.Name, u.deny)
		}
		for _, o := range todo {
			if overlaps(ud, mountPathOf(o.Spec)) {
				return fmt.Sprintf("S3Mount %s: workflowSync.userDirectory %s overlaps mountPath %s of S3Mount %s", m.Name, ud, mountPathOf(o.Spec), o.Name)
			}
		}
	}
	return ""
}

// userDir is how the sidecar gets ComfyUI's user directory.
type userDir struct {
	owner  int                  // the app container that mounts it; -1: none (an emptyDir is added)
	mounts []corev1.VolumeMount // the owner's mounts holding dir and those nested under it
	env    []corev1.EnvVar      // variables the mounts' subPathExpr use, from the owner
	deny   string               // why the pod cannot be injected
}

var subPathVar = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// planUserDir finds the app container mount that holds dir (the deepest), and with it that
// container's mounts nested under dir, so that the sidecar sees the same files as ComfyUI.
func planUserDir(pod *corev1.Pod, dir string) userDir {
	u := userDir{owner: -1}
	best := ""
	for i, c := range pod.Spec.Containers {
		for _, vm := range c.VolumeMounts {
			mp := path.Clean(vm.MountPath)
			if (mp == dir || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && (u.owner < 0 || len(mp) > len(best)) {
				u.owner, best = i, mp
			}
		}
	}
	if u.owner < 0 {
		return u
	}
	c := pod.Spec.Containers[u.owner]
	need := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		mp := path.Clean(vm.MountPath)
		if mp != best && !strings.HasPrefix(mp, dir+"/") {
			continue
		}
		u.mounts = append(u.mounts, corev1.VolumeMount{Name: vm.Name, MountPath: vm.MountPath, SubPath: vm.SubPath, SubPathExpr: vm.SubPathExpr})
		for _, m := range subPathVar.FindAllStringSubmatch(vm.SubPathExpr, -1) {
			need[m[1]] = true
		}
	}
	for _, e := range c.Env {
		if need[e.Name] {
			u.env = append(u.env, e)
			delete(need, e.Name)
		}
	}
	if len(need) > 0 {
		u.deny = fmt.Sprintf("container %s mounts %s with a subPathExpr whose variables are not all set in its env; the s3sync sidecar cannot mount it the same way", c.Name, best)
	}
	return u
}

// addWorkflowSync gives the sidecar ComfyUI's user directory and the workflow flags. The
// directory comes from the volumes the app container mounts there; with none, an emptyDir is
// mounted there in every app container (the bucket then keeps the workflows across restarts).
// The sidecar runs as the app container's user when it names one (else as the pod's), so that
// ComfyUI can write the files and folders the sidecar creates.
func addWorkflowSync(pod *corev1.Pod, m *authv1alpha1.S3Mount, sidecar *corev1.Container) {
	wf := m.Spec.WorkflowSync
	dir := path.Clean(wf.UserDirectory)
	u := planUserDir(pod, dir)
	var app *corev1.Container
	if u.owner >= 0 {
		sidecar.VolumeMounts = append(sidecar.VolumeMounts, u.mounts...)
		sidecar.Env = append(sidecar.Env, u.env...)
		app = &pod.Spec.Containers[u.owner]
	} else {
		name := freeVolumeName(pod, dnsLabel("s3wf-"+m.Name))
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		for i := range pod.Spec.Containers {
			pod.Spec.Containers[i].VolumeMounts = append(pod.Spec.Containers[i].VolumeMounts, corev1.VolumeMount{Name: name, MountPath: dir})
			if app == nil && pod.Spec.Containers[i].SecurityContext != nil && pod.Spec.Containers[i].SecurityContext.RunAsUser != nil {
				app = &pod.Spec.Containers[i]
			}
		}
		sidecar.VolumeMounts = append(sidecar.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: dir})
	}
	sidecar.Args = append(sidecar.Args, workflowsDirFlag+dir,
		"--workflows-conflict="+conflictFlag(wf.ConflictStrategy),
		"--workflows-max-mb="+strconv.Itoa(int(orDefault(wf.MaxWorkflowSizeMB, 50))),
		"--workflows-interval="+strconv.Itoa(int(orDefault(wf.IntervalSeconds, 120)))+"s")
	if app != nil && app.SecurityContext != nil {
		sidecar.SecurityContext.RunAsUser = app.SecurityContext.RunAsUser
		sidecar.SecurityContext.RunAsGroup = app.SecurityContext.RunAsGroup
	}
}

// conflictFlag maps the API's strategy to s3sync's (the original's names).
func conflictFlag(s authv1alpha1.WorkflowConflictStrategy) string {
	switch s {
	case authv1alpha1.WorkflowLocalWins:
		return s3sync.LocalWins
	case authv1alpha1.WorkflowS3Wins:
		return s3sync.S3Wins
	}
	return s3sync.NewerWins
}

func orDefault(v, def int32) int32 {
	if v <= 0 {
		return def
	}
	return v
}
