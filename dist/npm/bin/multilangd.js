#!/usr/bin/env node
'use strict';
// Runs the multilangd binary for this platform with the same arguments,
// stdin/stdout/stderr and exit status. Signals are forwarded, so SIGTERM to
// this launcher stops the daemon gracefully.

const { spawn } = require('child_process');
const { binaryPath } = require('..');

const child = spawn(binaryPath, process.argv.slice(2), { stdio: 'inherit' });
const forwarded = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
for (const sig of forwarded) {
  process.on(sig, () => {
    child.kill(sig);
  });
}
child.on('error', (err) => {
  console.error(`multilangd: cannot run ${binaryPath}: ${err.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) {
    for (const sig of forwarded) {
      process.removeAllListeners(sig);
    }
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code === null ? 1 : code);
});
