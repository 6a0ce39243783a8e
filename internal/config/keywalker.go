package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ignoredKeys have a meaning only in the original node (NSFW, logging to files, self-update,
// notifications, legacy JSON stores, …). A key is ignored when it equals an entry or lies under
// one. They are accepted with any value, reported once, and their values are dropped unread:
// ntfy.api_token, for one, is a secret.
var ignoredKeys = []string{
	"api_token_store",
	"auto_install_deps",
	"blacklist",
	"experimental.install_other_nodes_deps",
	"experimental.model_isolation",
	"experimental.tailscale_local_auth",
	"experimental_failsafe",
	"filter_debug_messages",
	"free_memory_on_logout",
	"legacy_users_json_path",
	"log",
	"log_rotation",
	"manager_admin_only",
	"quarantine",
	"seperate_users",
	"session_token_store",
	"trash",
	"whitelist",
}

// ignoredEntry returns the entry of ignoredKeys that covers a dotted key.
func ignoredEntry(key string) (string, bool) {
	for _, entry := range ignoredKeys {
		if key == entry || strings.HasPrefix(key, entry+".") {
			return entry, true
		}
	}
	return "", false
}

// walker checks one layer's tree against the Config struct type.
type walker struct {
	l      *loader
	source string
	user   bool // the user's file: ignored keys are reported
}

// object checks a JSON object against a struct type and returns the keys that may be merged.
func (w walker) object(path string, obj map[string]any, t reflect.Type) map[string]any {
	out := map[string]any{}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		val, full := obj[key], joinKey(path, key)
		if entry, ok := ignoredEntry(full); ok {
			if w.user && val != nil {
				w.l.ignored[entry] = true
			}
			continue
		}
		if path == "users_db" && strings.HasSuffix(strings.ToLower(key), "password") {
			w.l.fail(w.source, full, "database passwords are read from the environment only "+
				"(USERS_DB_PASSWORD, POSTGRES_PASSWORD or MYSQL_PASSWORD); remove this key from the file")
			continue
		}
		if full == "ntfy.api_token" {
			if v, _ := val.(string); v != "" {
				w.l.fail(w.source, full, "the ntfy token is read from the environment only (NTFY_API_TOKEN or NTFY_API_KEY); remove this key from the file")
			}
			continue
		}
		field, ok := fieldByKey(t, key)
		if !ok {
			w.l.fail(w.source, "", "unknown key %s%s", quote(full), suggest(path, key, t))
			continue
		}
		if val == nil {
			continue // null: keep the value of the layer below
		}
		if v, ok := w.value(full, val, field.Type); ok {
			out[key] = v
		}
	}
	return out
}

// value checks one value against a field type; ok is false when it was rejected.
func (w walker) value(key string, val any, t reflect.Type) (any, bool) {
	want := kindName(t)
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := val.(map[string]any)
		if !ok {
			break
		}
		return w.object(key, obj, t), true
	case reflect.String:
		if _, ok := val.(string); !ok {
			break
		}
		w.l.sources[key] = w.source
		return val, true
	case reflect.Bool:
		if _, ok := val.(bool); !ok {
			break
		}
		w.l.sources[key] = w.source
		return val, true
	case reflect.Int:
		n, ok := val.(json.Number)
		if !ok {
			break
		}
		if _, err := strconv.ParseInt(n.String(), 10, strconv.IntSize); err != nil {
			w.l.fail(w.source, key, "expected a whole number, got %s", truncate(n.String()))
			return nil, false
		}
		w.l.sources[key] = w.source
		return val, true
	case reflect.Slice: // []string, or a list of objects (webhooks)
		arr, ok := val.([]any)
		if !ok {
			break
		}
		if t.Elem().Kind() == reflect.Struct {
			return w.objects(key, arr, t.Elem())
		}
		good := true
		for i, item := range arr {
			if _, ok := item.(string); !ok {
				w.l.fail(w.source, fmt.Sprintf("%s[%d]", key, i), "expected a string, got %s", jsonKind(item))
				good = false
			}
		}
		if good {
			w.l.sources[key] = w.source
		}
		return val, good
	}
	w.l.fail(w.source, key, "expected %s, got %s", want, jsonKind(val))
	return nil, false
}

