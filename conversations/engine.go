// Package conversations runs the multi-step dialogues of the bot (/create,
// /scale, /delete, /ns without arguments). A flow is data: states, each with
// its prompt, the input it accepts and the next state; the Engine walks
// them. Conversations are keyed by (chat, user), so two people in one group
// never cross, and every step is persisted (one ConfigMap per conversation,
// see savedSessions) before the bot replies, so a restart or a new leader
// continues each one where it was.
package conversations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/commands/approval"
	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/commands/report"
)

const (
	// DefaultTimeout ends a conversation nobody answered.
	DefaultTimeout = 10 * time.Minute
	// MaxAnswerLength bounds a typed answer, in characters.
	MaxAnswerLength = 256
	// regexTimeout bounds one pattern match.
	regexTimeout = 100 * time.Millisecond
)

// Replies the engine itself gives.
const (
	msgExpired          = "This menu has expired."
	msgUseButtons       = "Please press one of the buttons, or send /cancel."
	somethingWentWrong  = "Something went wrong on my side; nothing was changed. Please try again in a moment."
	msgTooLongTemplate  = "That answer is %d characters long; at most %d are allowed."
	msgTimeoutTemplate  = "Your %s timed out after %s without an answer; nothing was changed. Send %s to start again."
	msgBelongsTemplate  = "This menu belongs to %s."
	msgBelongsToSomeone = "This menu belongs to someone else."
)

// Apps is what the flows need of TeleApps: the chat's operations, which
// the approval Gate wraps (and *apps.Client provides unwrapped).
type Apps interface {
	approval.Apps
}

// Progress follows a rollout a flow started by editing the flow's last
// message; *progress.Tracker provides it.
type Progress interface {
	Track(ctx context.Context, chatID int64, messageID int, ro progress.Rollout)
}

// Authorizer decides whether an identity may do something in a namespace;
// *access.Authorizer provides it.
type Authorizer interface {
	approval.Authorizer
}

// Inspector reads what the events and logs flows show; *inspect.Reader
// provides it.
type Inspector interface {
	report.Reader
}

// ChatNamespaces keeps each chat's namespace; *chats.Chats provides it. Set
// refuses a namespace the chat may not use with a *chats.NotAllowedError.
type ChatNamespaces interface {
	Get(ctx context.Context, chatID int64) (string, error)
	Set(ctx context.Context, chatID int64, namespace string) error
	Allowed(chatID int64) []string // nil: any
}

// NamespaceLister reads the cluster's namespaces from an informer's cache,
// so that /ns costs no List; client-go's corev1 NamespaceLister provides it.
type NamespaceLister interface {
	List(selector labels.Selector) ([]*corev1.Namespace, error)
	Get(name string) (*corev1.Namespace, error)
}

// Config is what an Engine needs.
type Config struct {
	Messenger  bot.Messenger
	Apps       Apps
	Authorizer Authorizer
	Namespaces ChatNamespaces
	// ClusterNamespaces is the cluster's namespaces, cached, for the ns flow
	// (each is offered only if the user may list TeleApps there).
	ClusterNamespaces NamespaceLister
	// ConfigMaps are those of teleop's own namespace (--namespace), where
	// each open conversation is kept.
	ConfigMaps corev1client.ConfigMapInterface
	// Timeout ends unanswered conversations; DefaultTimeout when zero.
	Timeout time.Duration
	// SweepInterval is how often Run looks for timed-out conversations;
	// a tenth of Timeout when zero.
	SweepInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Inspect, when set, offers the events and logs flows.
	Inspect Inspector
	// Progress, when set, follows the rollouts the flows start.
	Progress Progress
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Engine runs conversations. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	flows map[string]*Flow
	locks keyLocks
	log   *slog.Logger
	saved *savedSessions

	// menus remembers which message shows each conversation's current menu.
	// The message ID is known only after the prompt is sent, which is after
	// the step was persisted; it is kept in memory rather than costing a
	// second write per step. It only serves to strip stale buttons, so after
	// a restart old buttons stay on screen (and are refused when pressed).
	menusMu sync.Mutex
	menus   map[string]menuRef
}

type menuRef struct {
	id            string
	step, message int
}

