package assemble

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/multilangd/multilangd/daemon"
	"github.com/multilangd/multilangd/lease"
	"github.com/multilangd/multilangd/lease/shardsync"
	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/record"
	"github.com/multilangd/multilangd/seqnum"
)

// streamParts are one stream's shard syncer, lease cleaner and record-source
// factory (Java: one ShardSyncTaskManager and retrieval factory per
// StreamConfig).
type streamParts struct {
	sc      properties.StreamConfig // resolved: Identifier() is set
	syncer  *shardsync.Syncer
	cleaner *shardsync.Cleaner
	sources daemon.SourceFactory
	// orphan: built for leases of a stream this worker does not list
	// (position LATEST); replaced by the configured parts once listed.
	orphan bool
	// stop ends the periodic sync and cleaner started by start; done is
	// closed when both returned. Both nil until started.
	stop context.CancelFunc
	done chan struct{}
}

// streamLeaseStore is what the stream set needs of the lease table.
type streamLeaseStore interface {
	ListLeases(ctx context.Context) ([]lease.Lease, error)
	DeleteLease(ctx context.Context, key string) error
}

// streamDescriber resolves a stream's account and creation epoch.
type streamDescriber interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// streamSet is the multi-stream daemon.ShardSyncer, daemon.Cleaner and
// record-source router (Java Scheduler in multi-stream mode,
// checkAndSyncStreamShardsAndLeases; docs/multistream.md). Leases are routed
// to their stream by the lease's streamName attribute (the serialised
// StreamIdentifier) or the multi-stream lease key.
type streamSet struct {
	cfg      *properties.Config // the configuration in effect (its Streams are wanted)
	store    streamLeaseStore
	describe streamDescriber
	build    func(ctx context.Context, sc properties.StreamConfig) (*streamParts, error)
	log      *zap.Logger
	now      func() time.Time

	mu         sync.Mutex
	wanted     []properties.StreamConfig          // as configured (unresolved entries too)
	resolved   map[string]properties.StreamConfig // by StreamConfig.String()
	wantedIDs  map[string]bool                    // identifiers of the resolved wanted streams
	unresolved map[string]bool                    // names of the wanted streams not resolved yet
	parts      map[string]*streamParts            // by serialised identifier
	staleSince map[string]time.Time               // former streams awaiting deletion
	running    *periodicRun                       // set while RunPeriodic runs
	kick       chan struct{}                      // asks RunPeriodic for a check now
}

// periodicRun is the context RunPeriodic started the streams' background
// work in; wg counts the started streams.
type periodicRun struct {
	ctx      context.Context
	isLeader func(context.Context) bool
	wg       sync.WaitGroup
}

func newStreamSet(cfg *properties.Config, store streamLeaseStore, describe streamDescriber,
	build func(context.Context, properties.StreamConfig) (*streamParts, error), log *zap.Logger) *streamSet {
	return &streamSet{cfg: cfg, store: store, describe: describe, build: build, log: log.Named("streams"),
		now: time.Now, wanted: cfg.Streams, parts: map[string]*streamParts{},
		staleSince: map[string]time.Time{}, resolved: map[string]properties.StreamConfig{}, kick: make(chan struct{}, 1)}
}

