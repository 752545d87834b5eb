package commands

import "github.com/teleop/teleop/bot"

// allCommands is the grammar, in the order /help lists it.
var allCommands = []*command{
	startCommand, helpCommand, createCommand, scaleCommand, deleteCommand,
	deployCommand, imageCommand, restartCommand, rollbackCommand, historyCommand,
	listCommand, statusCommand, eventsCommand, logsCommand, nsCommand, whoamiCommand, cancelCommand,
}

// Menu is the command menu a transport registers (Telegram's setMyCommands).
func Menu() []bot.Command {
	menu := make([]bot.Command, len(allCommands))
	for i, c := range allCommands {
		menu[i] = bot.Command{Command: c.word, Description: c.summary}
	}
	return menu
}
