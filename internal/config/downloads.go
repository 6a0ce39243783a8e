package config

// ModelDownloads is model_downloads: the model download API (internal/modeldl), on when
// experimental_features is and a destination is set up.
type ModelDownloads struct {
	// Destination is "s3mount" (the buckets of the S3Mounts with spec.modelDownloads, under
	// their <prefix>/models/<folder>/; a request names one), "s3" (the s3_storage bucket) or
	// "directory".
	Destination string `json:"destination"`
	// Directory is the models directory (its <folder>/ subdirectories) for "directory";
	// relative to the data directory unless absolute.
	Directory string `json:"directory"`
	// The sources' addresses (a mirror, or a test's loopback server).
	HuggingFaceURL string `json:"huggingface_url"`
	CivitAIURL     string `json:"civitai_url"`
}

// DownloadsEnabled says whether the model download API is on.
func (c *Config) DownloadsEnabled() bool {
	if !c.ExperimentalFeatures {
		return false
	}
	switch c.ModelDownloads.Destination {
	case "s3":
		return c.S3Enabled() && c.S3Storage.BucketName != ""
	case "directory":
		return c.ModelDownloads.Directory != ""
	case "s3mount": // only the S3Mounts with spec.modelDownloads, as the manager records them
		return true
	}
	return false
}

func (l *loader) validateDownloads(c *Config) {
	d := &c.ModelDownloads
	switch d.Destination {
	case "", "s3", "s3mount":
	case "directory":
		if d.Directory == "" {
			l.failKey("model_downloads.directory", "must be set when model_downloads.destination is directory")
		} else if _, err := resolveUnder(c.DataDir, d.Directory); err != nil {
			l.failKey("model_downloads.directory", "%v", err)
		}
	default:
		l.failKey("model_downloads.destination", "must be s3, s3mount or directory, got %s", quote(d.Destination))
	}
	l.secureURL("model_downloads.huggingface_url", d.HuggingFaceURL)
	l.secureURL("model_downloads.civitai_url", d.CivitAIURL)
}
