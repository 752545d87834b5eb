package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/approval"
	"github.com/teleop/teleop/commands/identity"
	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/apps"
)

const somethingWentWrong = "Something went wrong on my side; please try again in a moment."

// audit says who changes what with this request; the update ID makes a
// redelivered update recognisable.
func (req *request) audit() apps.Audit {
	u := req.update
	return identity.Audit(u.UserID, u.Username, strings.TrimSpace(u.Text), u.ID)
}

// usage is the reply to a bad input: the problem (HTML), then how to write it.
func (req *request) usage(problem string) string {
	return fmt.Sprintf("%s\nUsage: %s\nExample: %s", problem, code(req.cmd.usage), code(req.cmd.example))
}

// chatNamespace is the namespace the chat works in.
func (r *Router) chatNamespace(ctx context.Context, req *request) (string, error) {
	return r.cfg.Namespaces.Get(ctx, req.update.ChatID)
}

// target resolves "name" or "namespace/name" against the chat's namespace.
// A bad name gives a problem to show the user (HTML); a failure to read the
// chat's namespace gives an error.
func (r *Router) target(ctx context.Context, req *request, arg string) (namespace, name, problem string, err error) {
	namespace, name, qualified := strings.Cut(arg, "/")
	if !qualified {
		name = namespace
		if namespace, err = r.chatNamespace(ctx, req); err != nil {
			return "", "", "", err
		}
	} else if nsErr := v1alpha1.ValidateName(namespace); nsErr != nil {
		return "", "", "Bad namespace: " + esc(nsErr.Error()) + ".", nil
	}
	if nameErr := v1alpha1.ValidateName(name); nameErr != nil {
		return "", "", "Bad app name: " + esc(nameErr.Error()) + ".", nil
	}
	return namespace, name, "", nil
}

// targetImage is the opening of /create and /deploy: resolve the name
// argument and check the image argument. A non-empty reply ends the command.
func (r *Router) targetImage(ctx context.Context, req *request) (namespace, name, image, reply string) {
	namespace, name, problem, err := r.target(ctx, req, req.args["name"])
	if err != nil {
		return "", "", "", r.failure(req, err, namespace, name)
	}
	if problem != "" {
		return "", "", "", req.usage(problem)
	}
	image = req.args["image"]
	if err := v1alpha1.ValidateImage(image); err != nil {
		return "", "", "", req.usage("Bad image: " + esc(err.Error()) + ".")
	}
	return namespace, name, image, ""
}

// readApp is the opening of the commands that read an app: resolve the
// name argument (a problem typed in the other arguments comes as
// argProblem), check that the user may get TeleApps and whatever else the
// command reads, and get the app. A non-empty reply ends the command.
func (r *Router) readApp(ctx context.Context, req *request, argProblem string, also ...access.Permission) (app *v1alpha1.TeleApp, reply string) {
	namespace, name, problem, err := r.target(ctx, req, req.args["name"])
	if err != nil {
		return nil, r.failure(req, err, namespace, name)
	}
	if problem == "" {
		problem = argProblem
	}
	if problem != "" {
		return nil, req.usage(problem)
	}
	for _, p := range append([]access.Permission{access.OnTeleApps("get")}, also...) {
		if refusal := r.refusalFor(ctx, req, p, namespace); refusal != "" {
			return nil, refusal
		}
	}
	if app, err = r.cfg.Apps.Get(ctx, namespace, name); err != nil {
		return nil, r.failure(req, err, namespace, name)
	}
	return app, ""
}

// refusal asks whether the user may do verb on TeleApps in namespace, and
// returns "" when so and otherwise the reply that says why not.
func (r *Router) refusal(ctx context.Context, req *request, verb, namespace string) string {
	return r.refusalFor(ctx, req, access.OnTeleApps(verb), namespace)
}

// refusalFor is refusal for any permission.
func (r *Router) refusalFor(ctx context.Context, req *request, p access.Permission, namespace string) string {
	err := r.cfg.Access.Allowed(ctx, req.identity, p, namespace)
	var denied *access.DeniedError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &denied):
		r.log.Info("refused", "user", req.identity.User, "verb", p.Verb, "resource", denied.Resource, "namespace", namespace)
		return identity.Refusal(denied)
	default:
		r.log.Error("authorize", "user", req.identity.User, "verb", p.Verb, "resource", p.Resource, "namespace", namespace, "err", err)
		return "I could not check your permissions right now; nothing was changed. Please try again in a moment."
	}
}

// failure explains an error from the cluster in the user's terms.
func (r *Router) failure(req *request, err error, namespace, name string) string {
	if text, held := approval.Reply(err); held {
		return text
	}
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Sprintf("There is no app %s in %s. /list shows what there is.", bold(name), bold(namespace))
	case apierrors.IsAlreadyExists(err):
		return fmt.Sprintf("%s already exists in %s. See /status %s, or change it with /scale.", bold(name), bold(namespace), esc(name))
	case apierrors.IsForbidden(err):
		return "The cluster refused: " + esc(err.Error())
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return "The cluster refused this: " + esc(err.Error())
	}
	r.log.Error("cluster call failed", "command", req.cmd.word, "namespace", namespace, "name", name, "err", err)
	return somethingWentWrong
}

// The Telegram HTML helpers, short for the many replies written here.
var (
	esc  = bot.EscapeHTML
	bold = bot.Bold
	code = bot.Code
)

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