// resolve fills in the account and creation epoch of sc from
// DescribeStreamSummary when it was given by name or ARN (Java needs them
// for StreamIdentifier.multiStreamInstance).
func (s *streamSet) resolve(ctx context.Context, sc properties.StreamConfig) (properties.StreamConfig, error) {
	if sc.Identifier() != "" {
		return sc, nil
	}
	in := &kinesis.DescribeStreamSummaryInput{}
	if sc.ARN != "" {
		in.StreamARN = aws.String(sc.ARN)
	} else {
		in.StreamName = aws.String(sc.Name)
	}
	out, err := s.describe.DescribeStreamSummary(ctx, in)
	if err != nil {
		return sc, fmt.Errorf("stream %s: DescribeStreamSummary: %w", sc.Name, err)
	}
	d := out.StreamDescriptionSummary
	if d == nil || d.StreamCreationTimestamp == nil || d.StreamARN == nil {
		return sc, fmt.Errorf("stream %s: DescribeStreamSummary returned no ARN or creation time", sc.Name)
	}
	parts := strings.Split(aws.ToString(d.StreamARN), ":")
	if len(parts) < 6 || parts[4] == "" {
		return sc, fmt.Errorf("stream %s: no account id in ARN %q", sc.Name, aws.ToString(d.StreamARN))
	}
	sc.AccountID = parts[4]
	sc.CreationEpoch = max(d.StreamCreationTimestamp.Unix(), 1)
	return sc, nil
}

// ensure builds the parts of every wanted stream that has none yet and
// returns the new ones; a stream that cannot be resolved or built is logged
// and tried again at the next check.
func (s *streamSet) ensure(ctx context.Context) []*streamParts {
	s.mu.Lock()
	wanted := s.wanted
	s.mu.Unlock()
	var added []*streamParts
	ids, unresolved := map[string]bool{}, map[string]bool{}
	defer func() {
		s.mu.Lock()
		s.wantedIDs, s.unresolved = ids, unresolved
		s.mu.Unlock()
	}()
	for _, sc := range wanted {
		s.mu.Lock()
		r, ok := s.resolved[sc.String()]
		s.mu.Unlock()
		if !ok {
			var err error
			if r, err = s.resolve(ctx, sc); err != nil {
				unresolved[sc.Name] = true
				s.log.Warn("stream not consumed yet; retried at the next streams check", zap.String("stream", sc.String()), zap.Error(err))
				continue
			}
			s.mu.Lock()
			s.resolved[sc.String()] = r
			s.mu.Unlock()
		}
		id := r.Identifier()
		ids[id] = true
		s.mu.Lock()
		old, have := s.parts[id]
		s.mu.Unlock()
		if have && !old.orphan {
			continue
		}
		p, err := s.build(ctx, r)
		if err != nil {
			s.log.Warn("stream not consumed yet; retried at the next streams check", zap.String("stream", id), zap.Error(err))
			continue
		}
		if s.adopt(id, old, p) {
			added = append(added, p)
			s.log.Info("consuming stream", zap.String("stream", id), zap.String("initialPosition", string(s.cfg.PositionOf(r))))
		}
	}
	return added
}

// adopt installs p as stream id's parts unless another call did first;
// parts built for the stream as an orphan (old) are stopped and replaced.
func (s *streamSet) adopt(id string, old, p *streamParts) bool {
	s.mu.Lock()
	if cur := s.parts[id]; cur != old {
		s.mu.Unlock()
		return false
	}
	s.parts[id] = p
	s.mu.Unlock()
	if old != nil && old.stop != nil {
		old.stop()
		<-old.done
	}
	return true
}

// partsOf returns the parts of stream id, building them for a stream that
// has leases but is not configured (Java syncStreamsFromLeaseTableOnAppInit:
// a former stream is consumed from LATEST until its leases are deleted).
func (s *streamSet) partsOf(ctx context.Context, id string) (*streamParts, error) {
	if id == "" {
		return nil, fmt.Errorf("lease has no stream: a single-stream lease in a multi-stream application's table")
	}
	s.mu.Lock()
	p, ok := s.parts[id]
	s.mu.Unlock()
	if ok {
		return p, nil
	}
	sc, err := parseIdentifier(id)
	if err != nil {
		return nil, err
	}
	sc.InitialPosition = properties.PositionLatest
	p, err = s.build(ctx, sc)
	if err != nil {
		return nil, err
	}
	p.orphan = true
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.parts[id]; ok {
		return q, nil
	}
	s.parts[id] = p
	s.log.Info("consuming a stream that is not configured but has leases (from LATEST until its leases are deleted)", zap.String("stream", id))
	s.startLocked(p)
	return p, nil
}

