package isolation

import (
	"encoding/json"
	"path"
	"sort"
	"strings"
)

// Refusal names the node, the input and the model of a prompt that names a model its user may
// not use.
type Refusal struct {
	Node, ClassType, Input, Model string
}

// modelExtensions are the file name endings ComfyUI lists models with (folder_paths'
// supported_pt_extensions, and GGUF's of a widespread custom node).
var modelExtensions = []string{".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft", ".gguf", ".onnx"}

// LooksLikeModel reports whether a value could name a model file that a listing read a moment
// ago did not have yet.
func LooksLikeModel(v string) bool {
	ext := strings.ToLower(path.Ext(v))
	for _, e := range modelExtensions {
		if ext == e {
			return true
		}
	}
	return false
}

// PromptModels checks every input of a prompt graph ({node id: {"class_type", "inputs"}})
// whose value is a string against models (known: a model ComfyUI lists; visible: the user may
// use it). It returns the first refusal, in node order, or nil, and whether some string looked
// like a model file but was not known (the caller may read the listings again and re-check).
func PromptModels(graph json.RawMessage, models func(string) (known, visible bool)) (*Refusal, bool, error) {
	// Most prompts name only models their user may use: one pass over the strings tells, and
	// only a prompt with a hit is decoded to name the node and the input.
	models = memo(models)
	hit := false
	eachString(graph, func(v string) bool {
		known, visible := models(v)
		hit = known && !visible || !known && LooksLikeModel(v)
		return hit
	})
	if !hit {
		if !json.Valid(graph) {
			return nil, false, errShape
		}
		return nil, false, nil
	}
	var nodes map[string]struct {
		ClassType string                     `json:"class_type"`
		Inputs    map[string]json.RawMessage `json:"inputs"`
	}
	if err := json.Unmarshal(graph, &nodes); err != nil {
		return nil, false, errShape
	}
	ids := make([]string, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	unknown := false
	for _, id := range ids {
		n := nodes[id]
		names := make([]string, 0, len(n.Inputs))
		for k := range n.Inputs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, input := range names {
			raw := n.Inputs[input]
			if len(raw) == 0 || raw[0] != '"' {
				continue // a link, a number, a list: no model name
			}
			var v string
			if json.Unmarshal(raw, &v) != nil {
				continue
			}
			known, visible := models(v)
			if known && !visible {
				return &Refusal{Node: id, ClassType: n.ClassType, Input: input, Model: v}, unknown, nil
			}
			unknown = unknown || (!known && LooksLikeModel(v))
		}
	}
	return nil, unknown, nil
}
