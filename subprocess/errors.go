package subprocess

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinels matched with errors.Is against the typed errors of this package.
var (
	// ErrStart is matched by *StartError: the child could not be started.
	ErrStart = errors.New("subprocess: child could not be started")
	// ErrProtocol is matched by *ProtocolError: the child broke the protocol.
	ErrProtocol = errors.New("subprocess: protocol violation")
	// ErrExited is matched by *ExitError: the child went away mid-action.
	ErrExited = errors.New("subprocess: child exited")
	// ErrTimeout is matched by *TimeoutError: no message within the timeout.
	ErrTimeout = errors.New("subprocess: child timed out")
	// ErrClosed is returned by actions on a child that was closed, killed or
	// failed earlier.
	ErrClosed = errors.New("subprocess: child closed")
	// ErrBusy is returned when an action is attempted while another one is
	// still in flight on the same child (a caller bug).
	ErrBusy = errors.New("subprocess: another action is in flight")
)

// StartError reports that the child process could not be started.
type StartError struct {
	ShardID string
	Command []string
	Err     error
}

func (e *StartError) Error() string {
	return fmt.Sprintf("subprocess: shard %s: starting %q: %v", e.ShardID, strings.Join(e.Command, " "), e.Err)
}

// Unwrap returns the underlying cause.
func (e *StartError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrStart) true.
func (e *StartError) Is(target error) bool { return target == ErrStart }

// ProtocolError reports a child message that violates the protocol, such as a
// status for the wrong action.
type ProtocolError struct {
	ShardID string
	Action  string // the action in flight
	Line    string // the offending line, truncated for logging
	Msg     string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("subprocess: shard %s: protocol violation during %s: %s (line %q)", e.ShardID, e.Action, e.Msg, e.Line)
}

// Is makes errors.Is(err, ErrProtocol) true.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

// ExitError reports that the child closed its stdout or stdin, or exited,
// before answering the action in flight.
type ExitError struct {
	ShardID string
	Action  string
	// ExitCode is the child's exit status, -1 when it was killed by a signal
	// (including multilangd's own clean-up) or is unknown.
	ExitCode int
	// Err is the low-level cause (EOF on stdout, a write error, the wait status).
	Err error
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("subprocess: shard %s: child went away during %s (exit code %d): %v", e.ShardID, e.Action, e.ExitCode, e.Err)
}

// Unwrap returns the underlying cause.
func (e *ExitError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrExited) true.
func (e *ExitError) Is(target error) bool { return target == ErrExited }

// TimeoutError reports that the child sent no decodable message within the
// per-message timeout (timeoutInSeconds).
type TimeoutError struct {
	ShardID string
	Action  string
	Timeout time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("subprocess: shard %s: no message from child within %s during %s", e.ShardID, e.Timeout, e.Action)
}

// Is makes errors.Is(err, ErrTimeout) true.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// ExceptionName is what a Checkpointer error may implement to choose the Java
// exception simple name placed in a checkpoint reply's error field.
type exceptionNamer interface{ ExceptionName() string }

// Java exception names used in checkpoint replies.
const (
	excInvalidState = "InvalidStateException"
	excDependency   = "KinesisClientLibDependencyException"
)

// exceptionName maps a Checkpointer error to the reply's error string.
func exceptionName(err error) string {
	var n exceptionNamer
	if errors.As(err, &n) {
		if s := n.ExceptionName(); s != "" {
			return s
		}
	}
	return excDependency
}

// truncate shortens s for logs and error messages.
func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + fmt.Sprintf("…(%d bytes)", len(b))
}
