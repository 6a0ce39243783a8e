package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mss-login/mss-login/internal/modeldl"
	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// Model downloads (docs/s3.md#downloading-models): the original's API under
// /mss-login/api/model-download/, jobs in the database, run by every auth server's worker.

const downloadsPrefix = "/mss-login/api/model-download"

// downloadKeyName names the encrypted setting of a user's API key for a source.
func downloadKeyName(userID, source string) string {
	return "model_download_key:" + userID + ":" + source
}

func (s *Server) downloadBases() modeldl.Bases {
	return modeldl.Bases{HuggingFace: s.cfg.ModelDownloads.HuggingFaceURL, CivitAI: s.cfg.ModelDownloads.CivitAIURL}
}

// downloadsOff answers while the API is off (experimental_features, a destination).
func (s *Server) downloadsOff(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.DownloadsEnabled() {
		return false
	}
	writeError(w, r, http.StatusNotFound, "DOWNLOADS_OFF",
		"Model downloads are off: they need experimental_features and model_downloads.destination (s3 with s3_storage, or directory).")
	return true
}

func (s *Server) handleDownloadSources(w http.ResponseWriter, r *http.Request) {
	if s.downloadsOff(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sources": []map[string]any{
		{"id": modeldl.HuggingFace, "name": "Hugging Face", "fields": []string{"repo_id", "revision", "filename"}, "max_concurrent": modeldl.DefaultCaps.PerSource[modeldl.HuggingFace]},
		{"id": modeldl.CivitAI, "name": "CivitAI", "fields": []string{"model_id", "model_version_id"}, "max_concurrent": modeldl.DefaultCaps.PerSource[modeldl.CivitAI]},
	}, "max_concurrent": modeldl.DefaultCaps.Total, "destination": s.cfg.ModelDownloads.Destination})
}

func (s *Server) handleDownloadFolders(w http.ResponseWriter, r *http.Request) {
	if s.downloadsOff(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"folders": modelgrant.Folders, "destinations": s.downloadDestinations(r.Context())})
}

// downloadDestinations are where a download may go: the configured one, and every S3Mount
// with spec.modelDownloads (recorded by the manager).
func (s *Server) downloadDestinations(ctx context.Context) []string {
	var out []string
	if d := s.cfg.ModelDownloads.Destination; d == "s3" || d == "directory" {
		out = append(out, d)
	}
	names, _ := s.db.SettingNames(ctx, store.S3DestinationPrefix)
	for _, n := range names {
		if v, ok, err := s.db.SecretSetting(ctx, n); err == nil && ok && v != "" {
			out = append(out, "S3Mount/"+strings.TrimPrefix(n, store.S3DestinationPrefix))
		}
	}
	return out
}

// handleDownloadKeys shows which keys the caller has stored (never the keys) or stores one.
func (s *Server) handleDownloadKeys(w http.ResponseWriter, r *http.Request) {
	if s.downloadsOff(w, r) {
		return
	}
	rq := reqInfo(r)
	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		f, _, ok := readForm(w, r)
		if !ok {
			return
		}
		if code, problem := s.storeDownloadKey(r, f["source"], f["api_key"]); problem != "" {
			writeError(w, r, code, "BAD_KEY", problem)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"api_keys": s.downloadKeys(r.Context(), rq.id.user.ID)})
}

// storeDownloadKey stores (or, empty, removes) the caller's key for a source.
func (s *Server) storeDownloadKey(r *http.Request, src, key string) (int, string) {
	rq := reqInfo(r)
	if src != modeldl.HuggingFace && src != modeldl.CivitAI {
		return http.StatusBadRequest, "source: huggingface or civitai"
	}
	key = strings.TrimSpace(key)
	if len(key) > 512 || strings.ContainsAny(key, "\r\n") {
		return http.StatusBadRequest, "api_key: one line, at most 512 characters"
	}
	if err := s.db.SetSecretSetting(r.Context(), downloadKeyName(rq.id.user.ID, src), key); err != nil {
		return http.StatusServiceUnavailable, "The key could not be stored."
	}
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: "model_download.key_set", Target: src, ClientIP: rq.ip.String()})
	return 0, ""
}

