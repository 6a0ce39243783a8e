package controllers

import (
	"fmt"
	"path"
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
		for _, o := range todo {
			if overlaps(ud, mountPathOf(o)) {
				return fmt.Sprintf("S3Mount %s: workflowSync.userDirectory %s overlaps mountPath %s of S3Mount %s", m.Name, ud, mountPathOf(o), o.Name)
			}
		}
	}
	return ""
}

// userDirMount finds the app container mount that holds dir (the deepest one).
func userDirMount(pod *corev1.Pod, dir string) (corev1.VolumeMount, bool) {
	var best corev1.VolumeMount
	found := false
	for _, c := range pod.Spec.Containers {
		for _, vm := range c.VolumeMounts {
			mp := path.Clean(vm.MountPath)
			if (mp == dir || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && (!found || len(mp) > len(path.Clean(best.MountPath))) {
				best, found = vm, true
			}
		}
	}
	return best, found
}

// addWorkflowSync gives the sidecar ComfyUI's user directory and the workflow flags. The
// directory comes from the volume an app container mounts there; with none, an emptyDir is
// mounted there in every app container (the bucket then keeps the workflows across restarts).
// The sidecar runs as the first app container's user, so that ComfyUI can write the files and
// folders it creates.
func addWorkflowSync(pod *corev1.Pod, m *authv1alpha1.S3Mount, sidecar *corev1.Container) {
	wf := m.Spec.WorkflowSync
	dir := path.Clean(wf.UserDirectory)
	vm, ok := userDirMount(pod, dir)
	if ok {
		sidecar.VolumeMounts = append(sidecar.VolumeMounts, corev1.VolumeMount{Name: vm.Name, MountPath: vm.MountPath,
			SubPath: vm.SubPath, SubPathExpr: vm.SubPathExpr})
	} else {
		name := dnsLabel("s3wf-" + m.Name)
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		for i := range pod.Spec.Containers {
			pod.Spec.Containers[i].VolumeMounts = append(pod.Spec.Containers[i].VolumeMounts, corev1.VolumeMount{Name: name, MountPath: dir})
		}
		sidecar.VolumeMounts = append(sidecar.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: dir})
	}
	sidecar.Args = append(sidecar.Args, workflowsDirFlag+dir,
		"--workflows-conflict="+conflictFlag(wf.ConflictStrategy),
		"--workflows-max-mb="+strconv.Itoa(int(orDefault(wf.MaxWorkflowSizeMB, 50))),
		"--workflows-interval="+strconv.Itoa(int(orDefault(wf.IntervalSeconds, 120)))+"s")
	if len(pod.Spec.Containers) > 0 {
		if app := pod.Spec.Containers[0].SecurityContext; app != nil {
			sidecar.SecurityContext.RunAsUser = app.RunAsUser
			sidecar.SecurityContext.RunAsGroup = app.RunAsGroup
		}
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
