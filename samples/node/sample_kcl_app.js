#!/usr/bin/env node
/*
 * Sample record processor for multilangd (and the Java MultiLangDaemon),
 * written against the aws-kcl npm package's v2 processor interface:
 * initialize, processRecords, leaseLost, shardEnded, shutdownRequested.
 *
 * - Prints one line per record to stderr, which multilangd logs with the
 *   shard id:  shard=<id> seq=<n> sub=<k> pk=<pk> data=<first 40 chars>
 * - When KCL_SAMPLE_OUTPUT names a file, appends one JSON line per record
 *   {"shardId","sequenceNumber","subSequenceNumber","partitionKey","data"}
 *   (data in base64) and flushes it before checkpointing.
 * - Checkpoints the last record of every batch, and checkpoints at shard end
 *   (required so child shards can start) and on shutdownRequested.
 * - Exits when the daemon closes stdin.
 *
 * Never write to stdout: it carries the protocol. Use stderr (console.error).
 */
'use strict';

const fs = require('fs');
const kcl = require('aws-kcl');

const outputFile = process.env.KCL_SAMPLE_OUTPUT;

function log(msg) {
  process.stderr.write(msg + '\n');
}

function printable(s) {
  return s.replace(/[\x00-\x1f\x7f]/g, ' ');
}

function recordProcessor() {
  let shardId = 'unknown';

  // checkpoint asks the daemon to store seq (null = the last record delivered,
  // or SHARD_END during shardEnded) and calls done when the reply arrived.
  // Errors are names of Java exceptions, e.g. ShutdownException (the lease is
  // gone: do not retry) or ThrottlingException (retryable).
  function checkpoint(checkpointer, seq, done) {
    checkpointer.checkpoint(seq, function (err, checkpointed) {
      if (err) {
        log(`shard=${shardId} checkpoint ${seq} failed: ${err}`);
      } else {
        log(`shard=${shardId} checkpointed ${checkpointed === null || checkpointed === undefined ? 'latest' : checkpointed}`);
      }
      done();
    });
  }

  return {
    initialize: function (input, completeCallback) {
      shardId = input.shardId;
      log(`shard=${shardId} initialize at ${input.sequenceNumber}/${input.subSequenceNumber}`);
      completeCallback();
    },

    processRecords: function (input, completeCallback) {
      const records = (input && input.records) || [];
      const lines = [];
      let last = null;
      for (const r of records) {
        const data = Buffer.from(r.data || '', 'base64').toString('utf8');
        log(`shard=${shardId} seq=${r.sequenceNumber} sub=${r.subSequenceNumber} pk=${printable(String(r.partitionKey))} data=${printable(data.slice(0, 40))}`);
        if (outputFile) {
          lines.push(JSON.stringify({
            shardId: shardId,
            sequenceNumber: r.sequenceNumber,
            subSequenceNumber: r.subSequenceNumber,
            partitionKey: r.partitionKey,
            data: r.data,
          }));
        }
        last = r.sequenceNumber;
      }
      if (outputFile && lines.length > 0) {
        // Synchronous append: the output is on disk before the checkpoint.
        fs.appendFileSync(outputFile, lines.join('\n') + '\n');
      }
      if (last === null) {
        completeCallback();
        return;
      }
      checkpoint(input.checkpointer, last, completeCallback);
    },

    leaseLost: function (input, completeCallback) {
      // Another worker owns the shard now; checkpointing is not possible.
      log(`shard=${shardId} lease lost`);
      completeCallback();
    },

    shardEnded: function (input, completeCallback) {
      // The shard was split or merged: checkpoint(null) stores SHARD_END.
      log(`shard=${shardId} shard ended`);
      checkpoint(input.checkpointer, null, completeCallback);
    },

    shutdownRequested: function (input, completeCallback) {
      // The worker is stopping or handing the lease over: save progress.
      log(`shard=${shardId} shutdown requested`);
      checkpoint(input.checkpointer, null, completeCallback);
    },
  };
}

kcl(recordProcessor()).run();