// NewEngine returns an Engine with its flows: create, scale, delete, deploy,
// restart, rollback, history, ns, and with cfg.Inspect events and logs.
func NewEngine(cfg Config) *Engine {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = cfg.Timeout / 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := &Engine{
		cfg: cfg, flows: map[string]*Flow{}, log: cfg.Logger.With("component", "conversations"), menus: map[string]menuRef{},
		saved: &savedSessions{configMaps: cfg.ConfigMaps},
	}
	flows := []*Flow{createFlow(), scaleFlow(), deleteFlow(), deployFlow(), restartFlow(), rollbackFlow(), historyFlow(), nsFlow()}
	if cfg.Inspect != nil {
		flows = append(flows, eventsFlow(cfg.Inspect), logsFlow(cfg.Inspect))
	}
	for _, f := range flows {
		e.flows[f.Name] = f
	}
	return e
}

// Start begins flow for the user of u, dropping any conversation they had
// open in that chat. preset fills values in advance ("namespace", "name").
func (e *Engine) Start(ctx context.Context, flowName string, u bot.Update, preset map[string]string) error {
	flow, ok := e.flows[flowName]
	if !ok {
		return fmt.Errorf("start conversation: no flow %q", flowName)
	}
	s := &session{ID: newID(), Flow: flowName, ChatID: u.ChatID, UserID: u.UserID, Username: u.Username, Data: map[string]string{}}
	for k, v := range preset {
		s.Data[k] = v
	}
	if s.Data[keyNamespace] == "" {
		ns, err := e.cfg.Namespaces.Get(ctx, u.ChatID)
		if err != nil {
			return fmt.Errorf("start %s: %w", flowName, err)
		}
		s.Data[keyNamespace] = ns
	}
	unlock := e.locks.lock(s.key())
	defer unlock()
	if old, err := e.load(ctx, s.key()); err == nil && old != nil {
		e.stripMenu(ctx, old, "(replaced)")
	}
	c := &Conv{e: e, s: s, update: u}
	e.log.Info("conversation started", "flow", flowName, "chat", u.ChatID, "user", u.UserID, "id", s.ID)
	return e.enter(ctx, c, flow.Begin(c), 0)
}

// Handle gives u to the conversation it belongs to: typed text goes to the
// user's open conversation, a button press to the conversation named in its
// data. handled is false when u is not for any conversation (plain text
// with none open, or a button that is not the engine's).
func (e *Engine) Handle(ctx context.Context, u bot.Update) (bool, error) {
	if u.Callback != nil {
		return e.handlePress(ctx, u)
	}
	key := sessionKey(u.ChatID, u.UserID)
	unlock := e.locks.lock(key)
	defer unlock()
	s, err := e.load(ctx, key)
	if err != nil || s == nil {
		return false, err
	}
	if e.expired(s) {
		return true, e.timeOut(ctx, s)
	}
	c := &Conv{e: e, s: s, update: u}
	return true, e.answer(ctx, c, u.Text, nil)
}

// Cancel ends the user's open conversation, if any; the caller says so.
func (e *Engine) Cancel(ctx context.Context, chatID, userID int64) (bool, error) {
	key := sessionKey(chatID, userID)
	unlock := e.locks.lock(key)
	defer unlock()
	s, err := e.load(ctx, key)
	if err != nil || s == nil {
		return false, err
	}
	if err := e.remove(ctx, s); err != nil {
		return false, err
	}
	e.stripMenu(ctx, s, "(cancelled)")
	e.log.Info("conversation cancelled", "flow", s.Flow, "chat", chatID, "user", userID, "id", s.ID)
	return true, nil
}

// Open reports the flow of the user's open conversation, if any.
func (e *Engine) Open(ctx context.Context, chatID, userID int64) (string, bool, error) {
	s, err := e.load(ctx, sessionKey(chatID, userID))
	if err != nil || s == nil || e.expired(s) {
		return "", false, err
	}
	return s.Flow, true, nil
}

// Count is the number of conversations open now, for a metric.
func (e *Engine) Count(ctx context.Context) (int, error) {
	return e.saved.count(ctx)
}

// Run ends timed-out conversations every SweepInterval, telling their users,
// until ctx is done. Only the leader runs it.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := e.Sweep(ctx); err != nil {
				e.log.Error("sweep conversations", "err", err)
			}
		}
	}
}

// Sweep ends every timed-out conversation now and returns how many it ended.
func (e *Engine) Sweep(ctx context.Context) (int, error) {
	all, err := e.saved.snapshot(ctx)
	if err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	var expired []string
	for key, value := range all {
		if s, err := decodeSession(value); err != nil || e.expired(s) {
			expired = append(expired, key)
		}
	}
	ended := 0
	var errs []error
	for _, key := range expired {
		done, err := e.sweepOne(ctx, key)
		if err != nil {
			errs = append(errs, err)
		}
		if done {
			ended++
		}
	}
	return ended, errors.Join(errs...)
}