// objects checks a list of objects; a list replaces the layer's below as a whole.
func (w walker) objects(key string, arr []any, t reflect.Type) (any, bool) {
	out := make([]any, 0, len(arr))
	good := true
	for i, item := range arr {
		obj, ok := item.(map[string]any)
		if !ok {
			w.l.fail(w.source, fmt.Sprintf("%s[%d]", key, i), "expected an object, got %s", jsonKind(item))
			good = false
			continue
		}
		out = append(out, w.object(fmt.Sprintf("%s[%d]", key, i), obj, t))
	}
	if good {
		w.l.sources[key] = w.source
	}
	return out, good
}

// mergeInto merges src into dst: objects merge key by key, everything else replaces.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sub, ok := v.(map[string]any); ok {
			if into, ok := dst[k].(map[string]any); ok {
				mergeInto(into, sub)
				continue
			}
		}
		dst[k] = v
	}
}

// fieldByKey finds the struct field whose json tag is key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if jsonName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonName is a field's JSON key, "" for fields that are not in the JSON (tag "-").
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// fieldAt returns the field of cfg at a dotted key (which must exist).
func fieldAt(cfg *Config, key string) reflect.Value {
	v := reflect.ValueOf(cfg).Elem()
	for part := range strings.SplitSeq(key, ".") {
		f, ok := fieldByKey(v.Type(), part)
		if !ok {
			panic("config: no field for key " + key)
		}
		v = v.FieldByIndex(f.Index)
	}
	return v
}

// knownKeys lists every dotted key of Config, objects included, in struct order.
func knownKeys(prefix string, t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := jsonName(f)
		if name == "" {
			continue
		}
		full := joinKey(prefix, name)
		keys = append(keys, full)
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, knownKeys(full, f.Type)...)
		}
	}
	return keys
}

// suggest proposes a known key for an unknown one: a sibling within edit distance 2 (a typo),
// else a key with the same name elsewhere (wrong nesting).
func suggest(path, key string, t reflect.Type) string {
	var siblings []string
	for i := range t.NumField() {
		if name := jsonName(t.Field(i)); name != "" {
			siblings = append(siblings, name)
		}
	}
	best, bestDist := "", 3
	for _, s := range siblings {
		if d := editDistance(strings.ToLower(key), strings.ToLower(s)); d < bestDist {
			best, bestDist = s, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", joinKey(path, best))
	}
	// Never suggest a key that is ignored; name it when it is what the key resembles.
	for _, entry := range ignoredKeys {
		if parent, name := splitKey(entry); parent == path && editDistance(strings.ToLower(key), strings.ToLower(name)) < 3 {
			return fmt.Sprintf(" (the original's key %q is accepted and ignored by mss-login)", entry)
		}
	}
	for _, k := range knownKeys("", reflect.TypeFor[Config]()) {
		if _, name := splitKey(k); name == key {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return ""
}

// editDistance is the Levenshtein distance, giving up (returning 3) on keys far apart in length.
func editDistance(a, b string) int {
	if len(a)-len(b) > 2 || len(b)-len(a) > 2 {
		return 3
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// splitKey splits a dotted key into its parent and its last part.
func splitKey(key string) (parent, name string) {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}

// kindName describes what a field type expects, for messages.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int:
		return "a number"
	case reflect.Slice:
		return "an array of strings"
	}
	return t.String()
}

// jsonKind describes a parsed JSON value without quoting it: values may be secrets.
func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// quote quotes a user-supplied, non-secret string for a message, cut to a readable length.
func quote(s string) string {
	return strconv.Quote(truncate(s))
}

func truncate(s string) string {
	const limit = 80
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return string([]rune(s)[:limit]) + "…"
}