// downloadKeys says which keys a user has stored: "set" or "unset", never the key.
func (s *Server) downloadKeys(ctx context.Context, userID string) map[string]string {
	keys := map[string]string{}
	for _, src := range []string{modeldl.HuggingFace, modeldl.CivitAI} {
		keys[src] = "unset"
		if v, ok, _ := s.db.SecretSetting(ctx, downloadKeyName(userID, src)); ok && v != "" {
			keys[src] = "set"
		}
	}
	return keys
}

// downloadJobView is a job as the API shows it.
func downloadJobView(j store.DownloadJob) map[string]any {
	v := map[string]any{"job_id": j.ID, "username": j.Username, "source": j.Source, "status": j.Status, "folder": j.Folder,
		"filename": j.Filename, "destination": j.Destination, "bytes_done": j.BytesDone, "total_bytes": j.Total, "error": j.Error,
		"created_at": j.CreatedAt.Format(time.RFC3339), "updated_at": j.UpdatedAt.Format(time.RFC3339)}
	if !j.FinishedAt.IsZero() {
		v["finished_at"] = j.FinishedAt.Format(time.RFC3339)
	}
	if j.Total > 0 {
		v["progress"] = float64(j.BytesDone) / float64(j.Total)
	}
	if rate, eta, ok := downloadRate(j); ok {
		v["rate_bytes_per_second"], v["eta_seconds"] = rate, eta
	}
	var req modeldl.Request
	if json.Unmarshal([]byte(j.Request), &req) == nil {
		v["request"] = req
	}
	return v
}

// downloadRate is a running job's average rate since it started and the time left at it.
func downloadRate(j store.DownloadJob) (rate float64, eta int64, ok bool) {
	secs := j.UpdatedAt.Sub(j.StartedAt).Seconds()
	if j.Status != store.DownloadRunning || j.StartedAt.IsZero() || secs <= 0 || j.BytesDone <= 0 {
		return 0, 0, false
	}
	rate = float64(j.BytesDone) / secs
	if j.Total > j.BytesDone {
		eta = int64(float64(j.Total-j.BytesDone) / rate)
	}
	return rate, eta, true
}

// handleDownload queues a job from a JSON body.
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	if s.downloadsOff(w, r) {
		return
	}
	var body downloadForm
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&body); err != nil {
		writeError(w, r, http.StatusBadRequest, "BAD_JSON", "A JSON body is needed: source, repo_id/revision/filename or model_id/model_version_id, folder.")
		return
	}
	j, code, problem := s.queueDownload(r, body)
	if problem != "" {
		writeError(w, r, code, "BAD_REQUEST", problem)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"message": "Download queued", "job": downloadJobView(j)})
}

// downloadForm is a download request: what to fetch and the folder.
type downloadForm struct {
	modeldl.Request
	Folder string `json:"folder"`
	// GrantTo names the user the finished model is granted to (default: the caller); another
	// user's needs can_manage_model_sharing.
	GrantTo string `json:"grant_to,omitempty"`
	// Destination is one of downloadDestinations ("": the configured one, else the only one).
	Destination string `json:"destination,omitempty"`
}