// parseIdentifier is Java StreamIdentifier.multiStreamInstance(String).
func parseIdentifier(id string) (properties.StreamConfig, error) {
	ss, err := properties.ParseStreams(id)
	if err != nil || len(ss) != 1 || ss[0].Identifier() != id {
		return properties.StreamConfig{}, fmt.Errorf("lease stream %q is not a stream identifier account:streamName:creationEpoch", id)
	}
	return ss[0], nil
}

// Sync runs one shard sync of every stream; it fails only when every
// stream's sync failed, so one unreachable stream does not hold up the
// others (Java: one ShardSyncTask per stream).
func (s *streamSet) Sync(ctx context.Context) error {
	s.ensure(ctx)
	var errs []error
	n := 0
	for _, p := range s.snapshot() {
		n++
		if err := p.syncer.Sync(ctx); err != nil {
			s.log.Warn("shard sync failed", zap.String("stream", p.sc.Identifier()), zap.Error(err))
			errs = append(errs, fmt.Errorf("stream %s: %w", p.sc.Identifier(), err))
		}
	}
	if n > 0 && len(errs) == n {
		return errors.Join(errs...)
	}
	if n == 0 && len(s.cfg.Streams) > 0 {
		return fmt.Errorf("none of the %d configured streams could be resolved", len(s.cfg.Streams))
	}
	return nil
}

func (s *streamSet) snapshot() []*streamParts {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*streamParts, 0, len(s.parts))
	for _, p := range s.parts {
		out = append(out, p)
	}
	return out
}

// RunPeriodic runs every stream's periodic shard sync and lease cleaner and,
// every streamsCheckIntervalMillis or after a reload, the streams check,
// until ctx is done.
func (s *streamSet) RunPeriodic(ctx context.Context, isLeader func(context.Context) bool) error {
	run := &periodicRun{ctx: ctx, isLeader: isLeader}
	s.mu.Lock()
	s.running = run
	for _, p := range s.parts {
		s.startLocked(p)
	}
	s.mu.Unlock()
	t := time.NewTicker(s.cfg.StreamsCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.running = nil
			s.mu.Unlock()
			run.wg.Wait()
			return ctx.Err()
		case <-t.C:
		case <-s.kick:
		}
		s.check(ctx, isLeader)
	}
}

// startLocked starts p's periodic shard sync and cleaner under the running
// RunPeriodic (s.mu held); a no-op before RunPeriodic or when started.
func (s *streamSet) startLocked(p *streamParts) {
	run := s.running
	if run == nil || p.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(run.ctx)
	p.stop, p.done = cancel, make(chan struct{})
	run.wg.Add(1)
	go func() { // owned by RunPeriodic (run.wg) and stopped by p.stop
		defer run.wg.Done()
		defer close(p.done)
		var inner sync.WaitGroup
		inner.Add(1)
		go func() { // owned by the enclosing goroutine (inner)
			defer inner.Done()
			_ = p.cleaner.Run(ctx)
		}()
		// A stream that is not (or no longer) listed is not shard-synced
		// (Java SHOULD_DO_LEASE_SYNC_FOR_OLD_STREAMS = false): its leases
		// only run out or are deleted.
		id := p.sc.Identifier()
		listed := func(ctx context.Context) bool { return s.listed(id) && run.isLeader(ctx) }
		if err := p.syncer.RunPeriodic(ctx, listed); err != nil && ctx.Err() == nil {
			s.log.Error("periodic shard sync ended", zap.String("stream", p.sc.Identifier()), zap.Error(err))
		}
		inner.Wait()
	}()
}

// listed reports whether stream id is in the current list.
func (s *streamSet) listed(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wantedIDs[id]
}

