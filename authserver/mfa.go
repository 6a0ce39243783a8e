package authserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"image/png"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// TOTP MFA (experimental, behind experimental_features + experimental.mfa, off with
// mfa_disabled — as the original). Unlike the original:
//   - the password step's challenge lives in the database (every replica sees it), expires in
//     5 minutes, is used once, and a wrong code costs a counted attempt;
//   - an enrolment challenge can only enrol an account that has no MFA yet: it can never
//     overwrite an existing enrolment (the original's MFA bypass);
//   - a code is accepted once (its time step is claimed), and there are 10 single-use backup
//     codes, stored as SHA-256.
const (
	challengeTTL    = 5 * time.Minute
	purposeLogin    = "login"
	purposeEnrol    = "enrol"
	backupCodeCount = 10
)

var totpOpts = totp.ValidateOpts{Period: 30, Skew: 0, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// mfaOnly refuses the MFA endpoints while MFA is off on this server.
func (s *Server) mfaOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.MFAEnabled() {
			writeError(w, r, http.StatusForbidden, "MFA_DISABLED", "MFA is not enabled on this server.")
			return
		}
		h(w, r)
	}
}

// mfaStep decides what a correct password leads to: a session, a second factor, or enrolment.
func (s *Server) mfaStep(u store.User, role store.Role) string {
	if !s.cfg.MFAEnabled() {
		return ""
	}
	if u.MFAEnabled {
		return purposeLogin
	}
	if u.Owner || role.Name == roles.Admin || role.Permissions[roles.MFARequired] {
		return purposeEnrol
	}
	return ""
}

// newChallenge stores a challenge and returns the token handed to the client.
func (s *Server) newChallenge(ctx context.Context, userID, purpose string, now time.Time) (string, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	return token, s.db.CreateChallenge(ctx, store.Challenge{ID: hashToken(token), UserID: userID, Purpose: purpose,
		CreatedAt: now, ExpiresAt: now.Add(challengeTTL)})
}

// checkCode accepts a 6-digit code for the current time step or the one before (clock drift),
// each step once.
func (s *Server) checkCode(ctx context.Context, userID, secret, code string, now time.Time) bool {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return false
	}
	for _, at := range []time.Time{now, now.Add(-30 * time.Second)} {
		want, err := totp.GenerateCodeCustom(secret, at, totpOpts)
		if err != nil {
			return false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			ok, err := s.db.ClaimTOTPStep(ctx, userID, at.Unix()/30)
			return err == nil && ok
		}
	}
	return false
}

// secondFactor checks a backup code (used up) if one is given, else a TOTP code.
func (s *Server) secondFactor(ctx context.Context, userID, code, backup string, now time.Time) bool {
	if backup != "" {
		ok, _ := s.db.ConsumeBackupCode(ctx, userID, backupHash(backup))
		return ok
	}
	secret, err := s.db.TOTPSecret(ctx, userID)
	return err == nil && secret != "" && s.checkCode(ctx, userID, secret, code, now)
}

func backupHash(code string) string {
	c := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(code), "-", ""))
	h := sha256.Sum256([]byte(c))
	return hex.EncodeToString(h[:])
}

func newBackupCodes() (codes, hashes []string) {
	for range backupCodeCount {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		h := strings.ToUpper(hex.EncodeToString(b))
		code := h[0:4] + "-" + h[4:8] + "-" + h[8:12] + "-" + h[12:16]
		codes = append(codes, code)
		hashes = append(hashes, backupHash(code))
	}
	return codes, hashes
}

// respondMFA answers a correct password when a second step is due.
func (s *Server) respondMFA(w http.ResponseWriter, r *http.Request, u store.User, purpose, next string, isJSON bool) {
	token, err := s.newChallenge(r.Context(), u.ID, purpose, s.now())
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	body := map[string]any{"message": "MFA verification required", "mfa_required": true, "mfa_temp_token": token}
	if purpose == purposeEnrol {
		body = map[string]any{"message": "MFA enrolment required", "mfa_setup_required": true, "mfa_temp_token": token}
	}
	answer(w, r, isJSON, http.StatusOK, body, func() { s.renderMFA(w, r, u, purpose, token, next, "") })
}

