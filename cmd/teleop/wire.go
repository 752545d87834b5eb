package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"

	"github.com/teleop/teleop/bot"
	"github.com/teleop/teleop/bot/console"
	"github.com/teleop/teleop/commands"
	"github.com/teleop/teleop/commands/approval"
	"github.com/teleop/teleop/commands/identity"
	"github.com/teleop/teleop/commands/progress"
	"github.com/teleop/teleop/conversations"
	"github.com/teleop/teleop/operator"
	"github.com/teleop/teleop/operator/access"
	"github.com/teleop/teleop/operator/announce"
	"github.com/teleop/teleop/operator/approvals"
	"github.com/teleop/teleop/operator/apps"
	"github.com/teleop/teleop/operator/chats"
	"github.com/teleop/teleop/operator/checkpoint"
	"github.com/teleop/teleop/operator/inspect"
	"github.com/teleop/teleop/operator/workqueuemetrics"
)

// transport is where chat updates come from and replies go: Telegram or the
// terminal. Everything behind it is the same engine.
type transport interface {
	Run(ctx context.Context, h bot.Handler) error
	Messenger() bot.Messenger
}

// checkpointName is the ConfigMap in --namespace that holds the Telegram
// update checkpoint: the polling offset and the updates accepted and not yet
// started, so a restarted teleop or a new leader loses none and runs none
// twice.
const checkpointName = "teleop-checkpoint"

// process is what both `run` and `console` start: clients, metrics, health.
type process struct {
	cfg      *config
	log      *slog.Logger
	clients  operator.Clients
	registry *prometheus.Registry
	ready    *readiness
}

func newProcess(ctx context.Context, cfg *config, log *slog.Logger) (*process, error) {
	restCfg, err := restConfig(cfg.kubeconfig)
	if err != nil {
		return nil, err
	}
	opts := operator.Options{QPS: float32(cfg.kubeQPS), Burst: cfg.kubeBurst}
	clients, err := operator.NewClients(restCfg, opts)
	if err != nil {
		return nil, fmt.Errorf("kubernetes clients: %w", err)
	}
	p := &process{
		cfg:      cfg,
		log:      log,
		clients:  clients,
		registry: prometheus.NewRegistry(),
		ready:    &readiness{},
	}
	// Not ready while the API server is unreachable: nothing the bot or the
	// operator does can work then.
	p.ready.add("kubernetes api", clients.APIServer.Healthy)
	p.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	workqueue.SetProvider(workqueuemetrics.New(p.registry))
	if err := serveHTTP(ctx, log, "metrics", cfg.metricsAddr, metricsHandler(p.registry)); err != nil {
		return nil, err
	}
	if err := serveHTTP(ctx, log, "health", cfg.healthAddr, p.ready.handler()); err != nil {
		return nil, err
	}
	if err := serveHTTP(ctx, log, "pprof", cfg.pprofAddr, pprofHandler()); err != nil {
		return nil, err
	}
	return p, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config (set --kubeconfig to run outside a cluster): %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}

func runTeleop(ctx context.Context, cfg *config, log *slog.Logger) error {
	p, err := newProcess(ctx, cfg, log)
	if err != nil {
		return err
	}
	var tg *bot.Telegram
	if cfg.token == "" {
		log.Warn("no Telegram token: running the operator only (set --telegram-token, --telegram-token-file or TELEGRAM_BOT_TOKEN)")
	} else {
		tg, err = bot.New(bot.Config{
			Token:          cfg.token,
			Endpoint:       cfg.apiEndpoint,
			Mode:           cfg.mode,
			RequestTimeout: cfg.telegramTimeout,
			WebhookListen:  cfg.webhookListen,
			WebhookURL:     cfg.webhookURL,
			WebhookSecret:  cfg.webhookSecret,
			Checkpoint:     checkpoint.New(p.clients.Kube, cfg.namespace, checkpointName),
			Logger:         log,
			Metrics:        bot.NewMetrics(p.registry),
		})
		if err != nil {
			return withTelegramHint(err)
		}
		defer tg.Close()
		log.Info("telegram bot ready", "username", tg.Username(), "mode", cfg.mode)
	}
	// A follower is ready; the leader's checks come with leading.
	return runLeading(ctx, cfg, p.clients.Kube, log, p.ready.start, func(ctx context.Context) error {
		if tg == nil {
			return p.lead(ctx, nil, "")
		}
		p.ready.add("telegram", tg.Healthy)
		if err := tg.SetCommands(ctx, commands.Menu()); err != nil {
			log.Warn("could not register the command menu", "err", err)
		}
		return p.lead(ctx, tg, tg.Username())
	})
}

