package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mss-login/mss-login/internal/s3sync"
)

// Environment variables the sidecar reads its credentials from. The S3Mount webhook fills them
// from the Secret with secretKeyRef, so the values are never in the pod spec, a flag or a log.
const (
	envAccessKeyID     = "AWS_ACCESS_KEY_ID"
	envSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	envSessionToken    = "AWS_SESSION_TOKEN"
)

func s3syncCmd(g *globals) *cobra.Command {
	var (
		o      s3sync.Options
		listen string
		once   bool
		wf     s3sync.WorkflowOptions
		wfMB   int
	)
	cmd := &cobra.Command{
		Use:   "s3sync",
		Short: "Fill a directory from an S3 bucket and keep it in sync (the S3Mount sidecar)",
		Long: "Downloads <prefix>/models/<folder>/… for each model folder (and <prefix>/input/ with --input) into\n" +
			"--dir, then re-syncs every --interval: only changed objects are downloaded, each written to a\n" +
			"temporary file and renamed into place; files whose objects are gone are removed. With --output,\n" +
			"new files in <dir>/output are uploaded to <prefix>/output/.\n\n" +
			"Writes <dir>/extra_model_paths.yaml; start ComfyUI with\n" +
			"  --extra-model-paths-config <mount-path>/extra_model_paths.yaml\n\n" +
			"Credentials come from $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY (and $AWS_SESSION_TOKEN);\n" +
			"without them requests are anonymous. --listen serves /readyz (200 after the first complete\n" +
			"sync), /healthz and /metrics.\n\n" +
			"--workflows-dir (ComfyUI's user directory) also syncs each user's workflows/*.json with\n" +
			"<prefix>/users/<username>/workflows/ every --workflows-interval. A workflow deleted on one side\n" +
			"is deleted on the other if unchanged there since the last sync (a change wins over a deletion;\n" +
			"nothing is deleted while a user's folder is missing on either side). See docs/s3.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.AccessKeyID = os.Getenv(envAccessKeyID)
			o.SecretAccessKey = os.Getenv(envSecretAccessKey)
			o.SessionToken = os.Getenv(envSessionToken)
			wf.MaxBytes = int64(wfMB) << 20
			return runS3Sync(cmd.Context(), g, o, listen, once, wf)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Bucket, "bucket", "", "bucket name (required)")
	fl.StringVar(&o.Endpoint, "endpoint", "", "endpoint URL of an S3-compatible server (default: AWS)")
	fl.StringVar(&o.Region, "region", "us-east-1", "region")
	fl.StringVar(&o.Prefix, "prefix", "", "prefix inside the bucket")
	fl.BoolVar(&o.PathStyle, "path-style", false, "path-style addressing (most self-hosted servers)")
	fl.StringVar(&o.Dir, "dir", "/workspace/s3", "directory to fill")
	fl.StringVar(&o.MountPath, "mount-path", "", "where ComfyUI sees --dir, for extra_model_paths.yaml (default --dir)")
	fl.StringSliceVar(&o.ModelFolders, "model-folders", nil, "model folders (default: "+fmt.Sprint(s3sync.DefaultModelFolders)+")")
	fl.BoolVar(&o.Input, "input", false, "also sync <prefix>/input/ into <dir>/input")
	fl.BoolVar(&o.Output, "output", false, "upload new files of <dir>/output to <prefix>/output/")
	fl.DurationVar(&o.Interval, "interval", 5*time.Minute, "time between syncs")
	fl.IntVar(&o.Concurrency, "concurrency", 8, "S3 requests in flight at once")
	fl.StringVar(&listen, "listen", ":9477", "address of /readyz, /healthz and /metrics (empty: none)")
	fl.BoolVar(&once, "once", false, "sync once and exit (non-zero when the sync fails)")
	fl.StringVar(&wf.UserDir, "workflows-dir", "", "ComfyUI's user directory: sync <user>/workflows/*.json with <prefix>/users/<username>/workflows/ (empty: off)")
	fl.StringVar(&wf.Strategy, "workflows-conflict", s3sync.NewerWins, "workflow conflicts: newer_wins, local_wins or s3_wins")
	fl.IntVar(&wfMB, "workflows-max-mb", 50, "workflows larger than this are ignored")
	fl.DurationVar(&wf.Interval, "workflows-interval", 120*time.Second, "time between workflow syncs")
	return cmd
}

func runS3Sync(ctx context.Context, g *globals, o s3sync.Options, listen string, once bool, wfo s3sync.WorkflowOptions) error {
	log := slog.New(slog.NewJSONHandler(g.stderr, nil))
	o.Logf = func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) }
	s, err := s3sync.New(o)
	if err != nil {
		return err
	}
	var wf *s3sync.WorkflowSync
	if wfo.UserDir != "" {
		if wf, err = s3sync.NewWorkflowSync(o, wfo); err != nil {
			return err
		}
	}
	if once {
		res, err := s.SyncOnce(ctx)
		if err != nil {
			return err
		}
		log.Info("sync complete", "listed", res.Listed, "downloaded", res.Downloaded, "bytes", res.DownloadedBytes,
			"deleted", res.Deleted, "unchanged", res.Unchanged, "uploaded", res.Uploaded, "duration", res.Duration.String())
		if wf != nil {
			wr, err := wf.SyncOnce(ctx)
			if err != nil {
				return err
			}
			log.Info("workflow sync complete", "users", wr.Users, "uploaded", wr.Uploaded, "downloaded", wr.Downloaded,
				"deleted", wr.Deleted, "deletedInBucket", wr.DeletedRemote, "ignored", wr.Ignored, "unchanged", wr.Unchanged)
		}
		return nil
	}
	if wf != nil {
		if err := s.Register(wf.Collectors()...); err != nil {
			return err
		}
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = wf.Run(wctx) }()
		defer func() { cancel(); <-done }()
	}
	if listen != "" {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("probe server stopped", "err", err)
			}
		}()
		defer hs.Close()
	}
	log.Info("s3sync starting", "bucket", o.Bucket, "endpoint", o.Endpoint, "prefix", o.Prefix, "dir", o.Dir,
		"interval", o.Interval.String(), "credentials", o.AccessKeyID != "")
	err = s.Run(ctx)
	log.Info("s3sync stopped")
	return err
}
