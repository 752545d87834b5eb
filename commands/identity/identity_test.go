package identity

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/apps"
)

func TestFor(t *testing.T) {
	assert.Equal(t, access.Identity{User: "telegram:42", Groups: []string{"telegram:chat:-100123", "telegram:users"}}, For(42, -100123))
	assert.Equal(t, "telegram:7", User(7))
}

func TestAudit(t *testing.T) {
	tests := []struct {
		name     string
		username string
		want     apps.Audit
	}{
		{"with a username", "alice", apps.Audit{Actor: "telegram:42 (@alice)", Command: "/scale web +2", RequestID: "telegram-update-987"}},
		{"without one", "", apps.Audit{Actor: "telegram:42", Command: "/scale web +2", RequestID: "telegram-update-987"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Audit(42, tt.username, "/scale web +2", 987))
		})
	}
}
