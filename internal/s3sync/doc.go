// Package s3sync fills a directory from an S3 bucket: the engine behind `mss-login s3sync`,
// the sidecar that an S3Mount injects into ComfyUI pods.
//
// One sync lists the bucket once, compares every object's size, ETag and last-modified time
// with a small state file kept next to the data, downloads only what changed (in parallel,
// large objects in ranged parts), writes each file under a temporary name and renames it into
// place so ComfyUI never sees a half-written model, and removes files whose objects are gone.
// Files that the engine did not write are never touched. makePlan (plan.go) decides a sync
// without I/O; Syncer (sync.go) lists, plans and applies; with Output, output files are
// uploaded (upload.go).
//
// WorkflowSync keeps each ComfyUI user's workflows in step with the bucket, both ways and
// deletions included, in the same shape: gather both sides and the baseline, plan
// (planWorkflows, pure: wfplan.go), apply (workflows.go). Everything under ComfyUI's user
// directory is reached without following a symbolic link (safefs.go); writes to the bucket are
// conditional on the object being as listed (wfs3.go). docs/s3.md has the rules and why.
package s3sync
