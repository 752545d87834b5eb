package telegramemu

import (
	"math"
	"time"
)

// Rate is a token bucket: one message per Every, up to Burst at once.
type Rate struct {
	Every time.Duration
	Burst int
}

// Limits are the flood limits applied to messages sent and edited
// (sendMessage, editMessageText, editMessageReplyMarkup). Telegram documents
// them as "about 1 message a second per chat, 20 a minute per group, 30 a
// second overall" and tolerates short bursts; the zero value means these
// defaults (DefaultLimits). Set Off to disable flood control entirely.
type Limits struct {
	PerChat  Rate
	PerGroup Rate
	Global   Rate
	Off      bool
}

// DefaultLimits are Telegram's limits with small bursts: a bot that does not
// throttle gets 429s after a few messages to one chat.
var DefaultLimits = Limits{
	PerChat:  Rate{Every: time.Second, Burst: 3},
	PerGroup: Rate{Every: 3 * time.Second, Burst: 20},
	Global:   Rate{Every: time.Second / 30, Burst: 30},
}

func (l Limits) withDefaults() Limits {
	if l.PerChat == (Rate{}) {
		l.PerChat = DefaultLimits.PerChat
	}
	if l.PerGroup == (Rate{}) {
		l.PerGroup = DefaultLimits.PerGroup
	}
	if l.Global == (Rate{}) {
		l.Global = DefaultLimits.Global
	}
	return l
}

// bucket is a token bucket measured against an injectable clock.
type bucket struct {
	tokens float64
	at     time.Time
}

// wait returns how long until a token is available in b under rate r, after
// refilling it up to now. Zero means one is available.
func (b *bucket) wait(r Rate, now time.Time) time.Duration {
	if b.at.IsZero() {
		b.tokens, b.at = float64(r.Burst), now
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = math.Min(float64(r.Burst), b.tokens+float64(elapsed)/float64(r.Every))
		b.at = now
	}
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(r.Every))
}

func (b *bucket) take() { b.tokens-- }

// limiter holds the buckets for every chat, every group and the bot.
type limiter struct {
	limits Limits
	chats  map[int64]*bucket
	groups map[int64]*bucket
	global bucket
}

func newLimiter(l Limits) *limiter {
	return &limiter{limits: l.withDefaults(), chats: map[int64]*bucket{}, groups: map[int64]*bucket{}}
}

// allow takes a token from each bucket that applies to chatID, or takes none
// and returns the seconds to wait (rounded up, at least 1) as retry_after.
func (l *limiter) allow(chatID int64, now time.Time) (retryAfter int) {
	if l.limits.Off {
		return 0
	}
	type check struct {
		b *bucket
		r Rate
	}
	checks := []check{{bucketFor(l.chats, chatID), l.limits.PerChat}, {&l.global, l.limits.Global}}
	if chatID < 0 {
		checks = append(checks, check{bucketFor(l.groups, chatID), l.limits.PerGroup})
	}
	var longest time.Duration
	for _, c := range checks {
		longest = max(longest, c.b.wait(c.r, now))
	}
	if longest > 0 {
		return max(1, int(math.Ceil(longest.Seconds())))
	}
	for _, c := range checks {
		c.b.take()
	}
	return 0
}

func bucketFor(m map[int64]*bucket, id int64) *bucket {
	b, ok := m[id]
	if !ok {
		b = &bucket{}
		m[id] = b
	}
	return b
}
