// Package teleclient is teleop's client of its own API, which the API
// server speaks only JSON for: it reads kinds without decoding twice
// (MetaFactory), and writes without decoding answers nobody reads.
package teleclient

import (
	"bytes"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// MetaFactory finds the apiVersion and kind of a JSON document, with the
// answer of json.DefaultMetaFactory for any valid document, without
// decoding it. The default decodes every document twice over with
// encoding/json just for these two fields, and client-go asks it twice for
// each event of a watch (the event, then its object): about a twentieth of
// teleop's CPU when TeleApps are created in a burst. MetaFactory reads only
// the top level of the object and skips every value but those two, so it
// leaves the validation of the rest to the decoder that follows. Anything
// it does not read plainly (an escaped key or value, a key that differs
// from apiVersion or kind only in case) goes to the default.
type MetaFactory struct{}

var _ json.MetaFactory = MetaFactory{}

// Interpret returns the group, version and kind of data.
func (MetaFactory) Interpret(data []byte) (*schema.GroupVersionKind, error) {
	apiVersion, kind, ok := topLevelTypeMeta(data)
	if !ok {
		return json.DefaultMetaFactory.Interpret(data)
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, err
	}
	return &schema.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: kind}, nil
}

// topLevelTypeMeta reads the apiVersion and kind members of the JSON object
// in data, the last of each as encoding/json would. It reports false when
// data is not an object it can read without unescaping.
func topLevelTypeMeta(data []byte) (apiVersion, kind string, ok bool) {
	s := scanner{data: data}
	if !s.consume('{') {
		return "", "", false
	}
	if s.consume('}') {
		return "", "", s.atEnd()
	}
	for {
		key, ok := s.plainString()
		if !ok || !s.consume(':') {
			return "", "", false
		}
		switch {
		case string(key) == "apiVersion":
			ok = s.typeMetaValue(&apiVersion)
		case string(key) == "kind":
			ok = s.typeMetaValue(&kind)
		case bytes.EqualFold(key, apiVersionKey), bytes.EqualFold(key, kindKey):
			ok = false // encoding/json matches them regardless of case
		default:
			ok = s.skipValue()
		}
		switch {
		case !ok:
			return "", "", false
		case s.consume(','):
		case s.consume('}') && s.atEnd():
			return apiVersion, kind, true
		default:
			return "", "", false
		}
	}
}

var apiVersionKey, kindKey = []byte("apiVersion"), []byte("kind")

// scanner walks a JSON document without validating what it skips.
type scanner struct {
	data []byte
	i    int
}

func (s *scanner) skipSpace() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, if c is next.
func (s *scanner) consume(c byte) bool {
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) atEnd() bool {
	s.skipSpace()
	return s.i == len(s.data)
}

// plainString reads a string without escapes, in place.
func (s *scanner) plainString() ([]byte, bool) {
	if !s.consume('"') {
		return nil, false
	}
	end := bytes.IndexByte(s.data[s.i:], '"')
	if end < 0 {
		return nil, false
	}
	str := s.data[s.i : s.i+end]
	if bytes.IndexByte(str, '\\') >= 0 {
		return nil, false
	}
	s.i += end + 1
	return str, true
}

// typeMetaValue reads the value of apiVersion or kind into v: a plain,
// valid UTF-8 string (encoding/json would replace invalid bytes).
func (s *scanner) typeMetaValue(v *string) bool {
	str, ok := s.plainString()
	if !ok || !utf8.Valid(str) {
		return false
	}
	*v = string(str)
	return true
}

// skipValue moves past one value: a string, an object or an array with
// everything in it, or a literal.
func (s *scanner) skipValue() bool {
	s.skipSpace()
	if s.i == len(s.data) {
		return false
	}
	switch s.data[s.i] {
	case '"':
		s.i++
		return s.skipStringRest()
	case '{', '[':
		return s.skipNested()
	}
	start := s.i
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return s.i > start
		}
		s.i++
	}
	return false
}

// skipStringRest moves past the closing quote of a string already opened:
// the first quote not escaped, that is after an even run of backslashes.
func (s *scanner) skipStringRest() bool {
	for {
		end := bytes.IndexByte(s.data[s.i:], '"')
		if end < 0 {
			return false
		}
		s.i += end + 1
		backslashes := 0
		for j := s.i - 2; j >= 0 && s.data[j] == '\\'; j-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return true
		}
	}
}

// skipNested moves past the object or array that starts at s.i.
func (s *scanner) skipNested() bool {
	depth := 0
	for s.i < len(s.data) {
		c := s.data[s.i]
		s.i++
		switch c {
		case '"':
			if !s.skipStringRest() {
				return false
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return true
			}
		}
	}
	return false
}
