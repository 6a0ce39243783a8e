package isolation

import (
	"bytes"
	"encoding/json"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"
	"testing"
)

func own(id string) bool { return strings.HasPrefix(id, "mine") }

func TestFilters(t *testing.T) {
	cases := []struct {
		name     string
		filter   func([]byte, func(string) bool) ([]byte, error)
		ids      func([]byte) ([]string, error)
		in, want string
		wantIDs  string
	}{
		{"history", FilterHistory, HistoryIDs,
			`{"other-1": {"prompt": [1, "other-1"]}, "mine-2": {"outputs": {"9": {}}}, "mine-3": {}}`,
			`{"mine-2":{"outputs": {"9": {}}},"mine-3":{}}`, "other-1,mine-2,mine-3"},
		{"history of another", FilterHistory, HistoryIDs, `{"other-1": {"x": 1}}`, `{}`, "other-1"},
		{"empty history", FilterHistory, HistoryIDs, `{}`, `{}`, ""},
		{"queue", FilterQueue, QueueIDs,
			`{"queue_running": [[0, "other-1", {}, {}, []]], "queue_pending": [[1, "mine-2", {}, {"client_id": "c"}, ["9"]], [2, "other-3", {}, {}, []]]}`,
			`{"queue_running":[],"queue_pending":[[1, "mine-2", {}, {"client_id": "c"}, ["9"]]]}`, "other-1,mine-2,other-3"},
		{"queue entry without an id", FilterQueue, QueueIDs, `{"queue_running": [[0]], "queue_pending": []}`,
			`{"queue_running":[],"queue_pending":[]}`, ""},
		{"jobs", FilterJobs, JobsIDs,
			`{"jobs": [{"id": "mine-1", "status": "completed"}, {"id": "other-2"}], "pagination": {"total": 2}}`,
			`{"jobs":[{"id": "mine-1", "status": "completed"}],"pagination":{"total": 2}}`, "mine-1,other-2"},
	}
	for _, c := range cases {
		got, err := c.filter([]byte(c.in), own)
		if err != nil || string(got) != c.want {
			t.Errorf("%s: %s, %v\n want %s", c.name, got, err, c.want)
		}
		ids, err := c.ids([]byte(c.in))
		if err != nil || strings.Join(ids, ",") != c.wantIDs {
			t.Errorf("%s ids: %v, %v", c.name, ids, err)
		}
	}
	// Not the shape ComfyUI answers: an error, and nothing of the input passes.
	for _, bad := range []string{`[]`, `{"a": 1`, `"x"`, `{"a": 1} {"b": 2}`, ``} {
		if got, err := FilterHistory([]byte(bad), func(string) bool { return false }); err == nil {
			t.Errorf("FilterHistory(%q) = %s without an error", bad, got)
		}
	}
	if got, err := FilterQueue([]byte(`{"queue_running": {"0": "other"}}`), own); err == nil || strings.Contains(string(got), "other") {
		t.Errorf("a queue that is not an array: %s %v", got, err)
	}
}

func FuzzFilterHistory(f *testing.F) {
	f.Add(`{"mine-1": {"a": [1, 2]}, "other": {"b": "mine-x"}}`)
	f.Fuzz(func(t *testing.T, in string) {
		out, err := FilterHistory([]byte(in), own)
		if err != nil {
			return
		}
		ids, err := HistoryIDs(out)
		if err != nil {
			t.Fatalf("the filtered answer %q does not parse: %v", out, err)
		}
		for _, id := range ids {
			if !own(id) {
				t.Fatalf("%q kept in %q", id, out)
			}
		}
	})
}

func TestClientID(t *testing.T) {
	a, b := ClientIDPrefix("user-a"), ClientIDPrefix("user-b")
	if a == b || !strings.HasPrefix(a, "mssl") {
		t.Fatalf("prefixes %q %q", a, b)
	}
	cases := []struct{ user, given, want string }{
		{"user-a", "", a + "fresh"},
		{"user-a", "tab-1", a + "tab-1"},
		{"user-a", a + "tab-1", a + "tab-1"},     // sent back by ComfyUI: kept
		{"user-a", b + "tab-1", a + b + "tab-1"}, // another's: never theirs
		{"user-a", strings.Repeat("x", 300), (a + strings.Repeat("x", 300))[:128]},
	}
	for _, c := range cases {
		if got := ClientID(c.user, c.given, "fresh"); got != c.want {
			t.Errorf("ClientID(%q, %q) = %q, want %q", c.user, c.given, got, c.want)
		}
		if got := ClientID(c.user, c.given, "fresh"); !strings.HasPrefix(got, ClientIDPrefix(c.user)) {
			t.Errorf("%q lacks its user's prefix", got)
		}
	}
}

