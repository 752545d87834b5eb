package approval_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/teleop/teleop/operator/approvals"
	"github.com/teleop/teleop/operator/apps"
)

// admission is a real validating webhook the API server calls on every
// update of a TeleApp in one namespace. Updates that leave the spec alone
// (the approval bookkeeping) always pass; a spec change fails with an HTTP
// 500 (the API server answers 500: a transient error) while failures > 0,
// is denied (403: a permanent refusal) while deny is set, and else passes.
type admission struct {
	failures atomic.Int64
	deny     atomic.Bool
	// specChanges counts the spec changes it was asked about; admitted
	// those it let through.
	specChanges, admitted atomic.Int64
}

// admit installs a for the world's namespace and waits until the API server
// calls it.
func (w *world) admit(a *admission) {
	w.t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(a.serve))
	w.t.Cleanup(srv.Close)
	name := "teleop-approval-test-" + w.ns
	hooks := w.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	_, err := hooks.Create(context.Background(), &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "teleapps.approval-test.teleop.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL:      ptr.To(srv.URL + "/validate"),
				CABundle: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{"teleop.io"}, APIVersions: []string{"v1alpha1"}, Resources: []string{"teleapps"}},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: w.ns}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To(int32(5)),
		}},
	}, metav1.CreateOptions{})
	require.NoError(w.t, err)
	w.t.Cleanup(func() { _ = hooks.Delete(context.Background(), name, metav1.DeleteOptions{}) })

	// The API server picks the configuration up from its informer: change a
	// probe's spec until the webhook is asked.
	ctx := context.Background()
	_, err = w.gate.Create(ctx, w.ns, "probe", "nginx:1.27", 1, nil, apps.Audit{Actor: "test", Command: "create", RequestID: "probe"})
	require.NoError(w.t, err)
	replicas := int32(1)
	require.Eventually(w.t, func() bool {
		replicas = 3 - replicas
		_, _, err := w.gate.Scale(ctx, w.ns, "probe", apps.ReplicaChange{Set: ptr.To(replicas)}, apps.Audit{Actor: "test", Command: "probe"})
		require.NoError(w.t, err)
		return a.specChanges.Load() > 0
	}, 30*time.Second, 200*time.Millisecond, "the API server never called the webhook")
	a.specChanges.Store(0)
	a.admitted.Store(0)
}

func (a *admission) serve(rw http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(rw, "bad review", http.StatusBadRequest)
		return
	}
	var object, old struct {
		Spec json.RawMessage `json:"spec"`
	}
	_ = json.Unmarshal(review.Request.Object.Raw, &object)
	_ = json.Unmarshal(review.Request.OldObject.Raw, &old)
	response := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	if !bytes.Equal(object.Spec, old.Spec) {
		a.specChanges.Add(1)
		switch {
		case a.failures.Add(-1) >= 0:
			http.Error(rw, "the webhook is briefly down", http.StatusInternalServerError)
			return
		case a.deny.Load():
			response.Allowed = false
			response.Result = &metav1.Status{Message: "this app is frozen for the release"}
		default:
			a.admitted.Add(1)
		}
	}
	review.Response = response
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(review)
}

// newAdmittedWorld is a world whose namespace has the app web on
// nginx:1.27 and an admission webhook, passing everything for now.
func newAdmittedWorld(t *testing.T) (*world, *admission) {
	w := newWorld(t)
	_, err := w.gate.Create(context.Background(), w.ns, "web", "nginx:1.27", 1, nil, apps.Audit{Actor: "test", Command: "create", RequestID: "c1"})
	require.NoError(t, err)
	hook := &admission{}
	w.admit(hook)
	return w, hook
}

// requestTo posts a /deploy of web to image by alice and returns the
// message of its request.
func (w *world) requestTo(image string) int {
	w.t.Helper()
	before := w.chat.requests()
	w.say(alice, "/deploy web "+image)
	require.Contains(w.t, w.chat.last(), "needs a second person")
	for id := range w.chat.requests() {
		if _, old := before[id]; !old {
			return id
		}
	}
	w.t.Fatal("no request posted")
	return 0
}