// mfaPage answers a browser's wrong code: the same step again, with a new challenge.
func (s *Server) mfaPage(w http.ResponseWriter, r *http.Request, u store.User, purpose, next, problem string) {
	token, err := s.newChallenge(r.Context(), u.ID, purpose, s.now())
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	s.renderMFA(w, r, u, purpose, token, next, problem)
}

// renderMFA shows the enrolment page (the pending key) or the code page of a sign-in.
func (s *Server) renderMFA(w http.ResponseWriter, r *http.Request, u store.User, purpose, token, next, problem string) {
	code := http.StatusOK
	if problem != "" {
		code = http.StatusUnauthorized
	}
	page := map[string]any{"Token": token, "Next": next, "Error": problem}
	if purpose == purposeEnrol {
		if err := s.pendingEnrolment(r.Context(), u, page); err != nil {
			writeError(w, r, http.StatusInternalServerError, "MFA_FAILED", "Could not start MFA enrolment.")
			return
		}
		renderPage(w, code, "mfa-setup.html", page)
		return
	}
	renderPage(w, code, "mfa.html", page)
}

// pendingEnrolment describes the TOTP secret u is enrolling with: the one already pending (not
// yet enabled), so that a second try or sign-in shows the key the user already scanned, else
// a new one, stored.
func (s *Server) pendingEnrolment(ctx context.Context, u store.User, out map[string]any) error {
	var key *otp.Key
	if pending, err := s.db.TOTPSecret(ctx, u.ID); err == nil && pending != "" && !u.MFAEnabled {
		key, err = otp.NewKeyFromURL((&url.URL{Scheme: "otpauth", Host: "totp", Path: "/mss-login:" + u.Username,
			RawQuery: url.Values{"secret": {pending}, "issuer": {"mss-login"}}.Encode()}).String())
		if err != nil {
			key = nil
		}
	}
	if key == nil {
		var err error
		if key, err = totp.Generate(totp.GenerateOpts{Issuer: "mss-login", AccountName: u.Username}); err != nil {
			return err
		}
		if err := s.db.SetMFA(ctx, u.ID, key.Secret(), false); err != nil {
			return err
		}
	}
	out["ProvisioningURI"] = key.URL()
	out["Secret"] = key.Secret()
	if img, err := key.Image(200, 200); err == nil {
		var buf bytes.Buffer
		if png.Encode(&buf, img) == nil {
			// A data: URL is safe here (our own PNG) and allowed by the CSP's img-src.
			out["QR"] = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()))
		}
	}
	return nil
}

