package v1alpha1

import (
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TeleChat is one Telegram chat's settings: where it works and whether it
// hears notices. It lives in teleop's own namespace and is named after the
// chat (TeleChatName), so there is exactly one per chat; /ns writes it, and
// so may kubectl or GitOps.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=telechats,singular=telechat,shortName=tchat,categories=teleop,scope=Namespaced
// +kubebuilder:printcolumn:name="Chat",type=string,JSONPath=`.spec.chatID`
// +kubebuilder:printcolumn:name="Works-In",type=string,JSONPath=`.spec.namespace`
// +kubebuilder:printcolumn:name="Allowed",type=string,JSONPath=`.spec.allowedNamespaces`
// +kubebuilder:printcolumn:name="Muted",type=boolean,JSONPath=`.spec.mute`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'chat-' + self.spec.chatID",message="metadata.name must be chat-<spec.chatID>, e.g. chat--1001234567890 for chat -1001234567890: one TeleChat per chat"
type TeleChat struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec TeleChatSpec `json:"spec"`
}

// TeleChatSpec is what a chat is set to.
//
// +kubebuilder:validation:XValidation:rule="!has(self.allowedNamespaces) || self.namespace in self.allowedNamespaces",message="spec.namespace must be one of spec.allowedNamespaces"
type TeleChatSpec struct {
	// ChatID is the Telegram chat ID: a number, negative for groups.
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:XValidation:rule="self.matches('^-?[1-9][0-9]*$')",message="chatID must be a Telegram chat ID: a number such as 12345 or -1001234567890"
	ChatID string `json:"chatID"`

	// Namespace is where the chat's commands work unless they name one.
	// +kubebuilder:default=default
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="namespace must be a DNS-1123 label: lowercase letters, digits and '-'"
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// AllowedNamespaces, when set, are the only namespaces /ns may choose.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +listType=set
	// +optional
	AllowedNamespaces []string `json:"allowedNamespaces,omitempty"`

	// Mute, when true, keeps every notice from the chat; replies to its
	// commands still come.
	// +optional
	Mute bool `json:"mute,omitempty"`
}

// TeleChatList is a list of TeleChats.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type TeleChatList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []TeleChat `json:"items"`
}

// TeleChatName is the name of chat chatID's TeleChat.
func TeleChatName(chatID int64) string { return "chat-" + strconv.FormatInt(chatID, 10) }