// withTelegramHint adds to bot.New's error which setting to check.
func withTelegramHint(err error) error {
	switch {
	case errors.Is(err, bot.ErrTokenRejected):
		return fmt.Errorf("%w; check --telegram-token, --telegram-token-file or TELEGRAM_BOT_TOKEN", err)
	case errors.Is(err, bot.ErrNoBotAPI):
		return fmt.Errorf("%w; check --telegram-api-endpoint, a Bot API URL format such as %s", err, defaultEndpoint)
	case errors.Is(err, bot.ErrUnreachable):
		return fmt.Errorf("%w; check --telegram-api-endpoint and the network", err)
	}
	return err
}

func runConsole(ctx context.Context, cfg *config, in io.Reader, out io.Writer, log *slog.Logger) error {
	user := cfg.consoleAs
	if user == 0 {
		user = consoleAdmin
		cfg.admins = append(cfg.admins, user)
	}
	chat := cfg.consoleChat
	if chat == 0 {
		chat = user
	}
	p, err := newProcess(ctx, cfg, log)
	if err != nil {
		return err
	}
	c := console.New(console.Config{In: in, Out: out, ChatID: chat, UserID: user, Username: "console"})
	fmt.Fprintf(out, "teleop console: you are Telegram user %d in chat %d. Send /help to begin; "+
		"press a button by typing %s and its number (%s1); Ctrl-D ends.\n", user, chat, console.ChoicePrefix, console.ChoicePrefix)
	if cfg.logFile != "" {
		fmt.Fprintf(out, "Logs go to %s.\n", cfg.logFile)
	}
	cfg.notifyChats = append(cfg.notifyChats, chat)
	return p.lead(ctx, c, "")
}

// consoleAdmin is the Telegram user the console acts as when --as is not given.
const consoleAdmin = 1

// lead runs the operator and, with a transport, the announcer and the chat
// engine, until ctx ends or one of them fails.
func (p *process) lead(ctx context.Context, chat transport, botName string) error {
	// QPS and Burst went into p.clients already (newProcess).
	op, err := operator.New(p.clients, operator.Options{
		Workers: p.cfg.workers, Namespace: p.cfg.watchNS, Logger: p.log, Metrics: operator.NewMetrics(p.registry),
	})
	if err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	teleApps := op.TeleAppInformers().Teleop().V1alpha1().TeleApps().Informer()
	p.ready.add("teleapp cache", func() error {
		if !teleApps.HasSynced() {
			return fmt.Errorf("not synced yet")
		}
		return nil
	})
	p.ready.start()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return op.Run(ctx) })
	if chat != nil {
		router, err := p.startChat(ctx, g, op, chat, botName)
		if err != nil {
			return err
		}
		// When the transport ends (the console's input closed), so does teleop.
		limited := bot.LimitInbound(router, chat.Messenger(), bot.InboundLimits{
			UserRate: rate.Limit(p.cfg.userRate), UserBurst: p.cfg.userBurst,
			ChatRate: rate.Limit(p.cfg.chatRate), ChatBurst: p.cfg.chatBurst,
			Registerer: p.registry, Logger: p.log,
		})
		g.Go(func() error { defer stop(); return chat.Run(ctx, limited) })
	}
	return g.Wait()
}

