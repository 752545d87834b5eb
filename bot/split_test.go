package bot

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSplitText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		text  string
		limit int
		want  []string
	}{
		{"fits", "short\ntext", 20, []string{"short\ntext"}},
		{"lines packed greedily", "aaaa\nbbbb\ncccc", 9, []string{"aaaa\nbbbb", "cccc"}},
		{"tags closed and reopened", "<b>aaaa\nbbbb</b>\ncccc", 12, []string{"<b>aaaa</b>", "<b>bbbb</b>", "cccc"}},
		{"nested tags", `<a href="x"><i>aa` + "\n" + `bb</i></a>`, 26, []string{`<a href="x"><i>aa</i></a>`, `<a href="x"><i>bb</i></a>`}},
		{"blank lines kept", "aaaa\n\n\nbbbb", 5, []string{"aaaa\n", "\nbbbb"}},
		{"empty parts dropped", "aaaa\n<b></b>\n\n\n\n\nbbbb", 5, []string{"aaaa", "bbbb"}},
		{"long line cut at a space", strings.Repeat("word ", 6), 12, []string{"word word ", "word word ", "word word "}},
		{"long line cut outside an entity", strings.Repeat("&amp;", 5), 12, []string{"&amp;&amp;", "&amp;&amp;", "&amp;"}},
		{"long line cut outside a tag", "aaaaaaa<b>bb</b>", 10, []string{"aaaaaaa", "<b>bb</b>"}},
		{"wide characters counted in UTF-16", strings.Repeat("😀", 6), 8, []string{"😀😀😀😀", "😀😀"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitText(tt.text, tt.limit, tt.limit)
			assert.Equal(t, tt.want, got)
			for _, part := range got {
				assert.LessOrEqual(t, utf16Len(part), tt.limit, "part %q", part)
			}
		})
	}
}

func TestPlainText(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "web scaled 3 → 5 in default & <ok>",
		PlainText(`<b>web</b> scaled 3 → 5 in <a href="https://x">default</a> &amp; &lt;ok&gt;`))
}