// TestClusterApprovedChangeRetried: an approved /deploy that meets a
// transient failure (the API server answering 500 as an admission webhook
// is briefly down) is retried and applied once; one that keeps failing
// stays approved until the sweeper applies it; one the cluster refuses is
// closed as failed, in the chat, the Event and teleop.io/last-approval.
func TestClusterApprovedChangeRetried(t *testing.T) {
	w, hook := newAdmittedWorld(t)
	ctx := context.Background()

	// Two failures, then it passes: retried within the press.
	hook.failures.Store(2)
	id := w.requestTo("nginx:1.28")
	_, answer := w.press(bob, id, "Approve")
	assert.Equal(t, "Approved.", answer)
	assert.Equal(t, "nginx:1.28", w.app("web").Spec.Image)
	assert.Equal(t, int64(3), hook.specChanges.Load(), "two failed attempts and the one that passed")
	assert.Equal(t, int64(1), hook.admitted.Load(), "applied once")
	assert.Contains(t, w.chat.latest(id), "✅ Approved by telegram:2 (@bob): done.")
	assert.Equal(t, "applied", w.lastApproval("web")["outcome"])

	// It keeps failing: the request stays approved, and nothing changes
	// until the sweeper applies it.
	hook.specChanges.Store(0)
	hook.admitted.Store(0)
	hook.failures.Store(1 << 30)
	id = w.requestTo("nginx:1.29")
	_, answer = w.press(bob, id, "Approve")
	assert.Equal(t, "Approved.", answer)
	assert.Contains(t, w.chat.latest(id), "but the cluster did not answer, so it is not applied yet; I will try again within 2m.")
	app := w.app("web")
	assert.Equal(t, "nginx:1.28", app.Spec.Image)
	assert.Contains(t, app.Annotations[approvals.AnnotationRequest], `"state":"approved"`)
	assert.Greater(t, hook.specChanges.Load(), int64(2), "retried")
	hook.failures.Store(0)
	require.NoError(t, w.gate.Sweep(ctx), "too early: the sweeper leaves it to the press")
	assert.Equal(t, "nginx:1.28", w.app("web").Spec.Image)
	w.clock.advance(2 * time.Minute)
	require.NoError(t, w.gate.Sweep(ctx))
	app = w.app("web")
	assert.Equal(t, "nginx:1.29", app.Spec.Image)
	assert.Equal(t, "telegram:1 (@alice), approved by telegram:2 (@bob)", app.Annotations[apps.AnnotationLastChangedBy])
	assert.NotContains(t, app.Annotations, approvals.AnnotationRequest)
	assert.Contains(t, w.chat.latest(id), "✅ Approved by telegram:2 (@bob): done.")
	require.NoError(t, w.gate.Sweep(ctx))
	assert.Equal(t, app.ResourceVersion, w.app("web").ResourceVersion, "a closed request is not applied again")
	assert.Equal(t, int64(1), hook.admitted.Load(), "applied once")

	// The cluster refuses it: closed as failed at once, nothing changed.
	hook.specChanges.Store(0)
	hook.deny.Store(true)
	id = w.requestTo("nginx:1.30")
	_, answer = w.press(bob, id, "Approve")
	assert.Equal(t, "Approved.", answer)
	assert.Equal(t, int64(1), hook.specChanges.Load(), "a refusal is not retried")
	app = w.app("web")
	assert.Equal(t, "nginx:1.29", app.Spec.Image)
	assert.NotContains(t, app.Annotations, approvals.AnnotationRequest)
	note := w.chat.latest(id)
	assert.Contains(t, note, "✅ Approved by telegram:2 (@bob), but it failed: the cluster refused it: admission webhook")
	assert.Contains(t, note, "this app is frozen for the release. Nothing changed.")
	rec := w.lastApproval("web")
	assert.Equal(t, "failed", rec["outcome"])
	assert.Contains(t, rec["detail"], "this app is frozen for the release")
	w.waitEvents(approvals.ReasonFailed)
	failed, err := w.kube.CoreV1().Events(w.ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=" + approvals.ReasonFailed})
	require.NoError(t, err)
	require.Len(t, failed.Items, 1)
	assert.Equal(t, corev1.EventTypeWarning, failed.Items[0].Type)
	assert.True(t, strings.Contains(failed.Items[0].Message, "this app is frozen for the release"), failed.Items[0].Message)
}

// TestClusterApprovedChangeGivesUp: a change that the cluster does not take
// for as long as a request may wait is closed as failed by the sweeper.
func TestClusterApprovedChangeGivesUp(t *testing.T) {
	w, hook := newAdmittedWorld(t)
	ctx := context.Background()
	hook.failures.Store(1 << 30)
	id := w.requestTo("nginx:1.28")
	w.press(bob, id, "Approve")
	assert.Contains(t, w.chat.latest(id), "not applied yet")

	w.clock.advance(approvals.DefaultTimeout + time.Minute)
	require.NoError(t, w.gate.Sweep(ctx))
	assert.Contains(t, w.chat.latest(id), "but it failed: the cluster kept failing to take it: Internal error occurred: failed calling webhook")
	assert.Equal(t, "failed", w.lastApproval("web")["outcome"])
	assert.Equal(t, "nginx:1.27", w.app("web").Spec.Image)
	assert.Equal(t, int64(0), hook.admitted.Load())
}