func FuzzClientID(f *testing.F) {
	f.Add("user-a", "user-b", "tab")
	f.Fuzz(func(t *testing.T, u1, u2, given string) {
		if u1 == u2 {
			return
		}
		// Whatever the second user sends, their id is never one the first user's prefix starts.
		if got := ClientID(u2, given, "x"); strings.HasPrefix(got, ClientIDPrefix(u1)) && ClientIDPrefix(u1) != ClientIDPrefix(u2) {
			t.Fatalf("%q's id %q carries %q's prefix", u2, got, u1)
		}
	})
}

func TestFiles(t *testing.T) {
	if f := UserFolder("ann_1", "id"); f != "ann_1" {
		t.Fatal(f)
	}
	if f := UserFolder("a/../b", "id"); !strings.HasPrefix(f, "user-") {
		t.Fatal(f)
	}
	for in, want := range map[string]string{"": "ann/ComfyUI", "shot": "ann/shot", "sub/shot": "ann/sub/shot", "ann/shot": "ann/shot",
		"ann": "ann", "annie/shot": "ann/annie/shot", "bob/shot": "ann/bob/shot"} {
		if got, err := OwnPrefix("ann", in); err != nil || got != want {
			t.Errorf("OwnPrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"../bob/x", "a/../../x", "/abs", "c:x", `a\..\b`, "x\x00"} {
		if got, err := OwnPrefix("ann", bad); err == nil {
			t.Errorf("OwnPrefix(%q) = %q accepted", bad, got)
		}
	}
	view := func(q string) bool {
		v, _ := url.ParseQuery(q)
		a, _ := View("ann", v)
		return a == Yours
	}
	for q, want := range map[string]bool{
		"filename=a.png&subfolder=ann&type=output":               true,
		"filename=a.png&subfolder=ann/sub":                       true,
		"filename=a.png&subfolder=bob&type=output":               false,
		"filename=a.png&type=output":                             false, // the output root is nobody's
		"filename=a.png&subfolder=ann/../bob":                    false,
		"filename=a.png&subfolder=./bob":                         false,
		"filename=a.png&subfolder=ann%5C..%5Cbob":                false,
		"filename=a.png%20%5Boutput%5D&type=input&subfolder=bob": false, // the annotation wins, as in ComfyUI
		"filename=a.png&subfolder=annie":                         false,
		"filename=a.png&subfolder=ann&type=temp&type=output":     false, // the first type counts: a preview
		"filename=a.png&type=output&type=temp&subfolder=bob":     false,
		"filename=a.png&type=input":                              false, // the input root is nobody's
		"filename=a.png&type=input&subfolder=ann":                true,
		"filename=a.png&type=temp":                               false, // a preview: looked up
		"filename=a.png%20%5Btemp%5D&subfolder=ann":              false,
	} {
		if got := view(q); got != want {
			t.Errorf("View(%s) = %t, want %t", q, got, want)
		}
	}
	// A preview is named by the key its history entry gives it, however the query spells it.
	history := []byte(`{"p1": {"outputs": {"9": {"images": [{"filename": "ComfyUI_temp_abcde_00001_.png", "subfolder": "", "type": "temp"},
		{"filename": "out.png", "subfolder": "ann", "type": "output"}], "text": ["hello"]}}}, "p2": {"outputs": {}}, "p3": {"status": {}}}`)
	files, err := TempFiles(history)
	if err != nil || len(files) != 1 {
		t.Fatalf("TempFiles = %v, %v", files, err)
	}
	for _, q := range []string{"filename=ComfyUI_temp_abcde_00001_.png&type=temp", "filename=ComfyUI_temp_abcde_00001_.png%20%5Btemp%5D",
		"filename=ComfyUI_temp_abcde_00001_.png&type=temp&subfolder=.", "filename=ComfyUI_temp_abcde_00001_.png&type=temp&subfolder=x/.."} {
		v, _ := url.ParseQuery(q)
		if a, key := View("ann", v); a != Preview || len(files[key]) != 1 || files[key][0] != "p1" {
			t.Errorf("View(%s) = %v, %q: not the preview of p1", q, a, key)
		}
	}
	if _, err := TempFiles([]byte(`[1]`)); err == nil {
		t.Error("TempFiles of a list: no error")
	}
}

func TestOwnUpload(t *testing.T) {
	build := func(fields [][2]string, file string) ([]byte, string) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		for _, f := range fields {
			w.WriteField(f[0], f[1])
		}
		if file != "" {
			fw, _ := w.CreateFormFile("image", file)
			fw.Write([]byte("PNG"))
		}
		w.Close()
		return b.Bytes(), w.FormDataContentType()
	}
	read := func(body []byte, ct string) map[string][]string {
		_, p, _ := mime.ParseMediaType(ct)
		form, err := multipart.NewReader(bytes.NewReader(body), p["boundary"]).ReadForm(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for k, v := range form.Value {
			out[k] = v
		}
		for k, v := range form.File {
			out[k] = []string{v[0].Filename}
		}
		return out
	}
	cases := []struct {
		fields [][2]string
		file   string
		sub    []string
	}{
		{nil, "a.png", []string{"ann"}},
		{[][2]string{{"subfolder", "pets"}}, "a.png", []string{"ann/pets"}},
		{[][2]string{{"subfolder", "ann/pets"}}, "a.png", []string{"ann/pets"}},
		{[][2]string{{"subfolder", "bob"}, {"subfolder", "x"}}, "a.png", []string{"ann/bob", "ann/x"}},
		{[][2]string{{"type", "input"}, {"original_ref", `{"filename":"m.png","subfolder":"ann","type":"input"}`}}, "a.png", []string{"ann"}},
	}
	for _, c := range cases {
		body, ct := build(c.fields, c.file)
		out, nct, err := OwnUpload(body, ct, "ann")
		if err != nil {
			t.Fatalf("%v: %v", c.fields, err)
		}
		got := read(out, nct)
		if strings.Join(got["subfolder"], ",") != strings.Join(c.sub, ",") || got["image"][0] != c.file {
			t.Errorf("%v: %v", c.fields, got)
		}
	}
	for _, bad := range []struct {
		fields [][2]string
		file   string
	}{
		{[][2]string{{"subfolder", "../bob"}}, "a.png"},
		{[][2]string{{"subfolder", "/abs"}}, "a.png"},
		{nil, "../bob/a.png"},
		{nil, `..\bob\a.png`},
		{[][2]string{{"original_ref", `{"filename":"m.png","subfolder":"bob","type":"output"}`}}, "a.png"},
		{[][2]string{{"original_ref", `{"filename":"m.png"}`}}, "a.png"},
		{[][2]string{{"original_ref", `{"filename":"m.png","type":"temp"}`}}, "a.png"},
	} {
		body, ct := build(bad.fields, bad.file)
		if _, _, err := OwnUpload(body, ct, "ann"); err == nil {
			t.Errorf("%v %q accepted", bad.fields, bad.file)
		}
	}
	// A part whose name Go and aiohttp could read differently is refused.
	raw := "--b\r\nContent-Disposition: form-data; name=\"x\"; name*=utf-8''subfolder\r\n\r\n../bob\r\n--b--\r\n"
	if _, _, err := OwnUpload([]byte(raw), "multipart/form-data; boundary=b", "ann"); err == nil {
		t.Error("a part with name*= accepted")
	}
	if _, _, err := OwnUpload([]byte("x"), "application/json", "ann"); err == nil {
		t.Error("not multipart accepted")
	}
}

func TestFilterObjectInfo(t *testing.T) {
	in := `{"KSampler": {"input": {"required": {"seed": ["INT", {"default": 0}]}}, "name": "KSampler"},
 "LoadImage": {"input": {"required": {"image": [["ann/a.png", "bob.png", "ann/b.png"], {"image_upload": true}]}}, "output": ["IMAGE"]},
 "LoadAudio": {"input": {"required": {"audio": ["COMBO", {"options": ["bob.wav", "ann/x.wav"], "audio_upload": true}]}}},
 "Uploadless": {"input": {"required": {"mode": [["upload", "other"], {}]}}}}`
	out, err := FilterObjectInfo([]byte(in), Options{Inputs: InUserFolder("ann")})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, gone := range []string{"bob.png", "bob.wav"} {
		if strings.Contains(s, gone) {
			t.Errorf("%s listed: %s", gone, s)
		}
	}
	for _, kept := range []string{"ann/a.png", "ann/b.png", "ann/x.wav", `"seed": ["INT", {"default": 0}]`, `["upload", "other"]`} {
		if !strings.Contains(s, kept) {
			t.Errorf("%s missing: %s", kept, s)
		}
	}
	if _, err := FilterObjectInfo([]byte(`{"LoadImage": "upload"}`), Options{Inputs: InUserFolder("ann")}); err == nil {
		t.Error("a node that is not an object passed")
	}
}

func TestFilterObjectInfoModels(t *testing.T) {
	in := `{"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["a.safetensors", "b.safetensors", "new.safetensors"], {}]}}},
 "LoraLoader": {"input": {"required": {"lora_name": ["COMBO", {"options": ["sdxl/l1.safetensors", "l2.safetensors"]}], "strength": ["FLOAT", {}]}}},
 "CustomLoader": {"input": {"optional": {"model": [["b.safetensors"], {"tooltip": "any node naming a model"}]}}},
 "Sampler": {"input": {"required": {"sampler": [["euler", "dpm"], {}]}}}}`
	known := map[string]bool{"a.safetensors": true, "b.safetensors": false, "sdxl/l1.safetensors": true, "l2.safetensors": false}
	out, err := FilterObjectInfo([]byte(in), Options{Models: func(name string) (bool, bool) {
		visible, ok := known[name]
		return ok, visible
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, gone := range []string{"b.safetensors", "l2.safetensors", "new.safetensors"} {
		if strings.Contains(s, gone) {
			t.Errorf("%s listed: %s", gone, s)
		}
	}
	for _, kept := range []string{`"ckpt_name": [["a.safetensors"], {}]`, `sdxl/l1.safetensors`, `"model": [[], {"tooltip"`, `"sampler": [["euler", "dpm"], {}]`} {
		if !strings.Contains(s, kept) {
			t.Errorf("%s missing: %s", kept, s)
		}
	}
}

// The byte-level rewrite keeps JSON valid, changes nothing when every model is visible, and
// never leaves a hidden model's name.
func FuzzFilterStringArrays(f *testing.F) {
	for _, s := range []string{`{"a": [["m1", "x"], {}]}`, `{"a": ["COMBO", {"options": ["m1", "m2\u0041"]}]}`, `["m1", "[\"m2\"]"]`, `[[], "m1"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			return
		}
		models := func(v string) (bool, bool) { return strings.HasPrefix(v, "m"), v == "m1" }
		out := filterStringArrays([]byte(in), models)
		if !json.Valid(out) {
			t.Fatalf("%s became invalid: %s", in, out)
		}
		if same := filterStringArrays([]byte(in), func(v string) (bool, bool) { return true, true }); string(same) != in {
			t.Fatalf("nothing hidden, yet %s became %s", in, same)
		}
		var walk func(v any, inArray bool)
		walk = func(v any, inArray bool) {
			switch x := v.(type) {
			case []any:
				allStrings := true
				for _, e := range x {
					if _, ok := e.(string); !ok {
						allStrings = false
					}
				}
				for _, e := range x {
					if s, ok := e.(string); ok && allStrings && strings.HasPrefix(s, "m") && s != "m1" {
						t.Fatalf("%q still listed in %s (from %s)", s, out, in)
					}
					walk(e, true)
				}
			case map[string]any:
				for _, e := range x {
					walk(e, false)
				}
			}
		}
		var v any
		_ = json.Unmarshal(out, &v)
		walk(v, false)
	})
}
