package config

import (
	"bytes"
	"encoding/json"
	"strings"
)

// enumFields are the JSON fields that hold enum names; operators write them
// in lower case (`abstraction: keyvalue`), protojson wants the proto names.
var enumFields = map[string]bool{
	"abstraction":    true,
	"access_pattern": true,
	"accessPattern":  true,
	"consistency":    true,
	"class":          true,
	"phase":          true,
}

// upperEnums upper-cases string values of enum fields anywhere in a JSON
// document.
func upperEnums(js []byte) ([]byte, error) {
	// UseNumber keeps 64-bit integers exact.
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return json.Marshal(walk(doc))
}

func walk(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok && enumFields[k] {
				t[k] = strings.ToUpper(s)
				continue
			}
			t[k] = walk(x)
		}
	case []any:
		for i, x := range t {
			t[i] = walk(x)
		}
	}
	return v
}
