package announce

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/teleop/teleop/operator/apps"
)

func TestDeletedBy(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		want        string
	}{
		{name: "deleted from a chat", annotations: map[string]string{apps.AnnotationLastCommand: "/delete web", apps.AnnotationLastChangedBy: "telegram:1 (@bob)"}, want: "telegram:1 (@bob)"},
		{name: "last chat command was a scale: kubectl deleted it", annotations: map[string]string{apps.AnnotationLastCommand: "/scale web 3", apps.AnnotationLastChangedBy: "telegram:1 (@bob)"}, want: ""},
		{name: "never touched from a chat", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := teleApp("web")
			app.Annotations = tt.annotations
			assert.Equal(t, tt.want, deletedBy(app))
		})
	}
}