// handleMFASetup starts enrolment for the logged-in user, or for the holder of an enrolment
// challenge. An account with MFA enabled is refused: enrolment never overwrites.
func (s *Server) handleMFASetup(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	f, _, _ := form(r)
	var u store.User
	switch {
	case rq.id != nil:
		u = rq.id.user
	case f["mfa_temp_token"] != "":
		var ok bool
		if u, ok = s.enrolUser(r.Context(), f["mfa_temp_token"]); !ok {
			writeError(w, r, http.StatusUnauthorized, "CHALLENGE_INVALID", "The enrolment challenge is invalid or expired.")
			return
		}
	default:
		writeError(w, r, http.StatusUnauthorized, "UNAUTHENTICATED", "Authentication required.")
		return
	}
	if u.MFAEnabled {
		writeError(w, r, http.StatusConflict, "MFA_ENROLLED", "MFA is already enabled; disable it first with a current code.")
		return
	}
	out := map[string]any{}
	if err := s.pendingEnrolment(r.Context(), u, out); err != nil {
		writeError(w, r, http.StatusInternalServerError, "MFA_FAILED", "Could not start MFA enrolment.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"provisioning_uri": out["ProvisioningURI"], "secret": out["Secret"]})
}

// enrolUser finds the user of a live enrolment challenge without using it up.
func (s *Server) enrolUser(ctx context.Context, token string) (store.User, bool) {
	c, err := s.db.PeekChallenge(ctx, hashToken(token), s.now())
	if err != nil || c.Purpose != purposeEnrol {
		return store.User{}, false
	}
	u, err := s.db.UserByID(ctx, c.UserID)
	return u, err == nil
}

// handleMFAVerifySetup enables MFA after a correct code for the pending secret, returns the
// backup codes, and — for an enrolment challenge — completes the login.
func (s *Server) handleMFAVerifySetup(w http.ResponseWriter, r *http.Request) {
	ctx, rq, now := r.Context(), reqInfo(r), s.now()
	f, isJSON, _ := form(r)
	att, ref, err := s.beginAttempt(ctx, rq.ip, rq.device, now)
	if err != nil || ref != nil {
		writeError(w, r, http.StatusForbidden, "LOCKED", "Too many failed attempts.")
		return
	}
	var u store.User
	viaChallenge := false
	if rq.id != nil {
		u = rq.id.user
	} else {
		c, err := s.db.ConsumeChallenge(ctx, hashToken(f["mfa_temp_token"]), now)
		if err != nil || c.Purpose != purposeEnrol {
			att.finish(ctx, false, now)
			writeError(w, r, http.StatusUnauthorized, "CHALLENGE_INVALID", "The enrolment challenge is invalid or expired.")
			return
		}
		if u, err = s.db.UserByID(ctx, c.UserID); err != nil {
			writeError(w, r, http.StatusUnauthorized, "CHALLENGE_INVALID", "The enrolment challenge is invalid or expired.")
			return
		}
		viaChallenge = true
	}
	if u.MFAEnabled {
		att.finish(ctx, false, now)
		writeError(w, r, http.StatusConflict, "MFA_ENROLLED", "MFA is already enabled.")
		return
	}
	secret, err := s.db.TOTPSecret(ctx, u.ID)
	if err != nil || secret == "" || !s.checkCode(ctx, u.ID, secret, f["code"], now) {
		att.finish(ctx, false, now)
		if viaChallenge && browser(r, isJSON) {
			// Try again on the same page with the same key (the attempt counts toward the lockout).
			s.mfaPage(w, r, u, purposeEnrol, "/", "That code is not right: type the one your app shows now.")
			return
		}
		writeError(w, r, http.StatusUnauthorized, "INVALID_CODE", "code: incorrect")
		return
	}
	att.finish(ctx, true, now)
	codes, hashes := newBackupCodes()
	if err := s.db.SetMFA(ctx, u.ID, secret, true); err == nil {
		err = s.db.SetBackupCodes(ctx, u.ID, hashes)
	}
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "MFA_FAILED", "Could not enable MFA.")
		return
	}
	_ = s.db.Audit(ctx, store.AuditEvent{Actor: u.Username, Action: "mfa.enabled", ClientIP: rq.ip.String()})
	_ = s.cache.refresh(ctx, false)
	body, next := map[string]any{"message": "MFA enabled", "backup_codes": codes}, "/mss-login/account"
	if viaChallenge {
		// Show the backup codes once, with the session.
		token, expires, err := s.startSession(ctx, u, rq, now)
		if err != nil {
			writeError(w, r, http.StatusInternalServerError, "SESSION_FAILED", "Could not start a session.")
			return
		}
		setSessionCookie(w, token, expires, now, rq.https)
		body["jwt_token"], next = jsonOnlyToken(isJSON, token), "/"
	}
	answer(w, r, isJSON, http.StatusOK, body, func() {
		renderPage(w, http.StatusOK, "mfa-done.html", map[string]any{"BackupCodes": codes, "Next": next})
	})
}

func jsonOnlyToken(isJSON bool, token string) any {
	if isJSON {
		return token
	}
	return nil
}

