package conversations

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"
)

// keyNamespace is the session value holding the conversation's namespace.
const keyNamespace = "namespace"

// session is one open conversation as persisted in the ConfigMap named by
// its key. Short JSON names keep 10,000 open conversations small.
type session struct {
	ID       string            `json:"id"`
	Flow     string            `json:"f"`
	State    string            `json:"s"`
	Step     int               `json:"n"`
	ChatID   int64             `json:"c"`
	UserID   int64             `json:"u"`
	Username string            `json:"un,omitempty"`
	Data     map[string]string `json:"d,omitempty"`
	// Menu is the question last asked. MenuID is the message showing it,
	// known only to the engine that sent it (see Engine.menus).
	Menu    Prompt    `json:"m"`
	MenuID  int       `json:"-"`
	Expires time.Time `json:"x"`
}

// sessionKey names the ConfigMap of (chat, user)'s conversation.
func sessionKey(chatID, userID int64) string {
	return "teleop-conversation-" + strconv.FormatInt(chatID, 10) + "-" + strconv.FormatInt(userID, 10)
}

func (s *session) key() string { return sessionKey(s.ChatID, s.UserID) }

func (s *session) encode() ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode conversation %s: %w", s.key(), err)
	}
	return b, nil
}

func decodeSession(v string) (*session, error) {
	var s session
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return nil, fmt.Errorf("decode conversation: %w", err)
	}
	return &s, nil
}

// choice returns the i-th button of the current menu, counting row by row.
// A forged press may carry any index, negative ones included.
func (s *session) choice(i int) (Choice, bool) {
	if i < 0 {
		return Choice{}, false
	}
	for _, row := range s.Menu.Buttons {
		if i < len(row) {
			return row[i], true
		}
		i -= len(row)
	}
	return Choice{}, false
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns a random conversation ID: 40 bits, so a forged button
// cannot guess a live conversation.
func newID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return strings.ToLower(idEncoding.EncodeToString(b))
}

// callbackPrefix marks the engine's buttons; others are not ours to answer.
const callbackPrefix = "cv"

// press is what a button's callback_data says: whose conversation, which
// one, at which step, and which button. At most 2+1+20+1+8+1+10+1+3 = 47
// bytes, within Telegram's 64.
type press struct {
	owner int64
	id    string
	step  int
	index int
}

func (p press) data() string {
	return fmt.Sprintf("%s:%d:%s:%d:%d", callbackPrefix, p.owner, p.id, p.step, p.index)
}

// parsePress reads callback data; ours is false for data that is not the
// engine's, ok false for data that claims to be but does not parse (forged).
func parsePress(data string) (p press, ours, ok bool) {
	parts := strings.Split(data, ":")
	if parts[0] != callbackPrefix {
		return press{}, false, false
	}
	if len(parts) != 5 || len(data) > 64 {
		return press{}, true, false
	}
	var err1, err2, err3 error
	p.owner, err1 = strconv.ParseInt(parts[1], 10, 64)
	p.id = parts[2]
	p.step, err2 = strconv.Atoi(parts[3])
	p.index, err3 = strconv.Atoi(parts[4])
	return p, true, err1 == nil && err2 == nil && err3 == nil && p.id != ""
}

// keyLocks serialises the handling of one (chat, user) without a lock per
// key: a fixed set of mutexes, picked by hash.
type keyLocks [64]sync.Mutex

func (l *keyLocks) lock(key string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	m := &l[h.Sum32()%uint32(len(l))]
	m.Lock()
	return m.Unlock
}
