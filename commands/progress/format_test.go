package progress

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/teleop/teleop/operator/announce"
)

// notice builds a notice about default/web, nginx:1.27, 3/3.
func notice(kind announce.Kind, change func(*announce.Notice)) announce.Notice {
	n := announce.Notice{
		Kind: kind, Namespace: "default", Name: "web", Image: "nginx:1.27",
		FromReplicas: 3, ToReplicas: 3, Ready: 3, Desired: 3, Generation: 1,
	}
	if change != nil {
		change(&n)
	}
	return n
}

func TestFormatNotice(t *testing.T) {
	tests := []struct {
		name string
		n    announce.Notice
		want string
	}{
		{
			name: "ready",
			n:    notice(announce.KindReady, nil),
			want: "✅ <b>web</b> is ready: 3/3 (nginx:1.27) in default",
		},
		{
			name: "scaled up by kubectl",
			n:    notice(announce.KindScaled, func(n *announce.Notice) { n.ToReplicas, n.Actor = 5, "kubectl-scale" }),
			want: "📈 <b>web</b> scaled 3 → 5 in default by kubectl-scale",
		},
		{
			name: "scaled down from a chat, the user escaped",
			n:    notice(announce.KindScaled, func(n *announce.Notice) { n.ToReplicas, n.Actor = 1, "telegram:123 (@a<b>)" }),
			want: "📉 <b>web</b> scaled 3 → 1 in default by telegram:123 (@a&lt;b&gt;)",
		},
		{
			name: "deleted by nobody known",
			n:    notice(announce.KindDeleted, nil),
			want: "🗑 <b>web</b> deleted from default",
		},
		{
			name: "deleted from a chat",
			n:    notice(announce.KindDeleted, func(n *announce.Notice) { n.Actor = "telegram:123 (@alice)" }),
			want: "🗑 <b>web</b> deleted from default by telegram:123 (@alice)",
		},
		{
			name: "degraded by an image that cannot be pulled",
			n: notice(announce.KindDegraded, func(n *announce.Notice) {
				n.Image, n.Reason, n.Message, n.Pod = "nginx:broken", "ImagePullBackOff", "ImagePullBackOff on web-7c9f4-abcde", "web-7c9f4-abcde"
			}),
			want: "⚠️ <b>web</b> is degraded in default: ImagePullBackOff on web-7c9f4-abcde — check that the image <code>nginx:broken</code> exists and can be pulled, then set a good one (kubectl set image, or delete and /create again)",
		},
		{
			name: "failed: forbidden, found by the message",
			n: notice(announce.KindFailed, func(n *announce.Notice) {
				n.Reason, n.Message = "CreateFailed", `deployments.apps "web" is forbidden: User "system:serviceaccount:teleop:teleop" cannot create`
			}),
			want: `❌ <b>web</b> failed in default: deployments.apps &#34;web&#34; is forbidden: User &#34;system:serviceaccount:teleop:teleop&#34; cannot create — teleop lacks a permission in this namespace: ask a cluster admin to grant it (see deploy/ RBAC)`,
		},
		{
			name: "failed: quota",
			n: notice(announce.KindFailed, func(n *announce.Notice) {
				n.Reason, n.Message = "QuotaExceeded", "exceeded quota: compute, requested: pods=1, used: pods=10, limited: pods=10"
			}),
			want: "❌ <b>web</b> failed in default: exceeded quota: compute, requested: pods=1, used: pods=10, limited: pods=10 — the namespace's ResourceQuota is used up: scale something down or ask an admin to raise the quota",
		},
		{
			name: "failed: quota, found by the message of a 403",
			n: notice(announce.KindFailed, func(n *announce.Notice) {
				n.Reason, n.Message = "CreateFailed", `deployments.apps "web" is forbidden: exceeded quota: q`
			}),
			want: "❌ <b>web</b> failed in default: deployments.apps &#34;web&#34; is forbidden: exceeded quota: q — the namespace's ResourceQuota is used up: scale something down or ask an admin to raise the quota",
		},
		{
			name: "failed: the name is taken",
			n: notice(announce.KindFailed, func(n *announce.Notice) {
				n.Reason, n.Message = "ErrResourceExists", "Deployment default/web already exists and is not managed by this TeleApp"
			}),
			want: "❌ <b>web</b> failed in default: Deployment default/web already exists and is not managed by this TeleApp — a Deployment or Service named web that teleop does not own is in the way: delete or rename it, or pick another name",
		},
		{
			name: "failed: refused by the API server",
			n: notice(announce.KindFailed, func(n *announce.Notice) {
				n.Reason, n.Message = "Invalid", `cannot create Deployment: Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value`
			}),
			want: `❌ <b>web</b> failed in default: cannot create Deployment: Deployment.apps &#34;web&#34; is invalid: spec.template.spec.containers[0].image: Required value — the API server refused what this TeleApp asks for: fix its spec (kubectl edit tapp/web)`,
		},
		{
			name: "degraded with nothing to do and no message",
			n:    notice(announce.KindDegraded, func(n *announce.Notice) { n.Reason = "Unschedulable" }),
			want: "⚠️ <b>web</b> is degraded in default: Unschedulable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, FormatNotice(tt.n))
		})
	}
}
