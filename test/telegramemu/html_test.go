package telegramemu

import (
	"html"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseHTML(t *testing.T) {
	tests := []struct {
		in, plain, err string
	}{
		{in: "plain", plain: "plain"},
		{in: "<b>bold</b> <strong>s</strong> <i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del>", plain: "bold s ieunskd"},
		{in: "<B>upper</B>", plain: "upper"},
		{in: `<a href="https://x.io/?a=1&amp;b=2">link</a>`, plain: "link"},
		{in: `<a href='https://x.io'>single</a> <a href=https://x.io>bare</a>`, plain: "single bare"},
		{in: `<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>`, plain: "st"},
		{in: `<pre><code class="language-go">x := 1</code></pre>`, plain: "x := 1"},
		{in: "<blockquote expandable>q</blockquote>", plain: "q"},
		{in: "&lt;&gt;&amp;&quot;&#65;&#x42;&#X43;", plain: `<>&"ABC`},
		{in: "a > b", plain: "a > b"},
		{in: "<b\n>x</b >", plain: "x"},
		{in: "<b>x", err: `can't find end tag corresponding to start tag "b"`},
		{in: "<b>x</i>", err: `unmatched end tag at byte offset 4, expected "</b>", found "</i>"`},
		{in: "x</b>", err: "unexpected end tag at byte offset 1"},
		{in: "<b>x</b", err: "unclosed end tag at byte offset 4"},
		{in: "<b", err: "unclosed start tag at byte offset 0"},
		{in: `<a href="x>y</a>`, err: `unclosed value of attribute "href" in start tag at byte offset 0`},
		{in: "<script>x</script>", err: `unsupported start tag "script" at byte offset 0`},
		{in: "<span>x</span>", err: `tag "span" must have class "tg-spoiler" at byte offset 0`},
		{in: "AT&T", err: "character '&' at byte offset 2 starts no entity; escape it as &amp;"},
		{in: "&#0;", err: "character '&' at byte offset 0 starts no entity; escape it as &amp;"},
		{in: "&#xD800;", err: "character '&' at byte offset 0 starts no entity; escape it as &amp;"},
		{in: "&#;", err: "character '&' at byte offset 0 starts no entity; escape it as &amp;"},
		{in: "&amp", err: "character '&' at byte offset 0 starts no entity; escape it as &amp;"},
		{in: `<b "x">y</b>`, err: `unexpected character '"' in start tag at byte offset 0`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			plain, err := parseHTML(tt.in)
			if tt.err != "" {
				require.EqualError(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.plain, plain)
		})
	}
}

func TestUTF16Len(t *testing.T) {
	for in, want := range map[string]int{"": 0, "abc": 3, "→": 1, "🙂": 2, "a🙂é": 4} {
		assert.Equal(t, want, utf16Len(in), in)
	}
}

// FuzzParseHTML proves the parser never panics, and that any text escaped
// the way the bot escapes it parses back to itself.
func FuzzParseHTML(f *testing.F) {
	for _, seed := range []string{"", "<b>x</b>", "<a href='x'>y</a>", "&amp;&#1;&#x;", "<", "</", "<b", "<b x=", `<b x="`, "a & b", "🙂<i>é</i>"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		plain, err := parseHTML(s)
		if err == nil && len(plain) > len(s) {
			t.Fatalf("plain text %q is longer than the input allows", plain)
		}
		if !utf8.ValidString(s) {
			return
		}
		escaped := html.EscapeString(s)
		plain, err = parseHTML(escaped)
		require.NoError(t, err, "escaped %q", escaped)
		require.Equal(t, s, plain)
		plain, err = parseHTML("<b>" + escaped + "</b>")
		require.NoError(t, err)
		require.Equal(t, s, plain)
	})
}