// sweepOne re-checks key under its lock (an answer may have just arrived)
// and times it out.
func (e *Engine) sweepOne(ctx context.Context, key string) (bool, error) {
	unlock := e.locks.lock(key)
	defer unlock()
	s, err := e.load(ctx, key)
	if err != nil || s == nil || !e.expired(s) {
		return false, err
	}
	return true, e.timeOut(ctx, s)
}

// handlePress answers a button press. Every press of the engine's buttons
// is answered; only the owner's press of the current menu does anything.
func (e *Engine) handlePress(ctx context.Context, u bot.Update) (bool, error) {
	p, ours, ok := parsePress(u.Callback.Data)
	if !ours {
		return false, nil
	}
	if !ok {
		return true, e.toast(ctx, u, msgExpired)
	}
	if p.owner != u.UserID {
		return true, e.toast(ctx, u, e.ownerNotice(ctx, u.ChatID, p))
	}
	key := sessionKey(u.ChatID, u.UserID)
	unlock := e.locks.lock(key)
	defer unlock()
	s, err := e.load(ctx, key)
	if err != nil {
		return true, errors.Join(err, e.toast(ctx, u, somethingWentWrong))
	}
	if s == nil || s.ID != p.id || s.Step != p.step {
		return true, e.toast(ctx, u, msgExpired)
	}
	if e.expired(s) {
		return true, errors.Join(e.toast(ctx, u, msgExpired), e.timeOut(ctx, s))
	}
	choice, ok := s.choice(p.index)
	if !ok {
		return true, e.toast(ctx, u, msgExpired)
	}
	if err := e.toast(ctx, u, ""); err != nil {
		e.log.Warn("answer button", "chat", u.ChatID, "err", err)
	}
	c := &Conv{e: e, s: s, update: u}
	return true, e.answer(ctx, c, choice.Value, &choice)
}

// ownerNotice is what another user's press of someone's live menu hears.
func (e *Engine) ownerNotice(ctx context.Context, chatID int64, p press) string {
	s, err := e.load(ctx, sessionKey(chatID, p.owner))
	if err != nil || s == nil || s.ID != p.id || e.expired(s) {
		return msgExpired
	}
	if s.Username != "" {
		return fmt.Sprintf(msgBelongsTemplate, "@"+s.Username)
	}
	return msgBelongsToSomeone
}

// answer runs the current state's validation on an answer (typed when
// pressed is nil) and moves on, asks again, or ends.
func (e *Engine) answer(ctx context.Context, c *Conv, text string, pressed *Choice) error {
	state := e.flows[c.s.Flow].States[c.s.State]
	answer := text
	if pressed == nil {
		var problem string
		answer, problem = e.typed(state, text)
		if problem != "" {
			return e.reask(ctx, c, problem)
		}
	}
	next, err := state.Accept(ctx, c, answer)
	var ue *userError
	switch {
	case errors.As(err, &ue) && !ue.end:
		return e.reask(ctx, c, ue.msg)
	case errors.As(err, &ue):
		return e.finish(ctx, c, ue.msg, pressed)
	case err != nil:
		return errors.Join(fmt.Errorf("%s step %s: %w", c.s.Flow, c.s.State, err), e.finish(ctx, c, somethingWentWrong, pressed))
	case next == "":
		return e.finish(ctx, c, c.done, pressed)
	}
	edit := 0
	switch {
	case pressed != nil && next == c.s.State:
		edit = c.update.MessageID // the same question again (another page): redraw in place
	case pressed != nil:
		e.markAnswer(ctx, c, pressed)
	default:
		e.stripMenu(ctx, c.s, "")
	}
	return e.enter(ctx, c, next, edit)
}

// markAnswer shows the pressed button's label under the menu's question,
// without the buttons.
func (e *Engine) markAnswer(ctx context.Context, c *Conv, pressed *Choice) {
	e.edit(ctx, c.s.ChatID, c.update.MessageID, c.s.Menu.Text+"\n→ "+bold(pressed.Label))
}