// dropIdle stops and forgets the parts of streams that are neither listed
// nor have leases (built for a lease that has since been deleted).
func (s *streamSet) dropIdle(byStream map[string][]string) {
	s.mu.Lock()
	var idle []*streamParts
	for id, p := range s.parts {
		if !s.wantedIDs[id] && len(byStream[id]) == 0 {
			idle = append(idle, p)
			delete(s.parts, id)
		}
	}
	s.mu.Unlock()
	for _, p := range idle {
		if p.stop != nil {
			p.stop()
			<-p.done
		}
	}
}

// check is Java Scheduler.checkAndSyncStreamShardsAndLeases: new streams are
// built, synced and started; streams with leases that are no longer
// configured are deleted after waitPeriodToDeleteFormerStreamsMillis under
// FORMER_STREAMS_AUTO_DETECTION_DEFERRED_DELETION. As Java
// Scheduler.runProcessLoop runs it only while isLeader, only the leader
// times and deletes former streams (a worker with a stale stream list
// deletes nothing); the wait restarts whenever this worker is not the
// leader, so a new leader waits the whole period (docs/multistream.md).
func (s *streamSet) check(ctx context.Context, isLeader func(context.Context) bool) {
	for _, p := range s.ensure(ctx) {
		if err := p.syncer.Sync(ctx); err != nil {
			s.log.Warn("shard sync of a new stream failed; the periodic sync retries", zap.String("stream", p.sc.Identifier()), zap.Error(err))
		}
		s.mu.Lock()
		s.startLocked(p)
		s.mu.Unlock()
	}
	leases, err := s.store.ListLeases(ctx)
	if err != nil {
		s.log.Warn("streams check: listing leases", zap.Error(err))
		return
	}
	byStream := map[string][]string{}
	for _, l := range leases {
		if id := l.StreamOf(); id != "" {
			byStream[id] = append(byStream[id], l.Key)
		}
	}
	s.dropIdle(byStream)
	if s.cfg.FormerStreamsLeasesDeletionStrategy != properties.FormerStreamsAutoDetectionDeferredDeletion {
		return
	}
	if !isLeader(ctx) {
		s.mu.Lock()
		clear(s.staleSince)
		s.mu.Unlock()
		return
	}
	for _, id := range s.dueForDeletion(byStream) {
		s.deleteStream(ctx, id, byStream[id])
	}
}

// dueForDeletion records when each former stream was first seen and
// returns those out of the configuration for at least the wait period.
func (s *streamSet) dueForDeletion(byStream map[string][]string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var due []string
	for id := range byStream {
		sc, err := parseIdentifier(id)
		if s.wantedIDs[id] || (err == nil && (s.unresolved[sc.Name] || s.listedNowLocked(id, sc.Name))) {
			delete(s.staleSince, id)
			continue
		}
		since, ok := s.staleSince[id]
		if !ok {
			s.staleSince[id] = now
			s.log.Warn("stream is no longer configured; its leases will be deleted",
				zap.String("stream", id), zap.Time("at", now.Add(s.cfg.WaitPeriodToDeleteFormerStreams)))
			since = now
		}
		if now.Sub(since) >= s.cfg.WaitPeriodToDeleteFormerStreams {
			due = append(due, id)
		}
	}
	for id := range s.staleSince {
		if _, ok := byStream[id]; !ok {
			delete(s.staleSince, id)
		}
	}
	return due
}

// listedNowLocked reports whether the current list (s.wanted, which a
// reload may have replaced while this check resolved the previous one)
// names stream id: as that identifier, or by a name or ARN not resolved
// since the reload. s.mu is held.
func (s *streamSet) listedNowLocked(id, name string) bool {
	for _, sc := range s.wanted {
		if sc.Identifier() == id {
			return true
		}
		r, ok := s.resolved[sc.String()]
		if (ok && r.Identifier() == id) || (!ok && sc.Identifier() == "" && sc.Name == name) {
			return true
		}
	}
	return false
}

