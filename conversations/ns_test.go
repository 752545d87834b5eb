package conversations

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stesting "k8s.io/client-go/testing"
)

// A user who may read nowhere is refused at once: no namespace is listed
// live, no conversation is stored, only permission checks are made.
func TestNsRefusesAStrangerWithoutListOrWrite(t *testing.T) {
	w := newWorld(t)
	// The store reads its buckets once per process; that is not the stranger's cost.
	w.open(mallory)
	_, err := w.engine.cfg.Namespaces.Get(context.Background(), group)
	require.NoError(t, err)
	w.kube.ClearActions()

	got := w.start(mallory, "ns", nil)

	assert.Equal(t, []string{"⛔ You may not list teleapps in any namespace: ask an admin for teleop-viewer."}, got)
	assert.Empty(t, w.open(mallory))
	for _, a := range w.kube.Actions() {
		if a.GetResource().Resource == "subjectaccessreviews" {
			continue
		}
		assert.Failf(t, "a refusal cost more than permission checks", "%s %s", a.GetVerb(), a.GetResource().Resource)
	}
	reviews := countActions(w.kube.Actions(), "create", "subjectaccessreviews")
	assert.Equal(t, 1+3, reviews, "one cluster-wide check, then one per namespace")

	w.kube.ClearActions()
	w.start(mallory, "ns", nil)
	assert.Zero(t, countActions(w.kube.Actions(), "create", "subjectaccessreviews"), "the answers are remembered")
}

// /ns offers every namespace the user may read, page by page, however many
// there are.
func TestNsPagesThroughEveryNamespace(t *testing.T) {
	even := func(i int) bool { return i%2 == 0 }
	everyTeam := func(int) bool { return true }
	tests := []struct {
		name  string
		grant map[string][]string // namespace ("" = all) -> verbs
		want  []string            // namespaces offered, in order
	}{
		{
			name:  "allowed everywhere: one check, every namespace",
			grant: map[string][]string{"": {"list"}},
			want:  append(append([]string{"default", "secret"}, teams(everyTeam)...), "web"),
		},
		{name: "allowed in every other one", grant: grants(teams(even)), want: teams(even)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			for _, name := range teams(everyTeam) {
				_, err := w.kube.CoreV1().Namespaces().Create(ctx, namespaceObj(name), metav1.CreateOptions{})
				require.NoError(t, err)
			}
			w.mu.Lock()
			w.grants[bob] = tt.grant
			w.mu.Unlock()
			w.engine = w.newEngine() // its namespace cache holds them all

			w.start(bob, "ns", nil)
			var offered []string
			for page := 1; page < 100; page++ {
				labels := w.bot.lastButtons()
				require.NotEmpty(t, labels, "page %d has buttons", page)
				offered = append(offered, slices.DeleteFunc(slices.Clone(labels), func(l string) bool { return l == "◀" || l == "▶" })...)
				if !slices.Contains(labels, "▶") {
					break
				}
				w.press(bob, bob, "▶")
			}
			assert.Equal(t, tt.want, offered)
		})
	}
}

// teams names the 100 namespaces team-000 to team-099 that keep accepts.
func teams(keep func(i int) bool) []string {
	var out []string
	for i := range 100 {
		if keep(i) {
			out = append(out, fmt.Sprintf("team-%03d", i))
		}
	}
	return out
}

// grants allows list in each of namespaces.
func grants(namespaces []string) map[string][]string {
	out := map[string][]string{}
	for _, ns := range namespaces {
		out[ns] = []string{"list"}
	}
	return out
}

// lastButtons returns the labels of the buttons of the last message sent or
// edited.
func (r *recorder) lastButtons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	if len(r.log) == 0 {
		return nil
	}
	for _, row := range r.log[len(r.log)-1].Buttons {
		for _, b := range row {
			out = append(out, b.Text)
		}
	}
	return out
}

func countActions(actions []k8stesting.Action, verb, resource string) int {
	n := 0
	for _, a := range actions {
		if a.GetVerb() == verb && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}
