package config

import (
	"fmt"
	"slices"
)

// OIDC is oidc: single sign-on with an OpenID Provider (authorization code flow with PKCE).
// Off while issuer is empty.
type OIDC struct {
	Issuer string `json:"issuer"`
	// ClientID and the variable holding the client secret (never the file).
	ClientID        string   `json:"client_id"`
	ClientSecretEnv string   `json:"client_secret_env"`
	Scopes          []string `json:"scopes"`
	// UsernameClaim names the user (preferred_username); GroupsClaim lists their groups.
	UsernameClaim string `json:"username_claim"`
	GroupsClaim   string `json:"groups_claim"`
	// ButtonLabel is the login page's button ("Sign in with Keycloak").
	ButtonLabel string `json:"button_label"`
	// GroupRoles maps groups to roles; the first entry whose group the user has wins. A user in
	// none of them is refused.
	GroupRoles []GroupRole `json:"group_roles"`
	// Users: "create" makes a user row at the first sign-in; "existing" admits only users that
	// exist already (a ComfyUser, the console), linked at their first sign-in.
	Users string `json:"users"`
	// PasswordLogin false leaves the password form to the owner only (break-glass).
	PasswordLogin bool `json:"password_login"`
	// RequireAMR / RequireACR: the ID token must carry one of these amr values (e.g. "mfa",
	// "otp") / this acr; then the provider's MFA stands for mss-login's own.
	RequireAMR []string `json:"require_amr"`
	RequireACR []string `json:"require_acr"`

	// ClientSecret is the value of ClientSecretEnv.
	ClientSecret Secret `json:"-"`
}

// GroupRole is one entry of oidc.group_roles.
type GroupRole struct {
	Group string `json:"group"`
	Role  string `json:"role"`
}

// Enabled says whether single sign-on is configured.
func (o OIDC) Enabled() bool { return o.Issuer != "" }

// RoleFor is the role the mapping gives a user with groups, "" when none does.
func (o OIDC) RoleFor(groups []string) string {
	for _, gr := range o.GroupRoles {
		if slices.Contains(groups, gr.Group) {
			return gr.Role
		}
	}
	return ""
}

func (l *loader) validateOIDC(c *Config) {
	o := &c.OIDC
	if !o.Enabled() {
		return
	}
	l.secureURL("oidc.issuer", o.Issuer)
	if o.ClientID == "" {
		l.failKey("oidc.client_id", "must not be empty when oidc.issuer is set")
	}
	l.envName("oidc.client_secret_env", o.ClientSecretEnv)
	if !l.secretEnv(o.ClientSecretEnv).IsSet() && validEnvName(o.ClientSecretEnv) { // read after validation
		l.failKey("oidc.client_secret_env", "%s is not set (the client secret is read from the environment only)", o.ClientSecretEnv)
	}
	if !slices.Contains(o.Scopes, "openid") {
		l.failKey("oidc.scopes", "must include openid")
	}
	if o.UsernameClaim == "" {
		l.failKey("oidc.username_claim", "must not be empty")
	}
	if len(o.GroupRoles) == 0 {
		l.failKey("oidc.group_roles", "must map at least one group to a role: a user in no mapped group is refused")
	}
	for i, gr := range o.GroupRoles {
		if gr.Group == "" || gr.Role == "" {
			l.failKey(fmt.Sprintf("oidc.group_roles[%d]", i), "needs a group and a role")
		}
	}
	for i, a := range o.RequireAMR {
		if a == "pwd" {
			// Any one listed value passes: "pwd" would let a password alone stand for MFA.
			l.failKey(fmt.Sprintf("oidc.require_amr[%d]", i), `"pwd" is a password alone, not a second factor`)
		}
	}
	if o.Users != "create" && o.Users != "existing" {
		l.failKey("oidc.users", "must be create or existing, got %s", quote(o.Users))
	}
}