// typed checks typed text against the state's pattern and returns the answer
// or what is wrong with it.
func (e *Engine) typed(state *State, text string) (answer, problem string) {
	if n := utf8.RuneCountInString(text); n > MaxAnswerLength {
		return "", fmt.Sprintf(msgTooLongTemplate, n, MaxAnswerLength)
	}
	if state.Pattern == nil {
		return "", msgUseButtons
	}
	m, err := state.Pattern.FindStringMatch(text)
	if err != nil || m == nil {
		return "", state.Hint
	}
	if g := m.GroupByName("v"); g != nil && g.Length > 0 {
		return g.String(), ""
	}
	return m.String(), ""
}

// enter asks the question of state next: persisted first, then sent (or
// drawn over message edit).
func (e *Engine) enter(ctx context.Context, c *Conv, next string, edit int) error {
	prompt, err := e.flows[c.s.Flow].States[next].Prompt(ctx, c)
	var ue *userError
	switch {
	case errors.As(err, &ue):
		return e.finish(ctx, c, ue.msg, nil)
	case err != nil:
		return errors.Join(fmt.Errorf("%s prompt %s: %w", c.s.Flow, next, err), e.finish(ctx, c, somethingWentWrong, nil))
	}
	c.s.State, c.s.Menu = next, prompt
	c.s.Step++
	c.s.Expires = e.cfg.Now().Add(e.cfg.Timeout)
	if err := e.save(ctx, c.s); err != nil {
		return err
	}
	id, err := e.cfg.Messenger.Send(ctx, bot.Reply{ChatID: c.s.ChatID, EditMessageID: edit, Text: prompt.Text, Buttons: e.keyboard(c.s)})
	if err != nil {
		return fmt.Errorf("send %s prompt %s: %w", c.s.Flow, next, err)
	}
	e.rememberMenu(c.s, id)
	return nil
}

func (e *Engine) rememberMenu(s *session, messageID int) {
	s.MenuID = messageID
	e.menusMu.Lock()
	defer e.menusMu.Unlock()
	e.menus[s.key()] = menuRef{id: s.ID, step: s.Step, message: messageID}
}

// reask says what is wrong with an answer and asks the same question again,
// with the same buttons.
func (e *Engine) reask(ctx context.Context, c *Conv, problem string) error {
	c.s.Expires = e.cfg.Now().Add(e.cfg.Timeout)
	if err := e.save(ctx, c.s); err != nil {
		return err
	}
	e.stripMenu(ctx, c.s, "")
	id, err := e.cfg.Messenger.Send(ctx, bot.Reply{ChatID: c.s.ChatID, Text: problem + "\n\n" + c.s.Menu.Text, Buttons: e.keyboard(c.s)})
	if err != nil {
		return fmt.Errorf("send %s re-ask: %w", c.s.Flow, err)
	}
	e.rememberMenu(c.s, id)
	return nil
}

// finish ends the conversation with text: over the pressed menu when the
// last answer was a button, as a new message otherwise (and always for a
// Report, the menu then showing the button pressed).
func (e *Engine) finish(ctx context.Context, c *Conv, text string, pressed *Choice) error {
	if err := e.remove(ctx, c.s); err != nil {
		return err
	}
	e.log.Info("conversation ended", "flow", c.s.Flow, "state", c.s.State, "chat", c.s.ChatID, "user", c.s.UserID, "id", c.s.ID)
	edit := 0
	switch {
	case pressed != nil && c.report:
		e.markAnswer(ctx, c, pressed)
	case pressed != nil:
		edit = c.update.MessageID
	default:
		e.stripMenu(ctx, c.s, "")
	}
	id, err := e.cfg.Messenger.Send(ctx, bot.Reply{ChatID: c.s.ChatID, EditMessageID: edit, Text: text})
	if err != nil {
		return fmt.Errorf("send %s result: %w", c.s.Flow, err)
	}
	if c.follow != nil && e.cfg.Progress != nil {
		// The update's deadline ends its context; the rollout goes on.
		go e.cfg.Progress.Track(context.WithoutCancel(ctx), c.s.ChatID, id, *c.follow)
	}
	return nil
}

// timeOut ends an expired conversation and tells its user.
func (e *Engine) timeOut(ctx context.Context, s *session) error {
	if err := e.remove(ctx, s); err != nil {
		return err
	}
	e.log.Info("conversation timed out", "flow", s.Flow, "state", s.State, "chat", s.ChatID, "user", s.UserID, "id", s.ID)
	e.stripMenu(ctx, s, "(expired)")
	cmd := e.flows[s.Flow].Command
	text := fmt.Sprintf(msgTimeoutTemplate, code(cmd), minutes(e.cfg.Timeout), code(cmd))
	if s.Username != "" {
		text = "@" + esc(s.Username) + ": " + text
	}
	if _, err := e.cfg.Messenger.Send(ctx, bot.Reply{ChatID: s.ChatID, Text: text}); err != nil {
		return fmt.Errorf("send timeout of %s: %w", s.key(), err)
	}
	return nil
}

