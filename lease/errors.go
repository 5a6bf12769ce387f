package lease

import (
	"errors"
	"fmt"
)

// Store-level sentinel errors. DynamoStore wraps the AWS error with one of
// these so callers can branch with errors.Is.
var (
	// ErrConditionFailed: a conditional write's condition did not hold
	// (DynamoDB ConditionalCheckFailedException).
	ErrConditionFailed = errors.New("lease: condition check failed")
	// ErrThrottled: DynamoDB throttled the request and retries were exhausted.
	ErrThrottled = errors.New("lease: dynamodb throttled")
	// ErrNotLease: an item is not a lease (3.5 entityType ≠ LEASE) and was skipped.
	ErrNotLease = errors.New("lease: item is not a lease")
	// ErrMalformed: an item claims to be a lease but cannot be decoded.
	ErrMalformed = errors.New("lease: malformed lease item")
	// ErrTableNotFound: the lease table does not exist.
	ErrTableNotFound = errors.New("lease: table not found")
)

// Coordinator-level sentinel errors, also used as context.Cause of a held
// lease's context.
var (
	// ErrLeaseLost: the lease was lost (renew or checkpoint condition failed,
	// or it was not renewed within failover).
	ErrLeaseLost = errors.New("lease: lease lost")
	// ErrReleased: the lease was released by this worker.
	ErrReleased = errors.New("lease: lease released")
	// ErrNotHeld: the lease (or this concurrency token) is not held by this worker.
	ErrNotHeld = errors.New("lease: lease not held")
	// ErrStopped: the coordinator stopped; every held lease is dropped.
	ErrStopped = errors.New("lease: coordinator stopped")
)

// CheckpointErrorKind is the Java exception a KCL record processor sees for
// a failed checkpoint; its text is the exception's simple name, which the
// subprocess package puts into the checkpoint reply's error field. It is an
// error so that errors.Is(err, CheckpointShutdown) works on a
// *CheckpointError. (Store-level errors such as ErrThrottled are a separate
// family: several of them map to one kind.)
type CheckpointErrorKind string

func (k CheckpointErrorKind) Error() string { return string(k) }

// The checkpoint error kinds.
const (
	// CheckpointShutdown: this worker no longer holds the lease.
	CheckpointShutdown CheckpointErrorKind = "ShutdownException"
	// CheckpointThrottling: DynamoDB throttled the checkpoint write (retryable).
	CheckpointThrottling CheckpointErrorKind = "ThrottlingException"
	// CheckpointInvalidState: the lease item or the lease table is missing.
	CheckpointInvalidState CheckpointErrorKind = "InvalidStateException"
	// CheckpointDependency: another DynamoDB failure (retryable).
	CheckpointDependency CheckpointErrorKind = "KinesisClientLibDependencyException"
	// CheckpointIllegalArgument: the requested position is invalid or out of range.
	CheckpointIllegalArgument CheckpointErrorKind = "IllegalArgumentException"
)

// CheckpointError is returned by Checkpointer.Checkpoint;
// errors.Is(err, CheckpointShutdown) etc. work.
type CheckpointError struct {
	Kind CheckpointErrorKind
	Msg  string
	Err  error // underlying cause, may be nil
}

func (e *CheckpointError) Error() string {
	s := string(e.Kind) + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// ExceptionName is the Java simple exception name the subprocess package puts
// into the checkpoint reply's error field.
func (e *CheckpointError) ExceptionName() string { return string(e.Kind) }

// Unwrap exposes both the kind sentinel and the cause.
func (e *CheckpointError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func cpErr(kind CheckpointErrorKind, err error, format string, args ...any) *CheckpointError {
	return &CheckpointError{Kind: kind, Msg: fmt.Sprintf(format, args...), Err: err}
}
