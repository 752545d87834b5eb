package conversations

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dlclark/regexp2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/teleop/teleop/commands/approval"
	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// Patterns for typed answers, compiled once; the group "v" is the answer.
var (
	oneWord = mustPattern(`^\s*(?<v>\S+)\s*$`)
	number  = mustPattern(`^\s*(?<v>[-+]?\d{1,12})\s*$`)
)

func mustPattern(p string) *regexp2.Regexp {
	re := regexp2.MustCompile(p, regexp2.RE2)
	re.MatchTimeout = regexTimeout
	return re
}

const (
	hintName  = "Send one word: lowercase letters, digits and '-', e.g. <code>web</code>."
	hintImage = "Send an image reference, e.g. <code>nginx:1.27</code>."
	// pageSize is how many names a picker shows at once.
	pageSize  = 8
	pagePrefx = "page:"
)

// hintReplicas follows the schema's bound rather than repeating it.
var hintReplicas = fmt.Sprintf("Send a number from 0 to %d, or press a button.", v1alpha1.MaxReplicas)

// replicasAnswer parses a replica count, or says what is wrong with it.
func replicasAnswer(answer string) (int32, error) {
	n, err := strconv.ParseInt(answer, 10, 64)
	if err != nil {
		return 0, Retry("%s is not a number. %s", code(answer), hintReplicas)
	}
	if err := v1alpha1.ValidateReplicas(n); err != nil {
		return 0, Retry("%s. %s", esc(capitalise(err.Error())), hintReplicas)
	}
	return int32(n), nil
}

// nameAnswer checks a DNS-1123 name, or says what is wrong with it.
func nameAnswer(answer string) (string, error) {
	if err := v1alpha1.ValidateName(answer); err != nil {
		return "", Retry("%s. %s", esc(capitalise(err.Error())), hintName)
	}
	return answer, nil
}

// imageAnswer checks an image reference, or says what is wrong with it.
func imageAnswer(answer string) (string, error) {
	if err := v1alpha1.ValidateImage(answer); err != nil {
		return "", Retry("%s. %s", esc(capitalise(err.Error())), hintImage)
	}
	return answer, nil
}

// picker is a prompt listing names as buttons, two per row, pageSize per
// page, with ◀ ▶ to move between pages.
func picker(text string, names []string, page int) Prompt {
	pages := (len(names) + pageSize - 1) / pageSize
	page = max(0, min(page, pages-1))
	p := Prompt{Text: text}
	shown := names[page*pageSize : min(len(names), (page+1)*pageSize)]
	for i := 0; i < len(shown); i += 2 {
		row := []Choice{}
		for _, n := range shown[i:min(i+2, len(shown))] {
			row = append(row, Choice{Label: n, Value: n})
		}
		p.Buttons = append(p.Buttons, row)
	}
	if pages > 1 {
		p.Text += fmt.Sprintf(" (page %d of %d)", page+1, pages)
		nav := []Choice{}
		if page > 0 {
			nav = append(nav, Choice{Label: "◀", Value: pagePrefx + strconv.Itoa(page-1)})
		}
		if page < pages-1 {
			nav = append(nav, Choice{Label: "▶", Value: pagePrefx + strconv.Itoa(page+1)})
		}
		p.Buttons = append(p.Buttons, nav)
	}
	return p
}

// turnedPage records a page button's page and reports whether answer was one.
// Names cannot contain ':', so no name is mistaken for a page.
func turnedPage(c *Conv, answer string) bool {
	page, ok := strings.CutPrefix(answer, pagePrefx)
	if ok {
		c.Set("page", page)
	}
	return ok
}

func currentPage(c *Conv) int {
	n, _ := strconv.Atoi(c.Get("page"))
	return n
}

// clusterRefusal turns the API server's refusals, and a change held for
// approval, into a message; other errors stay errors.
func clusterRefusal(err error) error {
	if text, held := approval.Reply(err); held {
		return End("%s", text)
	}
	switch {
	case apierrors.IsForbidden(err), apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return End("The cluster refused this: %s", esc(err.Error()))
	}
	return err
}