// queueDownload checks a request (fields, folder, the name's characters; the source is asked by
// the worker) and queues it; on a refusal it returns the status and the reason.
func (s *Server) queueDownload(r *http.Request, body downloadForm) (store.DownloadJob, int, string) {
	rq := reqInfo(r)
	if err := body.Request.Validate(); err != nil {
		return store.DownloadJob{}, http.StatusBadRequest, err.Error()
	}
	folder := modelgrant.Canonical(body.Folder)
	if !slices.Contains(modelgrant.Folders, folder) {
		return store.DownloadJob{}, http.StatusBadRequest, "folder: one of " + strings.Join(modelgrant.Folders, ", ")
	}
	grantTo := ""
	if body.GrantTo != "" && body.GrantTo != rq.id.user.Username {
		if !rq.id.can(roles.CanManageModelSharing) {
			return store.DownloadJob{}, http.StatusForbidden, "grant_to: granting to another user needs can_manage_model_sharing"
		}
		u, ok := s.userByName(r.Context(), body.GrantTo)
		if !ok {
			return store.DownloadJob{}, http.StatusBadRequest, "grant_to: no such user"
		}
		grantTo = u.ID
	}
	dests := s.downloadDestinations(r.Context())
	dest := body.Destination
	switch {
	case dest == "" && slices.Contains(dests, s.cfg.ModelDownloads.Destination):
		dest = s.cfg.ModelDownloads.Destination
	case dest == "" && len(dests) == 1:
		dest = dests[0]
	}
	if !slices.Contains(dests, dest) {
		return store.DownloadJob{}, http.StatusBadRequest, "destination: one of " + strings.Join(dests, ", ")
	}
	req, _ := json.Marshal(body.Request)
	name := ""
	if body.Source == modeldl.HuggingFace {
		name = path.Base(body.File)
	}
	j := store.DownloadJob{UserID: rq.id.user.ID, Username: rq.id.user.Username, Source: body.Source, Request: string(req),
		Destination: dest, Folder: folder, Filename: name, GrantTo: grantTo}
	if err := s.db.CreateDownloadJob(r.Context(), &j); err != nil {
		return store.DownloadJob{}, http.StatusServiceUnavailable, "The job could not be stored."
	}
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: "model_download.queued", Target: folder + "/" + name,
		ClientIP: rq.ip.String(), Detail: body.Source})
	return j, 0, ""
}

// handleDownloadJobs lists the caller's jobs (an admin's: ?all=1 for everyone's).
func (s *Server) handleDownloadJobs(w http.ResponseWriter, r *http.Request) {
	if s.downloadsOff(w, r) {
		return
	}
	rq := reqInfo(r)
	user := rq.id.user.ID
	if r.URL.Query().Get("all") == "1" && rq.id.isAdmin() {
		user = ""
	}
	jobs, err := s.db.DownloadJobs(r.Context(), user)
	if err != nil {
		writeError(w, r, http.StatusServiceUnavailable, "DB_UNAVAILABLE", "The users database is not reachable.")
		return
	}
	out := make([]map[string]any, len(jobs))
	for i, j := range jobs {
		out[i] = downloadJobView(j)
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": out})
}

// downloadJobOf reads a job the caller may see (their own; an admin any).
func (s *Server) downloadJobOf(w http.ResponseWriter, r *http.Request) (store.DownloadJob, bool) {
	rq := reqInfo(r)
	j, err := s.db.DownloadJob(r.Context(), r.PathValue("id"))
	if err == nil && j.UserID != rq.id.user.ID && !rq.id.isAdmin() {
		err = store.ErrNotFound // another user's job is not told apart from none
	}
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "NO_JOB", "No such download job.")
		return j, false
	}
	if err != nil {
		writeError(w, r, http.StatusServiceUnavailable, "DB_UNAVAILABLE", "The users database is not reachable.")
		return j, false
	}
	return j, true
}

func (s *Server) handleDownloadJob(w http.ResponseWriter, r *http.Request) {
	if s.downloadsOff(w, r) {
		return
	}
	if j, ok := s.downloadJobOf(w, r); ok {
		writeJSON(w, http.StatusOK, map[string]any{"job": downloadJobView(j)})
	}
}

func (s *Server) handleDownloadCancel(w http.ResponseWriter, r *http.Request) {
	if s.downloadsOff(w, r) {
		return
	}
	j, ok := s.downloadJobOf(w, r)
	if !ok {
		return
	}
	if err := s.db.CancelDownloadJob(r.Context(), j.ID, ""); err != nil {
		writeError(w, r, http.StatusServiceUnavailable, "DB_UNAVAILABLE", "The users database is not reachable.")
		return
	}
	rq := reqInfo(r)
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: "model_download.cancelled", Target: j.Folder + "/" + j.Filename, ClientIP: rq.ip.String()})
	writeJSON(w, http.StatusOK, map[string]any{"message": "Cancelling"})
}

