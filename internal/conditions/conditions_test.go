package conditions

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSet(t *testing.T) {
	var conds []metav1.Condition
	if !Set(&conds, metav1.Condition{Type: "Ready", Status: Status(true), Reason: "Applied", Message: "ok"}, 3) {
		t.Fatal("a new condition is not a change")
	}
	if c := conds[0]; c.ObservedGeneration != 3 || c.Status != metav1.ConditionTrue || c.LastTransitionTime.IsZero() {
		t.Fatalf("condition %+v", c)
	}
	if Set(&conds, metav1.Condition{Type: "Ready", Status: Status(true), Reason: "Applied", Message: "ok"}, 3) {
		t.Fatal("setting the same condition again is a change")
	}
	Set(&conds, metav1.Condition{Type: "Ready", Status: Status(false), Reason: "Failed", Message: strings.Repeat("x", MaxMessage+10)}, 4)
	if len(conds) != 1 || conds[0].Message != strings.Repeat("x", MaxMessage)+"…" || conds[0].ObservedGeneration != 4 {
		t.Fatalf("long message kept as %d bytes, generation %d", len(conds[0].Message), conds[0].ObservedGeneration)
	}
}
