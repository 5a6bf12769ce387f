package subprocess

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/multilangd/multilangd/properties"
	"github.com/multilangd/multilangd/record"
)

// Checkpointer performs the checkpoint a child asks for during an action. A
// nil sequenceNumber means "the largest permitted value" (the last record
// delivered, or SHARD_END during shardEnded); a nil subSequenceNumber means 0.
// An error it returns may implement interface{ ExceptionName() string } to
// choose the Java exception simple name sent to the child in the reply's
// error field; any other error is reported as
// KinesisClientLibDependencyException. Checkpoint errors never fail the
// action.
//
// It is an alias of the interface literal so that an identically written
// consumer-side interface elsewhere (daemon.ChildCheckpointer) is the same
// type and *Child satisfies that package's Child interface directly.
type Checkpointer = interface {
	Checkpoint(ctx context.Context, sequenceNumber *string, subSequenceNumber *int64) error
}

// NoShutdownGrace as Config.ChildShutdownGrace ends a child without waiting:
// SIGTERM to its process group as soon as stdin is closed, SIGKILL right
// after (childShutdownGraceMillis = 0).
const NoShutdownGrace time.Duration = -1

// pipeDrain is the least time given to read what an exited child (or a
// process outside its group) left in the pipes, even with NoShutdownGrace.
const pipeDrain = 100 * time.Millisecond

// Config describes one child process.
type Config struct {
	// Command is the executableName property value, split on runs of spaces.
	Command string
	// ShardID tags every log line about this child.
	ShardID string
	// Timeout is the per-message read timeout (timeoutInSeconds): while an
	// action is in flight the child must send a decodable message at least
	// this often. Zero or negative means no timeout.
	Timeout time.Duration
	// ChildShutdownGrace bounds each stage of ending a child: waiting for it
	// to exit after stdin is closed, then after SIGTERM, before SIGKILL.
	// Zero means the childShutdownGraceMillis default; NoShutdownGrace means
	// no wait at all (childShutdownGraceMillis = 0).
	ChildShutdownGrace time.Duration
	// StderrLevel is the level child stderr lines are logged at (zero value:
	// info; Java uses ERROR).
	StderrLevel zapcore.Level
	// StderrPassthrough, when non-nil, also receives the child's stderr bytes
	// unchanged (Java echoes them to its own stderr).
	StderrPassthrough io.Writer
	// Logger receives the child's log lines; nil discards them.
	Logger *zap.Logger
	// Dir is the child's working directory; "" inherits the daemon's.
	Dir string
	// Env entries (KEY=VALUE) are appended to the daemon's environment, later
	// entries winning; nil inherits the environment unchanged, as Java does.
	Env []string
	// StreamName is set only for a multi-stream application
	// (docs/multistream.md): initialize then carries an extra "streamName"
	// field and the child's environment StreamNameEnv and
	// StreamIdentifierEnv. Unset, the child sees exactly what Java sends.
	StreamName string
	// StreamIdentifier is the stream's Java StreamIdentifier
	// (account:streamName:creationEpoch), exported with StreamName.
	StreamIdentifier string

	// trace, set only by tests, sees every line written (out) and read.
	trace func(out bool, line []byte)
}

// Environment variables naming a multi-stream child's stream.
const (
	StreamNameEnv       = "MULTILANGD_STREAM_NAME"
	StreamIdentifierEnv = "MULTILANGD_STREAM_IDENTIFIER"
)

// env is Env plus, for a multi-stream child, its stream's variables; nil
// when the daemon's environment is inherited unchanged.
func (c Config) env() []string {
	if c.StreamName == "" {
		return c.Env
	}
	return append(append([]string(nil), c.Env...),
		StreamNameEnv+"="+c.StreamName, StreamIdentifierEnv+"="+c.StreamIdentifier)
}

// inMsg is what the stdout reader hands to the action in flight.
type inMsg struct {
	m    message
	err  error // *lineError
	line string
}

