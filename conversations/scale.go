package conversations

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
)

// scaleFlow: pick the app (or preset "name") → replicas.
func scaleFlow() *Flow {
	return appFlow{
		name: "scale", question: "Which app in %s should I scale?", need: onTeleApps("update"),
		nextName: "replicas", next: &State{Prompt: scalePrompt, Pattern: number, Hint: hintReplicas, Accept: scaleTo},
	}.build()
}

func scalePrompt(ctx context.Context, c *Conv) (Prompt, error) {
	app, err := pickedApp(ctx, c)
	if err != nil {
		return Prompt{}, err
	}
	current := ptr.Deref(app.Spec.Replicas, 1)
	row := []Choice{}
	for _, n := range replicaSuggestions(current) {
		s := strconv.Itoa(int(n))
		row = append(row, Choice{Label: s, Value: s})
	}
	return Prompt{
		Text:    fmt.Sprintf("%s has %d replicas. How many should it have? Press a button or send a number from 0 to %d.", bold(app.Name), current, v1alpha1.MaxReplicas),
		Buttons: [][]Choice{row},
	}, nil
}

// replicaSuggestions are the counts around current worth a button: a step
// or two either way and double, within 0..MaxReplicas, current excluded.
func replicaSuggestions(current int32) []int32 {
	var out []int32
	for _, n := range []int32{current - 2, current - 1, current + 1, current + 2, 2 * current} {
		if n >= 0 && n <= v1alpha1.MaxReplicas && n != current && (len(out) == 0 || n > out[len(out)-1]) {
			out = append(out, n)
		}
	}
	return out
}

func scaleTo(ctx context.Context, c *Conv, answer string) (string, error) {
	n, err := replicasAnswer(answer)
	if err != nil {
		return "", err
	}
	name, ns := c.Get("name"), c.Namespace()
	from, to, err := c.Apps().Scale(ctx, ns, name, apps.ReplicaChange{Set: &n}, c.Audit())
	switch {
	case errors.Is(err, apps.ErrAlreadyApplied):
	case apierrors.IsNotFound(err):
		return "", End("%s is gone from %s; nothing was changed.", bold(name), bold(ns))
	case err != nil:
		return "", clusterRefusal(err)
	}
	c.Done("%s scaled %d → %d in %s.", bold(name), from, to, bold(ns))
	return "", nil
}