// stripMenu removes the buttons of the conversation's last menu, so no stale
// press is offered; note is appended to its text.
func (e *Engine) stripMenu(ctx context.Context, s *session, note string) {
	if s.MenuID == 0 || len(s.Menu.Buttons) == 0 {
		return
	}
	text := s.Menu.Text
	if note != "" {
		text += "\n" + note
	}
	e.edit(ctx, s.ChatID, s.MenuID, text)
}

// edit replaces a message's text and drops its buttons; a failure only
// leaves stale buttons, which the engine refuses anyway.
func (e *Engine) edit(ctx context.Context, chatID int64, messageID int, text string) {
	if messageID == 0 {
		return
	}
	if _, err := e.cfg.Messenger.Send(ctx, bot.Reply{ChatID: chatID, EditMessageID: messageID, Text: text}); err != nil {
		e.log.Warn("edit menu", "chat", chatID, "message", messageID, "err", err)
	}
}

// keyboard renders the current menu's buttons with callback data naming
// the conversation, step and button.
func (e *Engine) keyboard(s *session) [][]bot.Button {
	if len(s.Menu.Buttons) == 0 {
		return nil
	}
	rows := make([][]bot.Button, 0, len(s.Menu.Buttons))
	i := 0
	for _, row := range s.Menu.Buttons {
		buttons := make([]bot.Button, 0, len(row))
		for _, ch := range row {
			buttons = append(buttons, bot.Button{Text: ch.Label, Data: press{owner: s.UserID, id: s.ID, step: s.Step, index: i}.data()})
			i++
		}
		rows = append(rows, buttons)
	}
	return rows
}

func (e *Engine) toast(ctx context.Context, u bot.Update, text string) error {
	if err := e.cfg.Messenger.AnswerCallback(ctx, u.Callback.ID, text); err != nil {
		return fmt.Errorf("answer button press: %w", err)
	}
	return nil
}

func (e *Engine) expired(s *session) bool { return !e.cfg.Now().Before(s.Expires) }

// load returns the conversation under key, nil when there is none. One
// that cannot be read (written by an incompatible version, say) is dropped.
func (e *Engine) load(ctx context.Context, key string) (*session, error) {
	v, found, err := e.saved.get(ctx, key)
	if err != nil || !found {
		return nil, err
	}
	s, err := decodeSession(v.value)
	if err == nil && (e.flows[s.Flow] == nil || e.flows[s.Flow].States[s.State] == nil) {
		err = fmt.Errorf("unknown flow %q state %q", s.Flow, s.State)
	}
	if err != nil {
		e.log.Warn("dropped unreadable conversation", "key", key, "err", err)
		if err := e.saved.delete(ctx, key); err != nil {
			return nil, fmt.Errorf("drop unreadable conversation %s: %w", key, err)
		}
		return nil, nil
	}
	e.menusMu.Lock()
	if ref, ok := e.menus[key]; ok && ref.id == s.ID && ref.step == s.Step {
		s.MenuID = ref.message
	}
	e.menusMu.Unlock()
	return s, nil
}

// save persists s before the prompt that follows is sent: the prompt must
// not outrun the step it asks about.
func (e *Engine) save(ctx context.Context, s *session) error {
	b, err := s.encode()
	if err != nil {
		return err
	}
	return e.saved.put(ctx, s.key(), s.Flow, b)
}

func (e *Engine) remove(ctx context.Context, s *session) error {
	e.menusMu.Lock()
	delete(e.menus, s.key())
	e.menusMu.Unlock()
	if err := e.saved.delete(ctx, s.key()); err != nil {
		return fmt.Errorf("end conversation %s: %w", s.key(), err)
	}
	return nil
}

// minutes says d the way a person would: "10 minutes", "1 minute", "30s".
func minutes(d time.Duration) string {
	switch m := int(d / time.Minute); {
	case d%time.Minute != 0:
		return d.String()
	case m == 1:
		return "1 minute"
	default:
		return fmt.Sprintf("%d minutes", m)
	}
}