// writeJob is one message for the stdin writer: buf written whole, or, when
// stream is set, written by stream in bounded chunks (processRecords).
type writeJob struct {
	buf    []byte
	stream func(w io.Writer) error
	done   chan error
}

// Child is a running record-processor process. Its action methods must not
// be called concurrently (ErrBusy); Close and Kill may be called at any time
// from any goroutine and are idempotent.
type Child struct {
	cfg   Config
	log   *zap.Logger
	grace time.Duration
	cmd   *exec.Cmd
	pid   int

	stdin, stdout, stderr *os.File

	writeCh    chan writeJob
	writeDone  chan error // buffered 1; one write at a time
	msgCh      chan inMsg
	readerDone chan struct{}
	stderrDone chan struct{}
	exited     chan struct{}
	quit       chan struct{} // closed when clean-up starts
	cleaned    chan struct{} // closed when clean-up finished
	wg         sync.WaitGroup

	readErr  error // set before readerDone is closed
	exitCode int   // set before exited is closed
	waitErr  error

	cleanupOnce sync.Once

	mu       sync.Mutex // one action at a time
	buf      []byte
	finished bool  // leaseLost or shardEnded answered
	failErr  error // first action failure
}

// Start spawns the child described by cfg. Failures are *StartError.
func Start(ctx context.Context, cfg Config) (*Child, error) {
	if err := ctx.Err(); err != nil {
		return nil, &StartError{ShardID: cfg.ShardID, Command: SplitCommand(cfg.Command), Err: err}
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("shardId", cfg.ShardID))
	path, argv, err := ResolveCommand(cfg.Command, cfg.Dir)
	if err != nil {
		return nil, &StartError{ShardID: cfg.ShardID, Command: SplitCommand(cfg.Command), Err: err}
	}
	c := &Child{
		cfg:        cfg,
		log:        log,
		grace:      cfg.ChildShutdownGrace,
		writeCh:    make(chan writeJob),
		writeDone:  make(chan error, 1),
		msgCh:      make(chan inMsg),
		readerDone: make(chan struct{}),
		stderrDone: make(chan struct{}),
		exited:     make(chan struct{}),
		quit:       make(chan struct{}),
		cleaned:    make(chan struct{}),
	}
	switch {
	case c.grace == 0:
		c.grace = properties.Defaults().ChildShutdownGrace
	case c.grace < 0:
		c.grace = 0
	}
	if err := c.spawn(path, argv); err != nil {
		return nil, &StartError{ShardID: cfg.ShardID, Command: argv, Err: err}
	}
	c.log.Info("child process started", zap.Int("pid", c.pid), zap.Strings("command", argv))
	c.wg.Add(4)
	go c.waitLoop()
	go c.readLoop()
	go c.stderrLoop()
	go c.writeLoop()
	return c, nil
}

// spawn starts the process with three fresh pipes, in its own process group.
func (c *Child) spawn(path string, argv []string) error {
	inR, inW, err := os.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return err
	}
	newCmd := func(path string, argv []string) *exec.Cmd {
		// An explicit Path bypasses exec.LookPath (and its ErrDot refusal).
		cmd := &exec.Cmd{Path: path, Args: argv, Dir: c.cfg.Dir, Stdin: inR, Stdout: outW, Stderr: errW, SysProcAttr: sysProcAttr()}
		if env := c.cfg.env(); env != nil {
			cmd.Env = append(os.Environ(), env...)
		}
		return cmd
	}
	cmd := newCmd(path, argv)
	err = cmd.Start()
	if errors.Is(err, syscall.ENOEXEC) {
		// A script without a shebang: Java's launcher retries via /bin/sh.
		cmd = newCmd("/bin/sh", append([]string{"/bin/sh", path}, argv[1:]...))
		err = cmd.Start()
	}
	closeAll(inR, outW, errW) // the child's ends
	if err != nil {
		closeAll(inW, outR, errR)
		return err
	}
	c.cmd, c.pid = cmd, cmd.Process.Pid
	c.stdin, c.stdout, c.stderr = inW, outR, errR
	return nil
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}

