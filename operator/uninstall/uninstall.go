// Package uninstall takes teleop out of a cluster without leaving a TeleApp
// that cannot be deleted: it stops teleop's Deployment, so that nothing puts
// a finalizer back, then removes teleop's finalizers from every TeleApp.
// `teleop uninstall` and the Helm chart's pre-delete hook run it.
package uninstall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/teleop/teleop/operator/announce"
	v1alpha1 "github.com/teleop/teleop/operator/api/v1alpha1"
	"github.com/teleop/teleop/operator/generated/clientset/versioned"
)

// Finalizers are the finalizers teleop puts on TeleApps.
var Finalizers = []string{announce.Finalizer}

// FieldManager names uninstall's writes in managedFields.
const FieldManager = "teleop-uninstall"

// DefaultTimeout bounds the wait for teleop's pods to end.
const DefaultTimeout = 2 * time.Minute

// Options say where teleop runs and what to release.
type Options struct {
	// Namespace and Deployment name teleop's Deployment. When it exists it
	// is scaled to zero, and its pods waited for, before anything else.
	Namespace  string
	Deployment string
	// WatchNamespace limits the release to the TeleApps of one namespace;
	// all namespaces when empty.
	WatchNamespace string
	// Timeout bounds the wait for teleop's pods; DefaultTimeout when zero.
	Timeout time.Duration
	// Out gets one line for each thing done.
	Out io.Writer
}

// Run stops teleop's Deployment, then releases every TeleApp. It is
// idempotent. When teleop's pods do not end in time the TeleApps are
// released all the same and the error says that a pod may still put a
// finalizer back.
func Run(ctx context.Context, kube kubernetes.Interface, tele versioned.Interface, opts Options) error {
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	stopErr := stop(ctx, kube, opts)
	return errors.Join(stopErr, release(ctx, tele, opts))
}

// stop scales teleop's Deployment to zero and waits until its pods are gone.
func stop(ctx context.Context, kube kubernetes.Interface, opts Options) error {
	if opts.Deployment == "" {
		return nil
	}
	name := opts.Namespace + "/" + opts.Deployment
	d, err := kube.AppsV1().Deployments(opts.Namespace).Get(ctx, opts.Deployment, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		fmt.Fprintf(opts.Out, "no Deployment %s: no teleop to stop\n", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read Deployment %s: %w", name, err)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 0 {
		patch := []byte(`{"spec":{"replicas":0}}`)
		if _, err := kube.AppsV1().Deployments(opts.Namespace).Patch(ctx, opts.Deployment, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("scale Deployment %s to 0: %w", name, err)
		}
		fmt.Fprintf(opts.Out, "scaled Deployment %s to 0\n", name)
	}
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return fmt.Errorf("selector of Deployment %s: %w", name, err)
	}
	var left int
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, opts.Timeout, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods(opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
		if err != nil {
			return false, fmt.Errorf("list the pods of Deployment %s: %w", name, err)
		}
		left = len(pods.Items)
		return left == 0, nil
	})
	if err != nil {
		return fmt.Errorf("teleop's pods did not end (%d left after %s), so one may put a finalizer back; run teleop uninstall again once they are gone: %w", left, opts.Timeout, err)
	}
	fmt.Fprintf(opts.Out, "teleop's pods of Deployment %s are gone\n", name)
	return nil
}

// release removes teleop's finalizers from the TeleApps.
func release(ctx context.Context, tele versioned.Interface, opts Options) error {
	where := "all namespaces"
	if opts.WatchNamespace != "" {
		where = "namespace " + opts.WatchNamespace
	}
	clients := tele.TeleopV1alpha1().TeleApps(opts.WatchNamespace)
	released, seen := 0, 0
	list := metav1.ListOptions{Limit: 500}
	for {
		page, err := clients.List(ctx, list)
		if err != nil {
			return fmt.Errorf("list the TeleApps of %s: %w", where, err)
		}
		for i := range page.Items {
			seen++
			done, err := releaseOne(ctx, tele, &page.Items[i])
			if err != nil {
				return err
			}
			if done {
				released++
				fmt.Fprintf(opts.Out, "released TeleApp %s/%s\n", page.Items[i].Namespace, page.Items[i].Name)
			}
		}
		if list.Continue = page.Continue; list.Continue == "" {
			break
		}
	}
	fmt.Fprintf(opts.Out, "removed teleop's finalizers from %d of %d TeleApps in %s\n", released, seen, where)
	return nil
}

// releaseOne removes teleop's finalizers from app, reading it again when it
// changed meanwhile. It reports whether there was any to remove.
func releaseOne(ctx context.Context, tele versioned.Interface, app *v1alpha1.TeleApp) (bool, error) {
	clients := tele.TeleopV1alpha1().TeleApps(app.Namespace)
	released := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		kept := slices.DeleteFunc(slices.Clone(app.Finalizers), func(f string) bool { return slices.Contains(Finalizers, f) })
		if len(kept) == len(app.Finalizers) {
			return nil
		}
		// resourceVersion: the other finalizers kept are those of this version.
		body, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"uid": app.UID, "resourceVersion": app.ResourceVersion, "finalizers": kept,
		}})
		if err != nil {
			return err
		}
		_, err = clients.Patch(ctx, app.Name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: FieldManager})
		if apierrors.IsConflict(err) {
			fresh, getErr := clients.Get(ctx, app.Name, metav1.GetOptions{})
			if getErr != nil {
				return getErr
			}
			app = fresh
			return err
		}
		released = err == nil
		return err
	})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove teleop's finalizers from TeleApp %s/%s: %w", app.Namespace, app.Name, err)
	}
	return released, nil
}
