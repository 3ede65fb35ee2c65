package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	configv1 "github.com/prism-gw/prism/proto/prism/config/v1"
)

// enumFields are the JSON fields that hold enum names, with the names each
// accepts; operators write them in lower case (`abstraction: keyvalue`),
// protojson wants the proto names.
var enumFields = map[string]map[int32]string{
	"abstraction":    configv1.Abstraction_name,
	"access_pattern": configv1.AccessPattern_name,
	"accessPattern":  configv1.AccessPattern_name,
	"consistency":    configv1.Consistency_name,
	"class":          configv1.PiiClass_name,
	"phase":          configv1.Migration_Phase_name,
}

// upperEnums upper-cases string values of enum fields anywhere in a JSON
// document, and refuses an unknown value with its field path (e.g.
// namespaces[0].access_pattern), which protojson's error would not name.
func upperEnums(js []byte) ([]byte, error) {
	// UseNumber keeps 64-bit integers exact.
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	v, err := walk(doc, "")
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func walk(v any, path string) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if s, ok := x.(string); ok && enumFields[k] != nil {
				up := strings.ToUpper(s)
				if err := checkEnum(p, s, up, enumFields[k]); err != nil {
					return nil, err
				}
				t[k] = up
				continue
			}
			y, err := walk(x, p)
			if err != nil {
				return nil, err
			}
			t[k] = y
		}
	case []any:
		for i, x := range t {
			y, err := walk(x, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			t[i] = y
		}
	}
	return v, nil
}

// checkEnum refuses a value that is not one of names.
func checkEnum(path, value, upper string, names map[int32]string) error {
	var want []string
	for n, name := range names {
		if name == upper {
			return nil
		}
		if n != 0 {
			want = append(want, strings.ToLower(name))
		}
	}
	slices.Sort(want)
	return fmt.Errorf("%s: unknown value %q (want one of: %s)", path, value, strings.Join(want, ", "))
}