// PID returns the child's process id (also its process group id).
func (c *Child) PID() int { return c.pid }

// waitLoop reaps the child and records its exit status.
func (c *Child) waitLoop() {
	defer c.wg.Done()
	err := c.cmd.Wait()
	c.waitErr = err
	c.exitCode = c.cmd.ProcessState.ExitCode()
	close(c.exited)
}

// writeLoop owns writes to the child's stdin, so a multi-megabyte line never
// stops the action loop from reading stdout or noticing a timeout.
func (c *Child) writeLoop() {
	defer c.wg.Done()
	for {
		select {
		case j := <-c.writeCh:
			var err error
			if j.stream != nil {
				err = j.stream(c.stdin)
			} else {
				_, err = c.stdin.Write(j.buf)
			}
			j.done <- err
		case <-c.quit:
			return
		}
	}
}

// maxLogLine bounds how much of an unexpected stdout line is logged.
const maxLogLine = 4096

// readLoop reads the child's stdout for its whole life, without a line length
// limit, splitting lines on "\n", "\r\n" and a lone "\r" as Java's readLine
// does (a line ended by "\r" alone is handled at once, not when a later "\n"
// arrives). Protocol messages are handed to the action in flight (blocking
// until one is, as Java leaves them in the pipe between actions); other lines
// are logged and dropped at once so a chatty child never blocks.
func (c *Child) readLoop() {
	defer c.wg.Done()
	defer close(c.readerDone)
	// Children write short lines (status, checkpoint); longer ones gather
	// in acc. A small buffer keeps an idle child cheap: with 256 leases the
	// former 64 KiB here were 16 MiB of the daemon's memory.
	buf := make([]byte, 4<<10)
	var acc []byte  // the start of a line spanning reads
	skipLF := false // the previous line ended with "\r": a leading "\n" belongs to it
	for {
		n, err := c.stdout.Read(buf)
		chunk := buf[:n]
		for len(chunk) > 0 {
			if skipLF {
				skipLF = false
				if chunk[0] == '\n' {
					chunk = chunk[1:]
					continue
				}
			}
			i := bytes.IndexAny(chunk, "\r\n")
			if i < 0 {
				acc = append(acc, chunk...)
				break
			}
			line := chunk[:i]
			if len(acc) > 0 {
				acc = append(acc, line...)
				line = acc
			}
			skipLF = chunk[i] == '\r'
			chunk = chunk[i+1:]
			c.handleLine(line)
			if cap(acc) > 1<<20 {
				acc = nil // do not pin a huge buffer after one long line
			} else {
				acc = acc[:0]
			}
		}
		if err != nil {
			if len(acc) > 0 { // a last line without terminator
				c.handleLine(acc)
			}
			if !errors.Is(err, io.EOF) {
				c.readErr = err
			}
			return
		}
	}
}

func (c *Child) handleLine(line []byte) {
	if c.cfg.trace != nil {
		c.cfg.trace(false, line)
	}
	m, err := decodeLine(line)
	var le *lineError
	switch {
	case errors.As(err, &le):
	case err != nil:
		c.log.Info("skipping unexpected line on child stdout", zap.String("line", truncate(line, maxLogLine)))
		return
	case m.kind == kindEmpty:
		return
	case m.kind == kindIgnored:
		c.log.Info("ignoring daemon-to-child message echoed by child", zap.String("line", truncate(line, maxLogLine)))
		return
	}
	in := inMsg{m: m, err: err, line: truncate(line, maxLogLine)}
	select {
	case <-c.quit:
		c.log.Info("child message after close dropped", zap.String("line", in.line))
		return
	default:
	}
	select {
	case c.msgCh <- in:
	case <-c.quit:
		c.log.Info("child message after close dropped", zap.String("line", in.line))
	}
}

// maxStderrChunk bounds one logged stderr line; longer lines are logged in
// chunks instead of being buffered without limit.
const maxStderrChunk = 64 << 10

