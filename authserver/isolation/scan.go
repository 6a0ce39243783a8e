package isolation

import (
	"bytes"
	"encoding/json"
)

// A byte-level reader of JSON that the model rules use on large answers and prompts: it finds
// strings and arrays of strings without decoding the rest, so a 5 MB /object_info is rewritten
// in about the time of one pass over it. Its input is JSON that encoding/json accepted or
// produced (ComfyUI's answer is checked as a whole by rewriteObject; a prompt was decoded).

// stringEnd returns the index just past the JSON string that starts at b[i] == '"', and whether
// the string holds an escape; -1 when it does not end.
func stringEnd(b []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, false
}

// stringValue is the value of the JSON string b[i:end].
func stringValue(b []byte, i, end int, escaped bool) string {
	if !escaped {
		return string(b[i+1 : end-1])
	}
	var s string
	_ = json.Unmarshal(b[i:end], &s)
	return s
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value that starts at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := stringEnd(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := stringEnd(b, j)
				if end < 0 {
					return len(b)
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i // a number, true, false or null
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\r' && b[j] != '\n' {
		j++
	}
	return j
}

// eachString calls f with every string of the JSON text b (keys included) until f returns true.
func eachString(b []byte, f func(string) bool) {
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		end, esc := stringEnd(b, i)
		if end < 0 {
			return
		}
		if f(stringValue(b, i, end, esc)) {
			return
		}
		i = end - 1
	}
}

// stringArray reads the array of strings that starts at b[i] == '['. It returns the index past
// it and the start and end of each element; ok is false when the array holds anything else.
func stringArray(b []byte, i int) (end int, elems [][2]int, ok bool) {
	j := skipSpace(b, i+1)
	if j < len(b) && b[j] == ']' {
		return j + 1, nil, true
	}
	for j < len(b) {
		if b[j] != '"' {
			return 0, nil, false
		}
		e, _ := stringEnd(b, j)
		if e < 0 {
			return 0, nil, false
		}
		elems = append(elems, [2]int{j, e})
		j = skipSpace(b, e)
		if j >= len(b) {
			return 0, nil, false
		}
		switch b[j] {
		case ']':
			return j + 1, elems, true
		case ',':
			j = skipSpace(b, j+1)
		default:
			return 0, nil, false
		}
	}
	return 0, nil, false
}

// filterStringArrays rewrites every array of strings in b that names at least one model
// (models: known, visible) to keep only the models the user may see. It returns b itself when
// nothing changed.
func filterStringArrays(b []byte, models func(string) (bool, bool)) []byte {
	var out *bytes.Buffer
	last := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			end, _ := stringEnd(b, i)
			if end < 0 {
				return b
			}
			i = end - 1
		case '[':
			end, elems, ok := stringArray(b, i)
			if !ok || len(elems) == 0 {
				continue
			}
			anyModel, kept := false, elems[:0:0]
			for _, e := range elems {
				_, esc := stringEnd(b, e[0])
				known, visible := models(stringValue(b, e[0], e[1], esc))
				anyModel = anyModel || known
				if known && visible {
					kept = append(kept, e)
				}
			}
			if anyModel && len(kept) < len(elems) {
				if out == nil {
					out = bytes.NewBuffer(make([]byte, 0, len(b)))
				}
				out.Write(b[last:i])
				out.WriteByte('[')
				for k, e := range kept {
					if k > 0 {
						out.WriteString(", ")
					}
					out.Write(b[e[0]:e[1]])
				}
				out.WriteByte(']')
				last = end
			}
			i = end - 1
		}
	}
	if out == nil {
		return b
	}
	out.Write(b[last:])
	return out.Bytes()
}

// memo answers for models once per name: loaders list the same models again and again, and a
// pattern match is dearer than a map lookup. Not safe for concurrent use.
func memo(models func(string) (bool, bool)) func(string) (bool, bool) {
	type answer struct{ known, visible bool }
	seen := map[string]answer{}
	return func(n string) (bool, bool) {
		if a, ok := seen[n]; ok {
			return a.known, a.visible
		}
		var a answer
		a.known, a.visible = models(n)
		seen[n] = a
		return a.known, a.visible
	}
}
