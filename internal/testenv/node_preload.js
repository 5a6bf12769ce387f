// Loaded with `node -r` in front of kinesalite and dynalite. Their request
// handlers rethrow a client's aborted request ("aborted", ECONNRESET) as an
// uncaught exception, which kills the whole emulator when a test cancels an
// in-flight call or SIGKILLs a daemon. A real service survives a client that
// hangs up, so the emulators should too. Every other uncaught error still
// ends the process, as without this file.
'use strict';
process.on('uncaughtException', (err) => {
  const msg = err && err.message;
  if (err && (err.code === 'ECONNRESET' || err.code === 'EPIPE' || msg === 'aborted')) {
    process.stderr.write('emulator: ignored client disconnect: ' + (msg || err.code) + '\n');
    return;
  }
  process.stderr.write('emulator: uncaught exception: ' + (err && err.stack ? err.stack : String(err)) + '\n');
  process.exit(1);
});
