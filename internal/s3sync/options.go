package s3sync

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// DefaultModelFolders are the original's s3_storage.mount.model_folders, in its order.
var DefaultModelFolders = []string{
	"checkpoints", "loras", "vae", "embeddings", "controlnet", "upscale_models", "clip",
	"clip_vision", "diffusion_models", "text_encoders", "hypernetworks", "vae_approx",
}

// Options configure a Syncer.
type Options struct {
	// Endpoint of an S3-compatible server ("" = AWS), Region (default us-east-1), Bucket.
	Endpoint, Region, Bucket string
	// Prefix inside the bucket; slashes at either end are ignored (as in the original).
	Prefix string
	// PathStyle addressing, which most self-hosted servers need.
	PathStyle bool
	// AccessKeyID, SecretAccessKey, SessionToken: static credentials. Both keys empty means
	// anonymous requests (a public bucket). They are never logged or written anywhere.
	AccessKeyID, SecretAccessKey, SessionToken string

	// Dir is the local directory to fill: Dir/models/<folder>/…, Dir/input/…
	Dir string
	// ModelFolders to sync from <prefix>/models/<folder>/ (DefaultModelFolders when empty).
	ModelFolders []string
	// Input also syncs <prefix>/input/ into Dir/input.
	Input bool
	// Output uploads new or changed files of Dir/output to <prefix>/output/ (never deletes).
	Output bool
	// MountPath is where the app containers see Dir, for extra_model_paths.yaml (default Dir).
	MountPath string

	// Interval between syncs in Run (default 5 minutes).
	Interval time.Duration
	// Concurrency bounds the S3 requests in flight at once (default 8).
	Concurrency int
	// PartSize is the size of one ranged GET for large objects (default 16 MiB); objects larger
	// than MultipartThreshold (default 64 MiB) are fetched in parts.
	PartSize, MultipartThreshold int64

	// HTTPClient replaces the SDK's HTTP client (tests put a faulty network in between).
	HTTPClient interface {
		Do(*http.Request) (*http.Response, error)
	}
	// Logf receives progress and problems (default: discarded). Never given a credential.
	Logf func(format string, args ...any)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// folderName is what a model folder may be called: a path segment ComfyUI knows, nothing that
// could climb out of Dir.
var folderName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func (o *Options) defaults() {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	o.Prefix = strings.Trim(o.Prefix, "/")
	if len(o.ModelFolders) == 0 {
		o.ModelFolders = DefaultModelFolders
	}
	if o.MountPath == "" {
		o.MountPath = o.Dir
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Minute
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.PartSize <= 0 {
		o.PartSize = 16 << 20
	}
	if o.MultipartThreshold <= 0 {
		o.MultipartThreshold = 64 << 20
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// validate reports every problem with o at once (after defaults).
func (o *Options) validate() error {
	var errs []error
	if o.Bucket == "" {
		errs = append(errs, errors.New("bucket is required"))
	}
	if o.Dir == "" {
		errs = append(errs, errors.New("dir is required"))
	}
	if o.Endpoint != "" && !strings.HasPrefix(o.Endpoint, "http://") && !strings.HasPrefix(o.Endpoint, "https://") {
		errs = append(errs, fmt.Errorf("endpoint %q must start with http:// or https://", o.Endpoint))
	}
	if (o.AccessKeyID == "") != (o.SecretAccessKey == "") {
		errs = append(errs, errors.New("credentials: set both the access key id and the secret access key, or neither"))
	}
	seen := map[string]bool{}
	for _, f := range o.ModelFolders {
		if !folderName.MatchString(f) || f == ".." {
			errs = append(errs, fmt.Errorf("model folder %q: letters, digits, '_', '.', '-' only", f))
		}
		if seen[f] {
			errs = append(errs, fmt.Errorf("model folder %q is listed twice", f))
		}
		seen[f] = true
	}
	return errors.Join(errs...)
}

// keyPrefix is the bucket prefix with a trailing slash, or "" for the bucket root.
func (o *Options) keyPrefix() string {
	if o.Prefix == "" {
		return ""
	}
	return o.Prefix + "/"
}