// deleteStream deletes the leases of a former stream (Java
// Scheduler.deleteMultiStreamLeases; the holders lose them and shut their
// consumers down) and stops its shard sync and cleaner.
func (s *streamSet) deleteStream(ctx context.Context, id string, keys []string) {
	s.log.Warn("deleting the leases of a former stream", zap.String("stream", id), zap.Int("leases", len(keys)))
	s.mu.Lock()
	p := s.parts[id]
	delete(s.parts, id)
	s.mu.Unlock()
	if p != nil && p.stop != nil {
		p.stop()
		<-p.done
	}
	for _, k := range keys {
		if err := s.store.DeleteLease(ctx, k); err != nil {
			s.log.Warn("deleting a former stream's lease; retried at the next check", zap.String("leaseKey", k), zap.Error(err))
			return
		}
	}
	s.mu.Lock()
	delete(s.staleSince, id)
	s.mu.Unlock()
}

// setStreams replaces the wanted streams (a reload) and asks for a check.
func (s *streamSet) setStreams(cfg *properties.Config) {
	s.mu.Lock()
	s.wanted = cfg.Streams
	// A stream re-created under the same name has a new creation epoch.
	s.resolved = map[string]properties.StreamConfig{}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// CreateChildLeases creates the child leases in the parent's stream.
func (s *streamSet) CreateChildLeases(ctx context.Context, parent lease.Lease, children []record.ChildShard) error {
	p, err := s.partsOf(ctx, parent.StreamOf())
	if err != nil {
		return fmt.Errorf("lease %s: %w", parent.Key, err)
	}
	return p.syncer.CreateChildLeases(ctx, parent, children)
}

// ParentsDone asks l's stream.
func (s *streamSet) ParentsDone(ctx context.Context, l lease.Lease) (bool, error) {
	p, err := s.partsOf(ctx, l.StreamOf())
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", l.Key, err)
	}
	return p.syncer.ParentsDone(ctx, l)
}

// Enqueue hands a finished lease to its stream's cleaner.
func (s *streamSet) Enqueue(key string) {
	id, _, ok := lease.ParseMultiStreamKey(key)
	if !ok {
		s.log.Warn("finished lease is not a multi-stream lease; not cleaned up", zap.String("leaseKey", key))
		return
	}
	s.mu.Lock()
	p := s.parts[id]
	s.mu.Unlock()
	if p != nil {
		p.cleaner.Enqueue(key)
	}
}

// Run is the daemon.Cleaner loop: the streams' cleaners run under
// RunPeriodic, so it only waits for ctx.
func (s *streamSet) Run(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// Sources is the daemon.SourceFactory routing each lease to its stream.
func (s *streamSet) Sources(ctx context.Context, l lease.Lease, start seqnum.ESN) (daemon.RecordSource, error) {
	p, err := s.partsOf(ctx, l.StreamOf())
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", l.Key, err)
	}
	return p.sources(ctx, l, start)
}

// perStreamConfig is cfg narrowed to one stream of a multi-stream
// application: stream calls address a stream given by ARN by its ARN (so a
// stream of another account is reachable through its resource policy, as
// in Java multi-stream mode) and others by name; new leases start at the
// stream's own initial position; an enhanced fan-out consumer is registered
// per stream under fanoutConfig.consumerName.
func perStreamConfig(cfg *properties.Config, sc properties.StreamConfig) *properties.Config {
	c := *cfg
	c.Streams = nil
	c.StreamName, c.StreamARN = sc.Name, sc.ARN
	if sc.ARN != "" {
		c.StreamName = ""
	}
	c.InitialPosition = cfg.PositionOf(sc)
	if sc.InitialPosition == properties.PositionAtTimestamp {
		c.InitialTimestamp = sc.InitialTimestamp
	}
	c.Fanout.ConsumerARN = ""
	return &c
}