// downloadWorker is this server's share of the jobs.
func (s *Server) downloadWorker() *modeldl.Worker {
	return &modeldl.Worker{DB: s.db, Client: &http.Client{Timeout: 0}, Bases: s.downloadBases(), Log: s.log.With("component", "downloads"),
		Key: func(ctx context.Context, userID, source string) (string, error) {
			v, ok, err := s.db.SecretSetting(ctx, downloadKeyName(userID, source))
			if err != nil || !ok {
				return "", err
			}
			return v, nil
		},
		Dest:     s.downloadDest,
		Finished: s.downloadFinished,
	}
}

// downloadDest is where a job's file goes: the s3_storage bucket's <prefix>/models/<folder>/,
// or the models directory's <folder>/.
func (s *Server) downloadDest(ctx context.Context, j store.DownloadJob, name string) (modeldl.Dest, error) {
	if err := modeldl.CheckName(name); err != nil {
		return nil, err
	}
	if mount, ok := strings.CutPrefix(j.Destination, "S3Mount/"); ok {
		raw, found, err := s.db.SecretSetting(ctx, store.S3DestinationPrefix+mount)
		var d store.S3Destination
		if err != nil || !found || raw == "" || json.Unmarshal([]byte(raw), &d) != nil {
			return nil, errors.New("S3Mount " + mount + " is not a download destination (spec.modelDownloads)")
		}
		return s3Dest(d.Endpoint, d.Region, d.Bucket, d.Prefix, d.PathStyle, d.AccessKeyID, d.SecretAccessKey, j.Folder, name), nil
	}
	switch j.Destination {
	case "s3":
		c := s.cfg.S3Storage
		return s3Dest(c.EndpointURL, c.Region, c.BucketName, c.Prefix, true, s.cfg.S3AccessKeyID.Reveal(), s.cfg.S3SecretAccessKey.Reveal(), j.Folder, name), nil
	case "directory":
		dir, err := s.cfg.DataPath(s.cfg.ModelDownloads.Directory)
		if err != nil {
			return nil, err
		}
		return &modeldl.DirDest{Dir: dir + "/" + j.Folder, Name: name, Job: j.ID}, nil
	}
	return nil, errors.New("the job's destination is not configured here")
}

// s3Dest is a bucket's <prefix>/models/<folder>/<name>.
func s3Dest(endpoint, region, bucket, prefix string, pathStyle bool, id, secret, folder, name string) *modeldl.S3Dest {
	so := s3.Options{Region: region, UsePathStyle: pathStyle, Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")}
	if endpoint != "" {
		so.BaseEndpoint = aws.String(strings.TrimRight(endpoint, "/"))
	}
	if so.Region == "" {
		so.Region = "us-east-1"
	}
	key := strings.Trim(prefix, "/")
	if key != "" {
		key += "/"
	}
	return &modeldl.S3Dest{Client: s3.New(so), Bucket: bucket, Key: key + "models/" + folder + "/" + name}
}

// downloadFinished grants a downloaded model to the user who asked for it, and records the end.
func (s *Server) downloadFinished(ctx context.Context, j store.DownloadJob, status, reason, name string, st modeldl.State) {
	if name == "" {
		name = j.Filename
	}
	target := j.Folder + "/" + name
	switch status {
	case store.DownloadDone:
		g := modelgrant.Grant{Folder: j.Folder, Pattern: name}
		to := j.UserID
		if j.GrantTo != "" {
			to = j.GrantTo
		}
		if err := s.db.AddGrant(ctx, to, g, "model-download"); err != nil && !errors.Is(err, store.ErrConflict) {
			s.log.Warn("granting a downloaded model failed", "job", j.ID, "error", err)
		}
		_ = s.db.Audit(ctx, store.AuditEvent{Actor: j.Username, Action: "model_download.done", Target: target,
			Detail: j.Source + ", sha256 " + st.SHA256})
		go func() { _, _ = s.inventory(context.WithoutCancel(ctx), true) }()
	case store.DownloadFailed:
		_ = s.db.Audit(ctx, store.AuditEvent{Actor: j.Username, Action: "model_download.failed", Target: target, Detail: reason})
	}
}