// handleMFAVerify is the second step of a login: the challenge from the password step and a
// code or a backup code. The challenge is used once, right or wrong.
func (s *Server) handleMFAVerify(w http.ResponseWriter, r *http.Request) {
	ctx, rq, now := r.Context(), reqInfo(r), s.now()
	f, isJSON, ok := readForm(w, r)
	if !ok {
		return
	}
	att, ref, err := s.beginAttempt(ctx, rq.ip, rq.device, now)
	if err != nil || ref != nil {
		writeError(w, r, http.StatusForbidden, "LOCKED", "Too many failed attempts.")
		return
	}
	c, err := s.db.ConsumeChallenge(ctx, hashToken(f["mfa_temp_token"]), now)
	if err != nil || c.Purpose != purposeLogin {
		att.finish(ctx, false, now)
		writeError(w, r, http.StatusUnauthorized, "CHALLENGE_INVALID", "The sign-in expired: sign in again.")
		return
	}
	u, err := s.db.UserByID(ctx, c.UserID)
	if err != nil || u.Disabled {
		att.finish(ctx, false, now)
		writeError(w, r, http.StatusUnauthorized, "CHALLENGE_INVALID", "The sign-in expired: sign in again.")
		return
	}
	passed := s.secondFactor(ctx, u.ID, f["code"], f["backup_code"], now)
	att.finish(ctx, passed, now)
	if !passed {
		s.metrics.auth.WithLabelValues("mfa_failure").Inc()
		_ = s.db.Audit(ctx, store.AuditEvent{Actor: u.Username, Action: "mfa.failure", ClientIP: rq.ip.String()})
		if browser(r, isJSON) {
			// Try again on the same page (the attempt counts toward the lockout).
			s.mfaPage(w, r, u, purposeLogin, safeNext(f["next"]), "That code is not right: try the one your app shows now, or a backup code.")
			return
		}
		writeError(w, r, http.StatusUnauthorized, "INVALID_CODE", "Invalid code: sign in again.")
		return
	}
	s.completeLogin(w, r, u, safeNext(f["next"]), isJSON)
}

// handleMFADisable turns MFA off for the logged-in user after a current code.
func (s *Server) handleMFADisable(w http.ResponseWriter, r *http.Request) {
	ctx, rq, now := r.Context(), reqInfo(r), s.now()
	f, _, _ := form(r)
	secret, err := s.db.TOTPSecret(ctx, rq.id.user.ID)
	if err != nil || secret == "" || !rq.id.user.MFAEnabled {
		writeError(w, r, http.StatusConflict, "MFA_NOT_ENROLLED", "MFA is not enabled.")
		return
	}
	if !s.checkCode(ctx, rq.id.user.ID, secret, f["code"], now) {
		writeError(w, r, http.StatusUnauthorized, "INVALID_CODE", "code: incorrect")
		return
	}
	if err := s.db.SetMFA(ctx, rq.id.user.ID, "", false); err != nil {
		writeError(w, r, http.StatusInternalServerError, "MFA_FAILED", "Could not disable MFA.")
		return
	}
	_ = s.db.Audit(ctx, store.AuditEvent{Actor: rq.id.user.Username, Action: "mfa.disabled", ClientIP: rq.ip.String()})
	writeJSON(w, http.StatusOK, map[string]any{"message": "MFA disabled"})
}

// handleRecovery resets MFA for every user, as the original, when RECOVERY_MODE is on and the
// trusted client address is in RECOVERY_MODE_HOST (the original read it from a spoofable header).
func (s *Server) handleRecovery(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	if !s.cfg.RecoveryMode {
		writeError(w, r, http.StatusNotFound, "NOT_FOUND", "Recovery mode is off.")
		return
	}
	allowed := false
	for _, p := range s.cfg.ParsedRecoveryModeHosts() {
		allowed = allowed || p.Contains(rq.ip)
	}
	if !allowed {
		s.log.Warn("recovery request from an address not in recovery_mode_hosts", "ip", rq.ip)
		writeError(w, r, http.StatusForbidden, "RECOVERY_HOST", "This address may not use recovery mode.")
		return
	}
	users, err := s.db.Users(r.Context())
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	n := 0
	for _, u := range users {
		if u.MFAEnabled {
			if err := s.db.SetMFA(r.Context(), u.ID, "", false); err != nil {
				writeError(w, r, http.StatusInternalServerError, "FAILED", "Resetting MFA failed part way.")
				return
			}
			n++
		}
	}
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: "recovery", Action: "mfa.reset_all", ClientIP: rq.ip.String()})
	_ = s.cache.refresh(r.Context(), false)
	writeJSON(w, http.StatusOK, map[string]any{"message": "MFA reset for " + strconv.Itoa(n) + " user(s). Turn RECOVERY_MODE off again."})
}
