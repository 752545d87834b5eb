package conversations

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// appFlow is a flow about one app of the chat's namespace, the shape of
// every flow that starts by choosing an app (scale, delete, deploy,
// restart, rollback, history, events, logs): the user picks the app from
// buttons (paged) or types its name, unless Start preset "name"; then one
// more question about it (next) is asked, or act is done at once.
type appFlow struct {
	// name is the flow's name and its command without the "/".
	name string
	// question asks for the app; %s is the namespace.
	question string
	// need is what the user must be allowed in the namespace: asked before
	// the buttons are shown, and again before each later step.
	need []access.Permission
	// nextName and next are the question about the picked app (its state
	// is saved under nextName); without it, act ends the flow with the app.
	nextName string
	next     *State
	act      func(ctx context.Context, c *Conv, app *v1alpha1.TeleApp) error
}

const pickState = "pick"

func (f appFlow) build() *Flow {
	states := map[string]*State{pickState: {
		Prompt:  f.pickPrompt,
		Pattern: oneWord,
		Hint:    "Press the app's button, or send its name.",
		Accept:  f.picked,
	}}
	if f.next != nil {
		states[f.nextName] = f.guard(f.next)
	}
	return &Flow{
		Name: f.name, Command: "/" + f.name, States: states,
		Begin: func(c *Conv) string {
			if c.Get("name") != "" && f.next != nil {
				return f.nextName
			}
			return pickState
		},
	}
}

// pickPrompt offers the namespace's apps once the user may do what the
// flow is for there.
func (f appFlow) pickPrompt(ctx context.Context, c *Conv) (Prompt, error) {
	if err := c.allowed(ctx, c.Namespace(), f.need...); err != nil {
		return Prompt{}, err
	}
	list, err := c.Apps().List(ctx, c.Namespace())
	if err != nil {
		return Prompt{}, err
	}
	if len(list) == 0 {
		return Prompt{}, End("There are no apps in %s. Create one with /create.", bold(c.Namespace()))
	}
	names := make([]string, 0, len(list))
	for _, a := range list {
		names = append(names, a.Name)
	}
	return picker(fmt.Sprintf(f.question, bold(c.Namespace())), names, currentPage(c)), nil
}

// picked takes a page button, or an app that exists; a name typed wrong is
// asked again.
func (f appFlow) picked(ctx context.Context, c *Conv, answer string) (string, error) {
	if turnedPage(c, answer) {
		return pickState, nil
	}
	name, err := nameAnswer(answer)
	if err != nil {
		return "", err
	}
	app, err := c.Apps().Get(ctx, c.Namespace(), name)
	if apierrors.IsNotFound(err) {
		return "", Retry("There is no app %s in %s.", bold(name), bold(c.Namespace()))
	} else if err != nil {
		return "", err
	}
	c.Set("name", name)
	if f.next != nil {
		return f.nextName, nil
	}
	if err := c.allowed(ctx, c.Namespace(), f.need...); err != nil {
		return "", err
	}
	return "", f.act(ctx, c, app)
}

// guard asks for the flow's permissions again before s asks or accepts:
// they may have been revoked while the user typed.
func (f appFlow) guard(s *State) *State {
	guarded := *s
	guarded.Prompt = func(ctx context.Context, c *Conv) (Prompt, error) {
		if err := c.allowed(ctx, c.Namespace(), f.need...); err != nil {
			return Prompt{}, err
		}
		return s.Prompt(ctx, c)
	}
	guarded.Accept = func(ctx context.Context, c *Conv, answer string) (string, error) {
		if err := c.allowed(ctx, c.Namespace(), f.need...); err != nil {
			return "", err
		}
		return s.Accept(ctx, c, answer)
	}
	return &guarded
}

// pickedApp is the app chosen earlier, or an End when it is gone since.
func pickedApp(ctx context.Context, c *Conv) (*v1alpha1.TeleApp, error) {
	app, err := c.Apps().Get(ctx, c.Namespace(), c.Get("name"))
	if apierrors.IsNotFound(err) {
		return nil, End("There is no app %s in %s.", bold(c.Get("name")), bold(c.Namespace()))
	}
	return app, err
}

// onTeleApps is the permission to do verb on TeleApps.
func onTeleApps(verb string) []access.Permission {
	return []access.Permission{access.OnTeleApps(verb)}
}
