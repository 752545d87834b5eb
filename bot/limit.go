package bot

import (
	"container/list"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Defaults of InboundLimits: far above what a person types, far below what
// a script sends. A group's budget is shared by its members.
const (
	DefaultUserRate   = 1
	DefaultUserBurst  = 10
	DefaultChatRate   = 3
	DefaultChatBurst  = 30
	DefaultNoticeGap  = time.Minute
	DefaultMaxTracked = 10000
)

// slowDown is what a user over a limit is told, at most once per NoticeGap.
const slowDown = "You are sending faster than I answer; I am ignoring your messages for a moment. Please wait a little and try again."

// InboundLimits bound what one user and one chat may cost: token buckets
// (rate per second, burst) checked before anything else is done with an
// update. Zero fields take the defaults.
type InboundLimits struct {
	UserRate  rate.Limit
	UserBurst int
	ChatRate  rate.Limit
	ChatBurst int
	// NoticeGap is how often a refused user or chat is told so.
	NoticeGap time.Duration
	// MaxTracked bounds the users and chats remembered at once (each); the
	// least recently seen are forgotten first.
	MaxTracked int
	// Registerer, when set, gets the teleop_inbound_refused_total counter.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

func (l InboundLimits) withDefaults() InboundLimits {
	if l.UserRate <= 0 {
		l.UserRate = DefaultUserRate
	}
	if l.UserBurst <= 0 {
		l.UserBurst = DefaultUserBurst
	}
	if l.ChatRate <= 0 {
		l.ChatRate = DefaultChatRate
	}
	if l.ChatBurst <= 0 {
		l.ChatBurst = DefaultChatBurst
	}
	if l.NoticeGap <= 0 {
		l.NoticeGap = DefaultNoticeGap
	}
	if l.MaxTracked <= 0 {
		l.MaxTracked = DefaultMaxTracked
	}
	if l.Logger == nil {
		l.Logger = slog.Default()
	}
	return l
}

// LimitInbound returns a Handler that hands next only the updates within the
// sender's and the chat's budget. An update over budget costs a map lookup:
// it is dropped, and its sender (or chat, when the chat's budget ran out) is
// told at most once per NoticeGap through m. A dropped button press is left
// unanswered except with that notice. The Handler is an Admitter: the
// Telegram transport asks it as updates arrive, so that a dropped update
// costs no write of the update checkpoint.
func LimitInbound(next Handler, m Messenger, l InboundLimits) Handler {
	l = l.withDefaults()
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teleop_inbound_refused_total",
		Help: "Updates dropped because their user or chat was over its inbound limit.",
	}, []string{"limit"})
	if l.Registerer != nil {
		l.Registerer.MustRegister(refused)
	}
	return &inboundLimiter{
		next: next, messenger: m, cfg: l, refused: refused,
		users: newBuckets(l.UserRate, l.UserBurst, l.MaxTracked, l.NoticeGap),
		chats: newBuckets(l.ChatRate, l.ChatBurst, l.MaxTracked, l.NoticeGap),
	}
}

type inboundLimiter struct {
	next         Handler
	messenger    Messenger
	cfg          InboundLimits
	refused      *prometheus.CounterVec
	users, chats *buckets
}

// HandleUpdate hands next the updates Admit lets through.
func (il *inboundLimiter) HandleUpdate(ctx context.Context, u Update) {
	if il.Admit(ctx, u) {
		il.next.HandleUpdate(ctx, u)
	}
}

// HandleAdmitted hands next an update Admit let through (Admitter).
func (il *inboundLimiter) HandleAdmitted(ctx context.Context, u Update) { il.next.HandleUpdate(ctx, u) }

// Admit takes a token of u's user and chat, counted at the time u was
// received: updates of one chat are handled one after another, and a
// handler's reply is paced at one a second, so counting when an update's
// turn comes would let a flood through at the pace of the replies. A
// refused update is dropped, and its user (or chat) told so in the
// background, at most once per NoticeGap (Admitter).
func (il *inboundLimiter) Admit(ctx context.Context, u Update) bool {
	now := u.Received
	if now.IsZero() {
		now = time.Now()
	}
	user := il.users.take(u.UserID, now)
	if !user.ok {
		il.refuse(ctx, u, "user", user.notify)
		return false
	}
	chat := il.chats.take(u.ChatID, now)
	if !chat.ok {
		user.reservation.CancelAt(now) // the user's token was not used
		il.refuse(ctx, u, "chat", chat.notify)
		return false
	}
	return true
}

// refuseTimeout bounds the telling of one refusal.
const refuseTimeout = 30 * time.Second

// refuse counts u as dropped and, when it is time to, says why without
// holding up the caller (the transport admits updates as it accepts them).
func (il *inboundLimiter) refuse(ctx context.Context, u Update, limit string, notify bool) {
	il.refused.WithLabelValues(limit).Inc()
	if !notify {
		return
	}
	il.cfg.Logger.Info("inbound limit reached", "limit", limit, "chat", u.ChatID, "user", u.UserID)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refuseTimeout)
	go func() {
		defer cancel()
		var err error
		if u.Callback != nil {
			err = il.messenger.AnswerCallback(ctx, u.Callback.ID, slowDown)
		} else {
			_, err = il.messenger.Send(ctx, Reply{ChatID: u.ChatID, Text: EscapeHTML(slowDown)})
		}
		if err != nil {
			il.cfg.Logger.Warn("tell about inbound limit", "chat", u.ChatID, "err", err)
		}
	}()
}

// buckets are token buckets by ID, at most max of them: the least recently
// used is forgotten first (it comes back with a full bucket, which costs a
// flooder at most one burst per eviction).
type buckets struct {
	rate  rate.Limit
	burst int
	max   int
	gap   time.Duration

	mu    sync.Mutex
	order *list.List // of *bucket, most recent at the front
	byID  map[int64]*list.Element
}

type bucket struct {
	id       int64
	limiter  *rate.Limiter
	notified time.Time
}

func newBuckets(r rate.Limit, burst, max int, gap time.Duration) *buckets {
	return &buckets{rate: r, burst: burst, max: max, gap: gap, order: list.New(), byID: map[int64]*list.Element{}}
}

// taken is the outcome of take: ok when a token was had (reservation may
// be cancelled to give the token back), notify when a refusal should be told.
type taken struct {
	ok          bool
	notify      bool
	reservation *rate.Reservation
}

// take spends a token of id's bucket at now.
func (b *buckets) take(id int64, now time.Time) taken {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.get(id)
	r := bk.limiter.ReserveN(now, 1)
	if r.OK() && r.DelayFrom(now) == 0 {
		return taken{ok: true, reservation: r}
	}
	r.CancelAt(now)
	if !bk.notified.IsZero() && now.Sub(bk.notified) < b.gap {
		return taken{}
	}
	bk.notified = now
	return taken{notify: true}
}

func (b *buckets) get(id int64) *bucket {
	if e, ok := b.byID[id]; ok {
		b.order.MoveToFront(e)
		return e.Value.(*bucket)
	}
	bk := &bucket{id: id, limiter: rate.NewLimiter(b.rate, b.burst)}
	b.byID[id] = b.order.PushFront(bk)
	if b.order.Len() > b.max {
		oldest := b.order.Back()
		b.order.Remove(oldest)
		delete(b.byID, oldest.Value.(*bucket).id)
	}
	return bk
}
