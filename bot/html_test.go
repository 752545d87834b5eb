package bot

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEscapeHTML(t *testing.T) {
	tests := []struct{ in, want string }{
		{"web", "web"},
		{"<b>x</b> & y", "&lt;b&gt;x&lt;/b&gt; &amp; y"},
		{"a\x00b\x1bc", "a\uFFFDb\uFFFDc"},
		{"line\nnext\ttab", "line\nnext\ttab"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{`"quoted" 'single'`, "&#34;quoted&#34; &#39;single&#39;"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, EscapeHTML(tt.in), "input %q", tt.in)
	}
	assert.Equal(t, "<b>&lt;web&gt;</b>", Bold("<web>"))
	assert.Equal(t, "<code>a&amp;b</code>", Code("a&b"))
}
