// Package roles names the permission flags of mss-login and the built-in roles with the
// original MSS-Login defaults. The database, the operator's validation and the auth server's
// policy all read the flag names from here.
package roles

import (
	"fmt"
	"sort"
	"strings"
)

// Permission flags enforced on the server (original §4.2). Unknown can_* names are rejected.
const (
	CanRun                     = "can_run"
	CanUpload                  = "can_upload"
	CanAccessAPI               = "can_access_api"
	CanAccessManager           = "can_access_manager"
	CanManageExtensions        = "can_manage_extensions"
	CanModifyWorkflows         = "can_modify_workflows"
	CanSeeRestrictedSettings   = "can_see_restricted_settings"
	CanHaveAPITokens           = "can_have_api_tokens"
	CanHaveNonExpiringJWT      = "can_have_non_expiring_jwt"
	CanViewConsole             = "can_view_console"
	MFARequired                = "mfa_required"
	CanViewAllComfyUIItems     = "can_view_all_comfyui_items"
	CanAccessS3Storage         = "can_access_s3_storage"
	CanDownloadModels          = "can_download_models"
	CanManageModelSharing      = "can_manage_model_sharing"
	CanLoginLocallyWithoutAuth = "can_login_locally_without_auth"
)

// Permissions lists every known permission flag.
var Permissions = []string{
	CanRun, CanUpload, CanAccessAPI, CanAccessManager, CanManageExtensions, CanModifyWorkflows,
	CanSeeRestrictedSettings, CanHaveAPITokens, CanHaveNonExpiringJWT, CanViewConsole, MFARequired,
	CanViewAllComfyUIItems, CanAccessS3Storage, CanDownloadModels, CanManageModelSharing,
	CanLoginLocallyWithoutAuth,
}

// Describe says in plain words what each permission lets a role do (docs/operator.md has the
// same table).
var Describe = map[string]string{
	CanRun:                     "queue prompts and manage the queue",
	CanUpload:                  "upload images and masks",
	CanAccessAPI:               "use ComfyUI's other /api routes",
	CanAccessManager:           "use ComfyUI-Manager",
	CanManageExtensions:        "enable and disable extensions",
	CanModifyWorkflows:         "save, rename and delete workflows",
	CanSeeRestrictedSettings:   "(not supported)",
	CanHaveAPITokens:           "create API tokens",
	CanHaveNonExpiringJWT:      "tokens that never expire",
	CanViewConsole:             "read ComfyUI's server log",
	MFARequired:                "must enrol MFA",
	CanViewAllComfyUIItems:     "see everyone's prompts, outputs and every model",
	CanAccessS3Storage:         "see and use models from S3",
	CanDownloadModels:          "(not supported yet)",
	CanManageModelSharing:      "grant and revoke users' models",
	CanLoginLocallyWithoutAuth: "(not supported, by design)",
}

// Built-in role names. The owner is a user flag, not a role: the owner holds every permission.
const (
	Admin = "admin"
	Power = "power"
	User  = "user"
	Guest = "guest"
)

// Builtin lists the built-in roles in order of privilege.
var Builtin = []string{Admin, Power, User, Guest}

// Unsupported are the permissions mss-login does not implement, with the reason; a ComfyRole
// that sets one to true is refused at kubectl apply (the rules in api/v1alpha1 name the same).
var Unsupported = map[string]string{
	CanLoginLocallyWithoutAuth: "by design: no login without a password for a network deemed local",
	CanSeeRestrictedSettings:   "the original's own settings panel inside ComfyUI does not exist in mss-login",
}

// Role is a named permission set plus the UI flags (ui_*, cat_*, settings_*) passed to the browser.
type Role struct {
	Name        string
	Permissions map[string]bool
	UI          map[string]bool
}

// defaults holds the original's default_group_config.json values, per flag, for
// admin/power/user/guest. Flags the original left absent are filled with what its code did
// for a missing flag, so every built-in role states every flag.
var defaults = map[string][4]bool{
	CanRun:                     {true, true, true, true},
	CanUpload:                  {true, true, true, false},
	CanAccessAPI:               {true, true, true, true},
	CanAccessManager:           {true, true, false, false},
	CanManageExtensions:        {true, true, true, false}, // missing = allowed, guests denied
	CanModifyWorkflows:         {true, true, true, false}, // admin always; guests may not save
	CanSeeRestrictedSettings:   {true, false, false, false},
	CanHaveAPITokens:           {true, true, false, false},
	CanHaveNonExpiringJWT:      {false, false, false, false}, // owner only
	CanViewConsole:             {false, false, false, false}, // owner only
	MFARequired:                {true, false, false, false},
	CanViewAllComfyUIItems:     {true, false, false, false},
	CanAccessS3Storage:         {true, false, false, false},
	CanDownloadModels:          {true, false, false, false},
	CanManageModelSharing:      {false, false, false, false}, // owner; admins only when granted
	CanLoginLocallyWithoutAuth: {false, false, false, false},
}

// Default returns the built-in role name with the original's defaults, or false if name is
// not built in.
func Default(name string) (Role, bool) {
	i := -1
	for j, b := range Builtin {
		if b == name {
			i = j
		}
	}
	if i < 0 {
		return Role{}, false
	}
	r := Role{Name: name, Permissions: map[string]bool{}, UI: map[string]bool{}}
	for flag, v := range defaults {
		r.Permissions[flag] = v[i]
	}
	return r, true
}

// IsBuiltin reports whether name is one of the built-in roles.
func IsBuiltin(name string) bool {
	_, ok := Default(name)
	return ok
}

// IsPermission reports whether name is a known permission flag.
func IsPermission(name string) bool {
	_, ok := defaults[name]
	return ok
}

// IsUIFlag reports whether name is a browser-only flag (ui_*, cat_*, settings_*).
func IsUIFlag(name string) bool {
	for _, p := range []string{"ui_", "cat_", "settings_"} {
		if strings.HasPrefix(name, p) && len(name) > len(p) {
			return true
		}
	}
	return false
}

// Validate checks that every permission name is known and every UI flag is well formed.
func (r Role) Validate() error {
	var bad []string
	for k := range r.Permissions {
		if !IsPermission(k) {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("role %q: unknown permission %s (known: %s)", r.Name,
			strings.Join(bad, ", "), strings.Join(Permissions, ", "))
	}
	for k := range r.UI {
		if !IsUIFlag(k) {
			return fmt.Errorf("role %q: UI flag %q must start with ui_, cat_ or settings_", r.Name, k)
		}
	}
	return nil
}
