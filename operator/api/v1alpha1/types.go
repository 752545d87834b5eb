package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase summarises where a TeleApp stands.
type Phase string

// The phases a TeleApp moves through.
const (
	PhasePending     Phase = "Pending"
	PhaseProgressing Phase = "Progressing"
	PhaseReady       Phase = "Ready"
	PhaseDegraded    Phase = "Degraded"
	PhaseFailed      Phase = "Failed"
)

// Condition types set on every TeleApp.
const (
	ConditionReady       = "Ready"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"
)

// Labels teleop puts on what it owns; the operator's Deployment, Service and
// pod caches hold only objects labelled managed-by=teleop.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "teleop"
)

// TeleApp is an application run from Telegram: teleop reconciles it into a
// Deployment (and a Service when a port is set).
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=teleapps,singular=teleapp,shortName=tapp,categories=teleop,scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63",message="name must be a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters"
type TeleApp struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TeleAppSpec   `json:"spec"`
	Status TeleAppStatus `json:"status,omitempty"`
}

// TeleAppSpec is what the user asks for.
type TeleAppSpec struct {
	// Image is the container image to run, e.g. nginx:1.27.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-zA-Z0-9][-a-zA-Z0-9._/:@]*$') && !self.contains('//') && !self.endsWith(':')",message="image must be an image reference such as nginx:1.27 or ghcr.io/org/app:v1: letters, digits and . _ - / : @ only, no spaces"
	Image string `json:"image"`

	// Replicas is the number of pods wanted.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Port, when set, is the container port exposed by a ClusterIP Service of
	// the same name.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port *int32 `json:"port,omitempty"`

	// Env is passed to the container.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Env []EnvVar `json:"env,omitempty"`

	// Notify lists who hears about this TeleApp.
	// +optional
	Notify *Notify `json:"notify,omitempty"`

	// RestartedAt asks for a rolling restart: whenever it changes, teleop
	// copies it into the pod template's kubectl.kubernetes.io/restartedAt
	// annotation, as kubectl rollout restart does, and the pods are replaced
	// one by one. Any new value (an RFC 3339 time by convention) restarts.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	RestartedAt string `json:"restartedAt,omitempty"`
}

// EnvVar is one environment variable of the container.
type EnvVar struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z][-._a-zA-Z0-9]*$`
	Name string `json:"name"`
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Value string `json:"value,omitempty"`
}

// DesiredReplicas is spec.replicas, or the CRD's default of 1 when it is unset
// (an object the API server has not defaulted, as a client builds it).
func (s *TeleAppSpec) DesiredReplicas() int32 {
	if s.Replicas == nil {
		return 1
	}
	return *s.Replicas
}

// Notify names the Telegram chats told about this TeleApp.
type Notify struct {
	// Chats are Telegram chat IDs, e.g. "12345" or "-100123456".
	// +kubebuilder:validation:MaxItems=32
	// +listType=set
	// +optional
	Chats []string `json:"chats,omitempty"`
}

// TeleAppStatus is what teleop observed.
type TeleAppStatus struct {
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// +optional
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas,omitempty"`
	// Selector is the label selector of the pods, for the scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`
	// +kubebuilder:validation:Enum=Pending;Progressing;Ready;Degraded;Failed
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// Message says why the TeleApp is in its phase, naming a pod when one is to blame.
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// History lists the images this TeleApp has run, oldest first, at most
	// MaxHistory of them: a new revision each time spec.image changes. It is
	// what a rollback goes back to.
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	History []Revision `json:"history,omitempty"`
}

// MaxHistory bounds status.history.
const MaxHistory = 10

// Revision is one image a TeleApp ran.
type Revision struct {
	// Revision counts the images of this TeleApp from 1, one more each time
	// spec.image changes (a rollback makes a new revision too).
	// +kubebuilder:validation:Minimum=1
	Revision int64 `json:"revision"`
	// Image is spec.image of this revision.
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`
	// ChangedAt is when spec.image was set to Image.
	// +optional
	ChangedAt *metav1.Time `json:"changedAt,omitempty"`
	// ChangedBy is who set it: the chat user ("telegram:12345 (@alice)")
	// for a change from a chat, else the field manager that wrote
	// spec.image (kubectl-edit, kubectl-patch, ...); empty when unknown.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ChangedBy string `json:"changedBy,omitempty"`
}

// LatestRevision is the newest entry of status.history, nil when it is empty.
func (s *TeleAppStatus) LatestRevision() *Revision {
	if len(s.History) == 0 {
		return nil
	}
	return &s.History[len(s.History)-1]
}

// TeleAppList is a list of TeleApps.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type TeleAppList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []TeleApp `json:"items"`
}
