package bot

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"
)

// dispatcher hands updates to a Handler: in order within a chat, several
// chats at a time (at most workers), with at most maxPending updates
// accepted and not yet handled. It claims each update in the Journal right
// before handling it, so an update runs at most once however often it is
// delivered. Handlers run with the dispatcher's context.
type dispatcher struct {
	ctx     context.Context
	handler Handler
	journal Journal
	metrics *Metrics
	log     *slog.Logger
	// slots holds one token per chat being handled right now.
	slots chan struct{}
	// pending holds one token per update accepted and not yet handled.
	pending chan struct{}

	mu sync.Mutex
	// queues holds the waiting updates of each chat that has a drain running.
	queues map[int64][]dispatchJob
	wg     sync.WaitGroup
}

type dispatchJob struct {
	update Update
	// done, if set, is called once the update is through: settled is true
	// when it was handled or found handled before, false when it was
	// abandoned or could not be claimed.
	done func(settled bool)
}

func newDispatcher(ctx context.Context, h Handler, j Journal, workers, maxPending int, m *Metrics, log *slog.Logger) *dispatcher {
	return &dispatcher{
		ctx:     ctx,
		handler: h,
		journal: j,
		metrics: m,
		log:     log,
		slots:   make(chan struct{}, workers),
		pending: make(chan struct{}, maxPending),
		queues:  make(map[int64][]dispatchJob),
	}
}

// submit queues u behind the earlier updates of its chat; it blocks while
// maxPending updates wait, until ctx or the dispatcher's context ends.
func (d *dispatcher) submit(ctx context.Context, u Update, done func(settled bool)) error {
	select {
	case d.pending <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.ctx.Done():
		return d.ctx.Err()
	}
	d.mu.Lock()
	queue, draining := d.queues[u.ChatID]
	d.queues[u.ChatID] = append(queue, dispatchJob{update: u, done: done})
	d.mu.Unlock()
	if !draining {
		d.wg.Add(1)
		go d.drain(u.ChatID)
	}
	return nil
}

// drain handles the queue of one chat until it is empty.
func (d *dispatcher) drain(chatID int64) {
	defer d.wg.Done()
	select {
	case d.slots <- struct{}{}:
		defer func() { <-d.slots }()
	case <-d.ctx.Done():
	}
	for {
		d.mu.Lock()
		queue := d.queues[chatID]
		if len(queue) == 0 {
			delete(d.queues, chatID)
			d.mu.Unlock()
			return
		}
		job := queue[0]
		d.queues[chatID] = queue[1:]
		d.mu.Unlock()

		settled := d.ctx.Err() == nil && d.claimAndHandle(job.update)
		<-d.pending
		if job.done != nil {
			job.done(settled)
		}
	}
}

// claimAndHandle handles u unless the Journal says it was handled before;
// it reports false if the Journal failed.
func (d *dispatcher) claimAndHandle(u Update) bool {
	first, err := d.journal.Claim(d.ctx, u.ID)
	switch {
	case err != nil:
		d.log.Warn("could not record an update as handled; not handling it", "update", u.ID, "chat", u.ChatID, "err", err)
		return false
	case !first:
		d.log.Info("skipping an update handled before", "update", u.ID, "chat", u.ChatID)
		return true
	}
	d.metrics.updateReceived()
	d.handle(u)
	return true
}

// handle runs the handler on u; a panicking handler is logged, not fatal.
func (d *dispatcher) handle(u Update) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("update handler panicked", "update", u.ID, "chat", u.ChatID, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	d.handler.HandleUpdate(d.ctx, u)
}

// wait returns once every accepted update was handled or abandoned.
func (d *dispatcher) wait() { d.wg.Wait() }
