// Package conditions owns how the mss-login controllers write the status conditions of their
// resources: every condition carries the generation it was observed at, and its message is cut
// to a length the API server accepts.
package conditions

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxMessage is the longest message kept, in bytes (the API allows 32768); a longer one is cut
// and ends in "…".
const MaxMessage = 4096

// Set puts c into conds (replacing the condition of its type) with its observedGeneration set
// to generation and its message cut to MaxMessage. It reports whether conds changed.
func Set(conds *[]metav1.Condition, c metav1.Condition, generation int64) bool {
	if len(c.Message) > MaxMessage {
		c.Message = c.Message[:MaxMessage] + "…"
	}
	c.ObservedGeneration = generation
	return meta.SetStatusCondition(conds, c)
}

// Status is True when ok, else False.
func Status(ok bool) metav1.ConditionStatus {
	if ok {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}
