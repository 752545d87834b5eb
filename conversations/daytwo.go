package conversations

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/commands/report"
	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
)

// The flows of /restart, /rollback, /history, /events and /logs without a
// name: pick the app, then the same as the one-shot command with that name.

func restartFlow() *Flow {
	return appFlow{name: "restart", question: "Which app in %s should I restart?", need: onTeleApps("patch"),
		act: func(ctx context.Context, c *Conv, app *v1alpha1.TeleApp) error {
			restarted, err := c.Apps().Restart(ctx, c.Namespace(), app.Name, time.Now(), c.Audit())
			if err != nil {
				return appError(c, app.Name, err)
			}
			c.Follow(progress.Rollout{Op: progress.OperationRestart, Namespace: c.Namespace(), Name: app.Name,
				To: restarted.Spec.DesiredReplicas(), Generation: restarted.Generation}, restarted.Spec.Image)
			return nil
		}}.build()
}

func rollbackFlow() *Flow {
	return appFlow{name: "rollback", question: "Which app in %s should go back to its previous image?", need: onTeleApps("patch"),
		act: func(ctx context.Context, c *Conv, app *v1alpha1.TeleApp) error {
			name := app.Name
			before, after, to, err := c.Apps().Rollback(ctx, c.Namespace(), name, apps.RollbackTarget{}, c.Audit())
			switch {
			case errors.Is(err, apps.ErrNoRevision):
				return End("%s has run no other image in %s that I know of; /history %s lists them. Nothing changed.", bold(name), bold(c.Namespace()), esc(name))
			case errors.Is(err, apps.ErrUnchanged):
				return End("%s already runs %s; nothing changed.", bold(name), code(to.Image))
			case err != nil:
				return appError(c, name, err)
			}
			c.Follow(progress.Rollout{Op: progress.OperationRollback, Namespace: c.Namespace(), Name: name,
				To: after.Spec.DesiredReplicas(), Image: to.Image, Revision: to.Revision, Generation: after.Generation}, before.Spec.Image)
			return nil
		}}.build()
}

func historyFlow() *Flow {
	return appFlow{name: "history", question: "Which app's history in %s?", need: onTeleApps("get"),
		act: func(_ context.Context, c *Conv, app *v1alpha1.TeleApp) error {
			c.Done("%s", progress.FormatHistory(app))
			return nil
		}}.build()
}

// eventsFlow shows the picked app's Events, as /events does.
func eventsFlow(inspect Inspector) *Flow {
	return appFlow{name: "events", question: "Whose Events in %s?", need: []access.Permission{access.OnTeleApps("get"), access.ListEvents},
		act: func(ctx context.Context, c *Conv, app *v1alpha1.TeleApp) error {
			text, err := report.EventsOf(ctx, inspect, app.Namespace, app.Name, time.Now())
			if err != nil {
				return clusterRefusal(err)
			}
			c.Report(text)
			return nil
		}}.build()
}

// logsFlow shows the log of the picked app's default pod, as /logs does.
func logsFlow(inspect Inspector) *Flow {
	return appFlow{name: "logs", question: "Whose logs in %s?", need: []access.Permission{access.OnTeleApps("get"), access.GetPodLogs},
		act: func(ctx context.Context, c *Conv, app *v1alpha1.TeleApp) error {
			text, err := report.LogOf(ctx, inspect, app.Namespace, app.Name, "", report.DefaultLogLines)
			if err != nil {
				return clusterRefusal(err)
			}
			c.Report(text)
			return nil
		}}.build()
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
