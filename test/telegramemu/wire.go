package telegramemu

import "encoding/json"

// The types in this file are the Bot API's JSON objects, limited to the
// fields the emulator produces or reads. Field names follow
// https://core.telegram.org/bots/api exactly.

type wireUser struct {
	ID            int64  `json:"id"`
	IsBot         bool   `json:"is_bot"`
	FirstName     string `json:"first_name"`
	Username      string `json:"username,omitempty"`
	CanJoinGroups bool   `json:"can_join_groups,omitempty"`
}

type wireChat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title,omitempty"`
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
}

type wireEntity struct {
	Type   string `json:"type"`
	Offset int    `json:"offset"`
	Length int    `json:"length"`
}

type wireMessage struct {
	MessageID      int             `json:"message_id"`
	From           *wireUser       `json:"from,omitempty"`
	Date           int64           `json:"date"`
	EditDate       int64           `json:"edit_date,omitempty"`
	Chat           wireChat        `json:"chat"`
	ReplyToMessage *wireMessage    `json:"reply_to_message,omitempty"`
	Text           string          `json:"text,omitempty"`
	Entities       []wireEntity    `json:"entities,omitempty"`
	ReplyMarkup    *inlineKeyboard `json:"reply_markup,omitempty"`
}

type wireCallbackQuery struct {
	ID           string       `json:"id"`
	From         wireUser     `json:"from"`
	Message      *wireMessage `json:"message,omitempty"`
	ChatInstance string       `json:"chat_instance"`
	Data         string       `json:"data,omitempty"`
}

type wireUpdate struct {
	UpdateID      int64              `json:"update_id"`
	Message       *wireMessage       `json:"message,omitempty"`
	CallbackQuery *wireCallbackQuery `json:"callback_query,omitempty"`
}

// kind is the update type as named in allowed_updates.
func (u wireUpdate) kind() string {
	if u.CallbackQuery != nil {
		return "callback_query"
	}
	return "message"
}

type inlineKeyboard struct {
	InlineKeyboard [][]inlineButton `json:"inline_keyboard"`
}

type inlineButton struct {
	Text                         string  `json:"text"`
	URL                          string  `json:"url,omitempty"`
	CallbackData                 *string `json:"callback_data,omitempty"`
	SwitchInlineQuery            *string `json:"switch_inline_query,omitempty"`
	SwitchInlineQueryCurrentChat *string `json:"switch_inline_query_current_chat,omitempty"`
}

type wireWebhookInfo struct {
	URL                  string   `json:"url"`
	HasCustomCertificate bool     `json:"has_custom_certificate"`
	PendingUpdateCount   int      `json:"pending_update_count"`
	LastErrorDate        int64    `json:"last_error_date,omitempty"`
	LastErrorMessage     string   `json:"last_error_message,omitempty"`
	MaxConnections       int      `json:"max_connections,omitempty"`
	AllowedUpdates       []string `json:"allowed_updates,omitempty"`
}

type okResponse struct {
	Ok          bool   `json:"ok"`
	Result      any    `json:"result"`
	Description string `json:"description,omitempty"`
}

type errorResponse struct {
	Ok          bool                `json:"ok"`
	ErrorCode   int                 `json:"error_code"`
	Description string              `json:"description"`
	Parameters  *responseParameters `json:"parameters,omitempty"`
}

type responseParameters struct {
	RetryAfter int `json:"retry_after,omitempty"`
}

// BotCommand is one entry of the command menu set with setMyCommands.
type BotCommand struct {
	Command     string `json:"command"`
	Description string `json:"description"`
}

// rawParams decodes a JSON object body into Bot API string parameters, the
// same shape a form-encoded request has: nested values stay JSON text.
func rawParams(body []byte) (map[string]string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, err
	}
	params := make(map[string]string, len(obj))
	for k, v := range obj {
		var s string
		if json.Unmarshal(v, &s) == nil {
			params[k] = s
			continue
		}
		params[k] = string(v)
	}
	return params, nil
}
