// Package subprocess owns the record-processor child processes of
// multilangd and the KCL MultiLangDaemon JSON-lines protocol spoken with
// them: spawning the configured executable exactly as the Java daemon does,
// the byte-compatible encoder for daemon→child messages, the tolerant decoder
// for child→daemon lines, one action at a time with any number of checkpoint
// round-trips relayed to a caller-supplied Checkpointer, the stderr pump,
// per-message timeouts, and process-group termination and reaping.
//
// It knows nothing about DynamoDB or Kinesis: checkpoints go through the
// Checkpointer interface and records arrive as record.Record values.
//
// Unlike the Java daemon, no failure here ever exits the process: a child
// that fails to start, exits, breaks the protocol or times out yields a typed
// error (StartError, ExitError, ProtocolError, TimeoutError) and its process
// group is terminated and reaped before the call returns.
package subprocess
