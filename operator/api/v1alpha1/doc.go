// Package v1alpha1 holds the TeleApp and TeleChat API of the teleop.io group.
//
// +k8s:deepcopy-gen=package
// +groupName=teleop.io
package v1alpha1
