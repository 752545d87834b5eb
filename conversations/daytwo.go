package conversations

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/operator/apps"
)

// The flows of /restart, /rollback and /history without a name: pick the
// app, then the same as the one-shot command with that name.

func restartFlow() *Flow {
	return pickThen("restart", "patch", "Which app in %s should I restart?", func(ctx context.Context, c *Conv, name string) error {
		app, err := c.Apps().Restart(ctx, c.Namespace(), name, time.Now(), c.Audit())
		if err != nil {
			return appError(c, name, err)
		}
		c.Follow(progress.Rollout{Op: progress.OperationRestart, Namespace: c.Namespace(), Name: name,
			To: app.Spec.DesiredReplicas(), Generation: app.Generation}, app.Spec.Image)
		return nil
	})
}

func rollbackFlow() *Flow {
	return pickThen("rollback", "patch", "Which app in %s should go back to its previous image?", func(ctx context.Context, c *Conv, name string) error {
		before, after, to, err := c.Apps().Rollback(ctx, c.Namespace(), name, apps.RollbackTarget{}, c.Audit())
		switch {
		case errors.Is(err, apps.ErrNoRevision):
			return End("%s has run no other image in %s that I know of; /history %s lists them. Nothing changed.", bold(name), bold(c.Namespace()), esc(name))
		case errors.Is(err, apps.ErrUnchanged):
			return End("%s already runs %s; nothing changed.", bold(name), code(to.Image))
		}
		if err != nil {
			return appError(c, name, err)
		}
		c.Follow(progress.Rollout{Op: progress.OperationRollback, Namespace: c.Namespace(), Name: name,
			To: after.Spec.DesiredReplicas(), Image: to.Image, Revision: to.Revision, Generation: after.Generation}, before.Spec.Image)
		return nil
	})
}

func historyFlow() *Flow {
	return pickThen("history", "get", "Which app's history in %s?", func(ctx context.Context, c *Conv, name string) error {
		app, err := c.Apps().Get(ctx, c.Namespace(), name)
		if err != nil {
			return appError(c, name, err)
		}
		c.Done("%s", progress.FormatHistory(app))
		return nil
	})
}

// pickThen is a flow of one question, which app, whose answer act handles
// (ending the flow with c.Done or an End) once the user may still verb.
func pickThen(flow, verb, question string, act func(ctx context.Context, c *Conv, name string) error) *Flow {
	pick := pickApp(verb, question, "")
	choose := pick.Accept
	pick.Accept = func(ctx context.Context, c *Conv, answer string) (string, error) {
		next, err := choose(ctx, c, answer)
		if err != nil || next != "" {
			return next, err // a bad answer, or another page
		}
		if err := c.Allow(ctx, verb); err != nil {
			return "", err
		}
		return "", act(ctx, c, c.Get("name"))
	}
	return &Flow{Name: flow, Command: "/" + flow, Begin: func(*Conv) string { return "pick" }, States: map[string]*State{"pick": pick}}
}

// appError is err in the user's terms: already done (a redelivered press,
// or a second restart within the second), gone, refused.
func appError(c *Conv, name string, err error) error {
	switch {
	case errors.Is(err, apps.ErrAlreadyApplied), errors.Is(err, apps.ErrUnchanged):
		c.Done("Already done.")
		return nil
	case apierrors.IsNotFound(err):
		return End("%s is gone from %s; nothing was changed.", bold(name), bold(c.Namespace()))
	}
	return clusterRefusal(err)
}
