#!/usr/bin/env python3
"""Sample record processor for multilangd (or the Java KCL MultiLangDaemon).

It uses the amazon_kclpy v3 processor API (initialize, process_records,
lease_lost, shard_ended, shutdown_requested). multilangd starts one copy of
this program per shard and talks to it over stdin/stdout, so:

* never print() to stdout - it carries the protocol; log to stderr, which
  multilangd logs line by line with the shard id;
* checkpoint after processing (here: after every batch) and at shard end,
  otherwise the child shards of a split or merge never start.

Install: pip install amazon_kclpy   (the Java jars it bundles are not needed
by multilangd). Run: multilangd sample.properties
"""
import base64
import json
import os
import sys
import time

from amazon_kclpy import kcl
from amazon_kclpy.v3 import processor


def log(message):
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def printable(text):
    return "".join(c if c >= " " and c != "\x7f" else " " for c in text)


class RecordProcessor(processor.RecordProcessorBase):
    """Logs every record, optionally appends it to $KCL_SAMPLE_OUTPUT, and
    checkpoints after every batch."""

    CHECKPOINT_RETRIES = 5
    RETRY_SLEEP_SECONDS = 1.0

    def __init__(self):
        self._shard_id = "unknown"
        self._output = os.environ.get("KCL_SAMPLE_OUTPUT")

    def initialize(self, initialize_input):
        self._shard_id = initialize_input.shard_id
        log("shard=%s initialize at %s/%s" % (
            self._shard_id, initialize_input.sequence_number, initialize_input.sub_sequence_number))

    def checkpoint(self, checkpointer, sequence_number=None, sub_sequence_number=None):
        """Checkpoint, retrying the retryable errors. The error values are Java
        exception names sent back by the daemon."""
        for attempt in range(1, self.CHECKPOINT_RETRIES + 1):
            try:
                checkpointer.checkpoint(sequence_number, sub_sequence_number)
                return
            except kcl.CheckpointError as e:
                if e.value == "ShutdownException":
                    # The lease moved to another worker: stop checkpointing.
                    log("shard=%s lease gone, not checkpointing" % self._shard_id)
                    return
                if e.value in ("ThrottlingException", "KinesisClientLibDependencyException"):
                    log("shard=%s checkpoint attempt %d: %s, retrying" % (self._shard_id, attempt, e.value))
                    time.sleep(self.RETRY_SLEEP_SECONDS)
                    continue
                # InvalidStateException, IllegalArgumentException, ...: a bug or a
                # missing lease row; retrying will not help.
                log("shard=%s checkpoint failed: %s" % (self._shard_id, e.value))
                return
        log("shard=%s checkpoint gave up after %d attempts" % (self._shard_id, self.CHECKPOINT_RETRIES))

    def process_records(self, process_records_input):
        last = None
        lines = []
        for record in process_records_input.records:
            data = record.binary_data
            log("shard=%s seq=%s sub=%s pk=%s data=%s" % (
                self._shard_id, record.sequence_number, record.sub_sequence_number,
                printable(record.partition_key), printable(data[:40].decode("utf-8", "replace"))))
            if self._output:
                lines.append(json.dumps({
                    "shardId": self._shard_id,
                    "sequenceNumber": record.sequence_number,
                    "subSequenceNumber": record.sub_sequence_number,
                    "partitionKey": record.partition_key,
                    "data": base64.b64encode(data).decode("ascii"),
                }))
            last = record
        if lines:
            with open(self._output, "a") as f:
                f.write("\n".join(lines) + "\n")
                f.flush()
                os.fsync(f.fileno())
        if last is not None:
            # (sequence, sub-sequence) of the last record: exact for KPL
            # sub-records too.
            self.checkpoint(process_records_input.checkpointer, last.sequence_number, last.sub_sequence_number)

    def lease_lost(self, lease_lost_input):
        # Another worker owns the shard now; checkpointing is not possible.
        log("shard=%s lease lost" % self._shard_id)

    def shard_ended(self, shard_ended_input):
        # The shard was split or merged: checkpoint() with no argument stores
        # SHARD_END, which lets the child shards start.
        log("shard=%s shard ended" % self._shard_id)
        self.checkpoint(shard_ended_input.checkpointer)

    def shutdown_requested(self, shutdown_requested_input):
        # The worker is stopping or handing the lease to another worker.
        log("shard=%s shutdown requested" % self._shard_id)
        self.checkpoint(shutdown_requested_input.checkpointer)


if __name__ == "__main__":
    kcl.KCLProcess(RecordProcessor()).run()
