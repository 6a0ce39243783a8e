// Package s3mount owns the S3Mount kind: its controller (controller.go: it checks a mount's
// spec, Secret and bucket, records the bucket's models for the auth servers, and counts the
// pods that run its sidecar into the status), and what injection puts into a pod
// (inject.go, workflows.go: the pure decision DecideInjection, which the pod webhook in
// internal/webhook/v1 serves). Pure decisions are in decide.go and inject.go, with table
// tests; controller_test.go runs the controller and the webhook against a real API server
// and a real S3 server.
package s3mount