// startChat starts the announcer and the conversation engine in g and returns
// the router that handles the transport's updates.
func (p *process) startChat(ctx context.Context, g *errgroup.Group, op *operator.Operator, chat transport, botName string) (*commands.Router, error) {
	messenger := chat.Messenger()
	teleApps := op.TeleAppInformers().Teleop().V1alpha1().TeleApps()
	// The [Roll back] buttons of /deploy find their app by UID.
	if err := teleApps.Informer().AddIndexers(cache.Indexers{commands.UIDIndex: commands.IndexByUID}); err != nil {
		return nil, fmt.Errorf("index TeleApps by UID: %w", err)
	}
	chatSettings, err := p.startChats(ctx)
	if err != nil {
		return nil, err
	}
	announcer, err := announce.NewController(p.clients.Tele, teleApps, chatSettings.SkipMuted(progress.NewNotifier(messenger)), op.Recorder(),
		announce.Options{
			NotifyChats:           p.cfg.notifyChats.strings(),
			Settle:                announce.DefaultSettle,
			DeletionNoticeTimeout: p.cfg.deletionNoticeTimeout,
			Metrics:               announce.NewMetrics(p.registry),
		})
	if err != nil {
		return nil, fmt.Errorf("announcer: %w", err)
	}
	admins := make([]string, len(p.cfg.admins))
	for i, id := range p.cfg.admins {
		admins[i] = identity.User(id)
	}
	tracker, err := progress.NewTracker(teleApps, messenger, progress.TrackerOptions{})
	if err != nil {
		return nil, fmt.Errorf("progress tracker: %w", err)
	}
	authorizer := access.New(p.clients.Kube, admins)
	// The chat's operations, behind two-person approval where a namespace asks for it.
	gate := approval.New(approval.Config{
		Apps: apps.NewCached(p.clients.Tele, op.Recorder(), apps.Cache{
			Lister: teleApps.Lister(), Namespace: p.cfg.watchNS, HasSynced: teleApps.Informer().HasSynced,
		}),
		Requests:  approvals.New(p.clients.Tele, p.clients.Kube, op.Recorder(), nil),
		Access:    authorizer,
		Messenger: messenger,
		Timeout:   p.cfg.approvalTimeout,
		Logger:    p.log,
	})
	namespaceInformers := kubeinformers.NewSharedInformerFactory(p.clients.Kube, 0)
	inspector := inspect.New(p.clients.Kube)
	engine := conversations.NewEngine(conversations.Config{
		Messenger:  messenger,
		Apps:       gate,
		Inspect:    inspector,
		Authorizer: authorizer,
		Namespaces: chatSettings,
		// /ns reads namespaces from this cache: no List per prompt.
		ClusterNamespaces: namespaceInformers.Core().V1().Namespaces().Lister(),
		ConfigMaps:        p.clients.Kube.CoreV1().ConfigMaps(p.cfg.namespace),
		Timeout:           p.cfg.conversationTimeout,
		Progress:          tracker,
		Logger:            p.log,
	})
	p.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "teleop_conversations_open", Help: "Conversations open now.",
	}, func() float64 {
		n, _ := engine.Count(ctx) // a failed read shows as zero for one scrape
		return float64(n)
	}))
	router, err := commands.NewRouter(commands.Config{
		BotName:        botName,
		Apps:           gate,
		Access:         authorizer,
		Namespaces:     chatSettings,
		Conversations:  engine,
		Messenger:      messenger,
		Inspect:        inspector,
		ButtonHandlers: []commands.ButtonHandler{gate},
		Progress:       tracker,
		Index:          teleApps.Informer().GetIndexer(),
		Metrics:        commands.NewMetrics(p.registry),
		Logger:         p.log,
	})
	if err != nil {
		return nil, fmt.Errorf("commands: %w", err)
	}
	namespaceInformers.Start(ctx.Done())
	g.Go(func() error { return announcer.Run(ctx, 2) })
	g.Go(func() error { engine.Run(ctx); return nil })
	g.Go(func() error { tracker.Run(ctx); return nil })
	g.Go(func() error { gate.Run(ctx); return nil })
	return router, nil
}

// startChats starts the TeleChat informer of teleop's namespace and turns
// the old store's chat namespaces into TeleChats (once).
func (p *process) startChats(ctx context.Context) (*chats.Chats, error) {
	c, err := chats.Start(ctx, p.clients.Tele, p.cfg.namespace)
	if err != nil {
		return nil, err
	}
	imported, err := c.Import(ctx, p.clients.Kube.CoreV1().ConfigMaps(p.cfg.namespace), p.log)
	if err != nil {
		return nil, fmt.Errorf("import the chats of the old store: %w", err)
	}
	if imported > 0 {
		p.log.Info("imported chat namespaces into TeleChats", "chats", imported)
	}
	return c, nil
}