// stderrLoop drains the child's stderr for its whole life.
func (c *Child) stderrLoop() {
	defer c.wg.Done()
	defer close(c.stderrDone)
	br := bufio.NewReaderSize(c.stderr, maxStderrChunk)
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			if c.cfg.StderrPassthrough != nil {
				_, _ = c.cfg.StderrPassthrough.Write(frag)
			}
			line := bytes.TrimSuffix(bytes.TrimSuffix(frag, []byte{'\n'}), []byte{'\r'})
			if ce := c.log.Check(c.cfg.StderrLevel, "child stderr"); ce != nil {
				ce.Write(zap.Int("pid", c.pid), zap.String("line", string(line)))
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// Initialize sends initialize with the lease's checkpoint and waits for the
// child's status. A checkpoint request during initialize is answered with
// InvalidStateException, as in Java.
func (c *Child) Initialize(ctx context.Context, shardID string, seq *string, sub *int64) error {
	return c.act(ctx, actionInitialize, nil, func(b []byte) []byte { return appendInitialize(b, shardID, c.cfg.StreamName, seq, sub) })
}

// ProcessRecords sends one processRecords line and relays the child's
// checkpoint requests to cp until its status. The line is streamed to the
// child's stdin in chunks of about streamChunk bytes, never built whole.
func (c *Child) ProcessRecords(ctx context.Context, recs []record.Record, millisBehindLatest *int64, cp Checkpointer) error {
	stream := func(w io.Writer) error {
		if c.cfg.trace != nil {
			var line bytes.Buffer
			w = io.MultiWriter(w, &line)
			defer func() { c.cfg.trace(true, line.Bytes()) }()
		}
		var err error
		c.buf, err = writeProcessRecords(w, c.buf, recs, millisBehindLatest)
		return err
	}
	return c.run(ctx, actionProcessRecords, cp, writeJob{stream: stream})
}

// ShutdownRequested sends shutdownRequested (graceful stop or hand-off); the
// child may checkpoint through cp.
func (c *Child) ShutdownRequested(ctx context.Context, cp Checkpointer) error {
	return c.act(ctx, actionShutdownRequested, cp, func(b []byte) []byte { return appendBare(b, actionShutdownRequested) })
}

// LeaseLost sends leaseLost; checkpoints are answered with
// InvalidStateException. After it succeeds only Close is allowed.
func (c *Child) LeaseLost(ctx context.Context) error {
	return c.act(ctx, actionLeaseLost, nil, func(b []byte) []byte { return appendBare(b, actionLeaseLost) })
}

// ShardEnded sends shardEnded; the child is expected to checkpoint (null =
// SHARD_END) through cp. After it succeeds only Close is allowed.
func (c *Child) ShardEnded(ctx context.Context, cp Checkpointer) error {
	return c.act(ctx, actionShardEnded, cp, func(b []byte) []byte { return appendBare(b, actionShardEnded) })
}

// act runs one action: encode, write, wait for the status. On failure the
// child's process group is terminated and reaped before act returns.
func (c *Child) act(ctx context.Context, action string, cp Checkpointer, encode func([]byte) []byte) error {
	return c.run(ctx, action, cp, writeJob{stream: func(w io.Writer) error {
		c.buf = encode(c.buf[:0])
		if c.cfg.trace != nil {
			c.cfg.trace(true, c.buf)
		}
		_, err := w.Write(c.buf)
		return err
	}})
}

// run runs one action whose message is job: write, wait for the status. On
// failure the child's process group is terminated and reaped before run
// returns.
func (c *Child) run(ctx context.Context, action string, cp Checkpointer, job writeJob) error {
	if !c.mu.TryLock() {
		return ErrBusy
	}
	defer c.mu.Unlock()
	switch {
	case c.failErr != nil:
		return fmt.Errorf("%w: %s after an earlier failure: %w", ErrClosed, action, c.failErr)
	case c.finished:
		return fmt.Errorf("%w: %s after the final action", ErrClosed, action)
	case c.isQuit():
		return fmt.Errorf("%w: %s", ErrClosed, action)
	}
	err := c.exchange(ctx, action, cp, job)
	if err != nil {
		if !errors.Is(err, ErrClosed) {
			c.failErr = err
		}
		return err
	}
	if action == actionLeaseLost || action == actionShardEnded {
		c.finished = true
	}
	return nil
}

func (c *Child) isQuit() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

// exchange writes job and serves the child until its status arrived and
// every write finished.
func (c *Child) exchange(ctx context.Context, action string, cp Checkpointer, job writeJob) error {
	queue := []writeJob{job}
	writing := false
	statusSeen := false
	var timer *time.Timer
	var timeoutC <-chan time.Time
	if c.cfg.Timeout > 0 {
		timer = time.NewTimer(c.cfg.Timeout)
		defer timer.Stop()
		timeoutC = timer.C
	}
	exitedC := (<-chan struct{})(c.exited)
	var exitDrainC <-chan time.Time
	for {
		if !writing && len(queue) > 0 {
			j := queue[0]
			if c.cfg.trace != nil && j.stream == nil {
				c.cfg.trace(true, j.buf)
			}
			j.done = c.writeDone
			select {
			case c.writeCh <- j:
			case <-c.quit:
				return fmt.Errorf("%w during %s", ErrClosed, action)
			}
			queue[0] = writeJob{}
			queue = queue[1:]
			writing = true
		}
		if statusSeen && !writing {
			return nil
		}
		msgC := c.msgCh
		if statusSeen {
			msgC = nil // anything after the status belongs to the next action
		}
		select {
		case err := <-c.writeDone:
			writing = false
			if err != nil {
				return c.fail(&ExitError{ShardID: c.cfg.ShardID, Action: action, ExitCode: -1, Err: fmt.Errorf("writing to child stdin: %w", err)})
			}
		case in := <-msgC:
			if in.err != nil {
				return c.fail(&ProtocolError{ShardID: c.cfg.ShardID, Action: action, Line: in.line, Msg: in.err.Error()})
			}
			switch in.m.kind {
			case kindStatus:
				if in.m.responseFor != action {
					return c.fail(&ProtocolError{ShardID: c.cfg.ShardID, Action: action, Line: in.line,
						Msg: fmt.Sprintf("status responseFor %q, expected %q", in.m.responseFor, action)})
				}
				statusSeen = true
			case kindCheckpoint:
				queue = append(queue, writeJob{buf: c.checkpoint(ctx, action, cp, in.m)})
			}
			if timer != nil {
				timer.Reset(c.cfg.Timeout)
			}
		case <-c.readerDone:
			err := c.readErr
			if err == nil {
				err = io.EOF
			}
			return c.fail(&ExitError{ShardID: c.cfg.ShardID, Action: action, ExitCode: -1, Err: fmt.Errorf("reading child stdout: %w", err)})
		case <-exitedC:
			// The child is gone but its stdout may still hold the status, or a
			// grandchild may hold the pipe open: read on for a bounded time.
			exitedC = nil
			exitDrainC = time.After(max(c.grace, pipeDrain))
		case <-exitDrainC:
			return c.fail(&ExitError{ShardID: c.cfg.ShardID, Action: action, ExitCode: -1, Err: errors.New("child exited but its stdout stayed open")})
		case <-timeoutC:
			return c.fail(&TimeoutError{ShardID: c.cfg.ShardID, Action: action, Timeout: c.cfg.Timeout})
		case <-ctx.Done():
			return c.fail(fmt.Errorf("subprocess: shard %s: %s abandoned: %w", c.cfg.ShardID, action, context.Cause(ctx)))
		case <-c.quit:
			return fmt.Errorf("%w during %s", ErrClosed, action)
		}
	}
}

// checkpoint relays one checkpoint request and returns the encoded reply.
func (c *Child) checkpoint(ctx context.Context, action string, cp Checkpointer, m message) []byte {
	errName := ""
	if cp == nil {
		errName = excInvalidState
	} else if err := cp.Checkpoint(ctx, m.seq, m.sub); err != nil {
		errName = exceptionName(err)
		c.log.Info("child checkpoint failed", zap.String("action", action), zap.String("error", errName), zap.Error(err))
	}
	return appendCheckpointReply(nil, m.seq, m.sub, errName)
}

// fail terminates the child after a failed action and returns err, with the
// exit code filled in for an *ExitError.
func (c *Child) fail(err error) error {
	c.log.Warn("child failed; terminating its process group", zap.Int("pid", c.pid), zap.Error(err))
	var ee *ExitError
	if errors.As(err, &ee) {
		// It is going away by itself: give it the grace period to exit
		// with its own status before signalling.
		c.cleanup(context.Background(), modeGraceful)
		ee.ExitCode = c.exitCode
	} else {
		c.cleanup(context.Background(), modeTerminate)
	}
	return err
}

// Close ends the child after its final action (or abandons it at any time):
// close stdin (EOF tells the clients to exit), drain stdout and stderr, wait
// up to the grace period for it to exit, then SIGTERM and, after another
// grace period, SIGKILL its process group, and reap it. The exit status is
// only logged, as in Java. A cancelled ctx skips the waiting and kills at
// once. Close is idempotent and always returns nil once the child is reaped.
func (c *Child) Close(ctx context.Context) error {
	c.cleanup(ctx, modeGraceful)
	return nil
}

// Kill SIGKILLs the child's process group at once and reaps it.
func (c *Child) Kill() {
	c.cleanup(context.Background(), modeKill)
}

type cleanupMode int

const (
	modeGraceful  cleanupMode = iota // close stdin, wait, SIGTERM, wait, SIGKILL
	modeTerminate                    // SIGTERM, wait, SIGKILL
	modeKill                         // SIGKILL
)

// cleanup runs once; concurrent callers wait for the first to finish.
func (c *Child) cleanup(ctx context.Context, mode cleanupMode) {
	c.cleanupOnce.Do(func() {
		defer close(c.cleaned)
		close(c.quit)
		_ = c.stdin.Close()
		allDone := func() <-chan struct{} {
			ch := make(chan struct{})
			go func() { // owned here: it ends when the three channels close
				<-c.exited
				<-c.readerDone
				<-c.stderrDone
				close(ch)
			}()
			return ch
		}()
		wait := func(d time.Duration) bool {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-allDone:
			case <-t.C:
				return false
			case <-ctx.Done():
				return false
			}
			// The child is reaped and the pipes are closed; other members
			// of its group (daemonised grandchildren) may still be running.
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for groupAlive(c.pid) {
				select {
				case <-tick.C:
				case <-t.C:
					return false
				case <-ctx.Done():
					return false
				}
			}
			return true
		}
		done := false
		if mode == modeGraceful {
			done = wait(c.grace)
		}
		if !done && mode != modeKill {
			c.signalGroup(syscall.SIGTERM)
			done = wait(c.grace)
		}
		if !done || groupAlive(c.pid) {
			c.signalGroup(syscall.SIGKILL)
		}
		<-c.exited
		// Processes outside the group (setsid) may still hold the pipes:
		// after a short wait, close our ends to release the pumps.
		t := time.NewTimer(pipeDrain)
		select {
		case <-allDone:
		case <-t.C:
			_ = c.stdout.Close()
			_ = c.stderr.Close()
			<-allDone
		}
		t.Stop()
		c.wg.Wait()
		_ = c.stdout.Close()
		_ = c.stderr.Close()
		fields := []zap.Field{zap.Int("pid", c.pid), zap.Int("exitCode", c.exitCode)}
		if c.waitErr != nil {
			fields = append(fields, zap.String("status", c.waitErr.Error()))
		}
		c.log.Info("child process ended", fields...)
	})
	<-c.cleaned
}

// signalGroup sends sig to the child's process group.
func (c *Child) signalGroup(sig syscall.Signal) {
	if err := syscall.Kill(-c.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		c.log.Warn("signalling child process group", zap.Int("pgid", c.pid), zap.Stringer("signal", sig), zap.Error(err))
	}
}
