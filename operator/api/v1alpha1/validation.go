package v1alpha1

import (
	"fmt"
	"regexp"
	"strings"
)

// Limits that the CRD schema enforces too; the chat side checks them first so
// a user hears what is wrong before anything reaches the API server.
const (
	MaxReplicas   = 100
	MaxNameLength = 63
	MaxImageLen   = 512
)

var (
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// imageRef is deliberately plain: registry/path:tag or @digest, no spaces,
	// quotes or shell characters. It mirrors the CRD's pattern.
	imageRef = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._\-/:@]*$`)
)

// ValidateName checks that name is a DNS-1123 label, as TeleApp, namespace and
// Deployment names must be.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("name is empty")
	case len(name) > MaxNameLength:
		return fmt.Errorf("name is %d characters long; at most %d are allowed", len(name), MaxNameLength)
	case !dns1123Label.MatchString(name):
		return fmt.Errorf("name %q must consist of lowercase letters, digits and '-', and start and end with a letter or digit", name)
	}
	return nil
}

// ValidateImage checks that image looks like a container image reference.
func ValidateImage(image string) error {
	switch {
	case image == "":
		return fmt.Errorf("image is empty")
	case len(image) > MaxImageLen:
		return fmt.Errorf("image is %d characters long; at most %d are allowed", len(image), MaxImageLen)
	case !imageRef.MatchString(image), strings.Contains(image, "//"), strings.HasSuffix(image, ":"):
		return fmt.Errorf("image %q is not a valid image reference (e.g. nginx:1.27 or ghcr.io/org/app:v1)", image)
	}
	return nil
}

// ValidateReplicas checks that n is within 0..MaxReplicas.
func ValidateReplicas(n int64) error {
	if n < 0 || n > MaxReplicas {
		return fmt.Errorf("replicas must be between 0 and %d, not %d", MaxReplicas, n)
	}
	return nil
}
