package commands

// allCommands is the grammar, in the order /help lists it.
var allCommands = []*command{
	startCommand, helpCommand, createCommand, scaleCommand, deleteCommand,
	listCommand, statusCommand, nsCommand, whoamiCommand, cancelCommand,
}
