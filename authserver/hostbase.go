package authserver

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/mss-login/mss-login/authserver/ipaccess"
)

// The external base URL, as the original: HOST_BASE_URL (or host_base_url), else the value
// stored in the database, else detected from the first admin request that arrives through a
// trusted proxy (X-Forwarded-Proto + X-Forwarded-Host) and stored for every replica.

const hostBaseSetting = "host_base_url"

func (s *Server) hostBase() string {
	if s.cfg.HostBaseURL != "" {
		return s.cfg.HostBaseURL
	}
	if v := s.detectedBase.Load(); v != nil {
		return *v
	}
	return ""
}

func (s *Server) loadHostBase(ctx context.Context) {
	if s.cfg.HostBaseURL != "" {
		return
	}
	if v, ok, err := s.db.Setting(ctx, hostBaseSetting); err == nil && ok {
		s.detectedBase.Store(&v)
	}
}

// detectHostBase stores the base URL seen on an admin's request through a trusted proxy.
func (s *Server) detectHostBase(r *http.Request, id *identity) {
	if s.hostBase() != "" || id == nil || !id.isAdmin() || !s.resolver.Trusts(ipaccess.PeerAddr(r.RemoteAddr)) {
		return
	}
	proto, host := strings.ToLower(r.Header.Get("X-Forwarded-Proto")), r.Header.Get("X-Forwarded-Host")
	if (proto != "http" && proto != "https") || host == "" || strings.ContainsAny(host, "/\\@ ") {
		return
	}
	u := url.URL{Scheme: proto, Host: host}
	v := u.String()
	if err := s.db.SetSetting(r.Context(), hostBaseSetting, v); err != nil {
		s.log.Warn("storing the detected host base URL failed", "error", err)
		return
	}
	s.detectedBase.Store(&v)
	s.log.Info("host base URL detected from an admin request", "host_base_url", v)
}
