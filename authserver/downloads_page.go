package authserver

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/mss-login/mss-login/internal/modeldl"
	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/store"
)

// handleDownloadsPage is the downloads page: a form to queue one, the API keys, and the jobs
// with their progress, rate and time left; it reloads itself every 2 s while one runs. Plain
// forms, no script, like the console.
func (s *Server) handleDownloadsPage(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	data := map[string]any{"On": s.cfg.DownloadsEnabled()}
	if r.Method == http.MethodPost && s.cfg.DownloadsEnabled() {
		f, _, ok := readForm(w, r)
		if !ok {
			return
		}
		switch f["action"] {
		case "download":
			id := func(k string) int64 { n, _ := strconv.ParseInt(f[k], 10, 64); return n }
			form := downloadForm{Request: modeldl.Request{Source: f["source"], Repo: f["repo_id"], Revision: f["revision"], File: f["filename"],
				ModelID: id("model_id"), VersionID: id("model_version_id")}, Folder: f["folder"], Destination: f["destination"]}
			if form.Source == modeldl.CivitAI {
				form.Repo, form.Revision, form.File = "", "", ""
			}
			if _, _, problem := s.queueDownload(r, form); problem != "" {
				data["Error"] = problem
			} else {
				data["Notice"] = "Queued."
			}
		case "keys":
			if _, problem := s.storeDownloadKey(r, f["source"], f["api_key"]); problem != "" {
				data["Error"] = problem
			} else {
				data["Notice"] = "Key saved."
			}
		case "cancel":
			j, err := s.db.DownloadJob(r.Context(), f["job"])
			if err != nil || (j.UserID != rq.id.user.ID && !rq.id.isAdmin()) {
				data["Error"] = "No such download job."
			} else if err := s.db.CancelDownloadJob(r.Context(), j.ID, ""); err != nil {
				data["Error"] = "The users database is not reachable."
			} else {
				_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: "model_download.cancelled", Target: j.Folder + "/" + j.Filename, ClientIP: rq.ip.String()})
				data["Notice"] = "Cancelling."
			}
		}
	}
	if s.cfg.DownloadsEnabled() {
		user := rq.id.user.ID
		if rq.id.isAdmin() {
			user = ""
		}
		jobs, _ := s.db.DownloadJobs(r.Context(), user)
		rows := make([]map[string]any, len(jobs))
		active := false
		for i, j := range jobs {
			running := j.Status == store.DownloadQueued || j.Status == store.DownloadRunning
			active = active || running
			row := map[string]any{"ID": j.ID, "Filename": j.Filename, "Folder": j.Folder, "Source": j.Source, "Status": j.Status, "Error": j.Error,
				"Done": j.BytesDone, "Total": j.Total, "Bytes": humanBytes(j.BytesDone) + " of " + humanBytes(j.Total), "Cancellable": running}
			if j.Total == 0 {
				row["Bytes"] = humanBytes(j.BytesDone)
			}
			if rate, eta, ok := downloadRate(j); ok {
				row["Rate"], row["ETA"] = humanBytes(int64(rate))+"/s", (time.Duration(eta) * time.Second).String()
			}
			rows[i] = row
		}
		caps := modeldl.DefaultCaps
		data["Jobs"], data["Active"], data["Folders"], data["Keys"] = rows, active, modelgrant.Folders, s.downloadKeys(r.Context(), rq.id.user.ID)
		data["Destinations"] = s.downloadDestinations(r.Context())
		data["Caps"] = fmt.Sprintf("%d at once, %d from CivitAI, %d from Hugging Face", caps.Total, caps.PerSource[modeldl.CivitAI], caps.PerSource[modeldl.HuggingFace])
	}
	renderPage(w, http.StatusOK, "downloads.html", data)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
