package s3mount

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
)

// maxOutdatedListed caps status.outdatedPods; the count is in the condition message.
const maxOutdatedListed = 20

var s3FolderName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// validateS3Mount finds what the API server's schema cannot: an empty or broken selector
// (it would match no pod) and model folder names that s3sync refuses.
func validateS3Mount(spec authv1alpha1.S3MountSpec) string {
	var problems []string
	if selectsNothing(spec.Selector) {
		problems = append(problems, "selector is empty: it selects no pod (name the labels of the ComfyUI pods)")
	} else if _, err := metav1.LabelSelectorAsSelector(&spec.Selector); err != nil {
		problems = append(problems, "selector: "+err.Error())
	}
	if wf := spec.WorkflowSync; wf != nil {
		if mp := mountPathOf(spec); overlaps(path.Clean(wf.UserDirectory), mp) {
			problems = append(problems, fmt.Sprintf("workflowSync.userDirectory %s overlaps mountPath %s: every pod would be refused", wf.UserDirectory, mp))
		}
	}
	seen := map[string]bool{}
	for _, f := range spec.ModelFolders {
		if !s3FolderName.MatchString(f) {
			problems = append(problems, fmt.Sprintf("modelFolders: %q is not a folder name (letters, digits, '_', '.', '-')", f))
		} else if seen[f] {
			problems = append(problems, fmt.Sprintf("modelFolders: %q is listed twice", f))
		}
		seen[f] = true
	}
	return strings.Join(problems, "; ")
}

// podCensus is what the controller reports about the pods of one mount.
type podCensus struct {
	Injected      int
	Outdated      []string // sorted, at most maxOutdatedListed
	OutdatedCount int
}

// countPods reads the injection annotation of the namespace's injected pods: how many run this
// mount, and which of them with a configuration other than hash. Pods that are finished or
// being deleted do not count.
func countPods(mount, hash string, pods []corev1.Pod) podCensus {
	var c podCensus
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		h, ok := parseInjected(p.Annotations[AnnotationInjected])[mount]
		if !ok {
			continue
		}
		c.Injected++
		if h != hash {
			c.OutdatedCount++
			c.Outdated = append(c.Outdated, p.Name)
		}
	}
	sort.Strings(c.Outdated)
	if len(c.Outdated) > maxOutdatedListed {
		c.Outdated = c.Outdated[:maxOutdatedListed]
	}
	return c
}

// uninjected names the pods of a selector's list that should run the mount's sidecar and do
// not: not opted out, not finished or being deleted, and without the mount in their injection
// annotation. Sorted; the count is returned with the list cut to maxOutdatedListed.
func uninjected(mount string, pods []corev1.Pod) ([]string, int) {
	var names []string
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed ||
			strings.EqualFold(p.Annotations[AnnotationInject], "false") {
			continue
		}
		if _, ok := parseInjected(p.Annotations[AnnotationInjected])[mount]; !ok {
			names = append(names, p.Name)
		}
	}
	sort.Strings(names)
	n := len(names)
	if n > maxOutdatedListed {
		names = names[:maxOutdatedListed]
	}
	return names, n
}
