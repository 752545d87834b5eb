package bot

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemoryJournal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	j := NewMemoryJournal(3)
	claim := func(id int64) bool {
		first, err := j.Claim(ctx, id)
		require.NoError(t, err)
		return first
	}

	for _, id := range []int64{1, 2, 3} {
		assert.True(t, claim(id), "first claim of %d", id)
	}
	assert.False(t, claim(2), "second claim of 2")
	assert.True(t, claim(4), "first claim of 4")
	assert.True(t, claim(1), "1 is the oldest and was forgotten")
	assert.False(t, claim(4), "4 is remembered")
	assert.LessOrEqual(t, len(j.seen), 3, "the journal grew past its capacity")
}
