// clutch's listen preload, loaded into Node app workers with NODE_OPTIONS=--require when
// the clutch master owns the port (shared mode, or kernel-steered sticky mode). The master has bound CLUTCH_PORT once and
// every app worker inherits the listening socket at fd 3 (systemd's LISTEN_FDS). Without
// this, the second worker's `server.listen(CLUTCH_PORT)` fails with EADDRINUSE; with it,
// that call listens on fd 3 instead, so N unmodified workers share the port. Any other port
// (or a path) binds as usual. Disable with `clutch start --no-node-preload`.
'use strict';

(function clutchListenPreload() {
  const env = process.env;
  const port = Number(env.CLUTCH_PORT);
  // Only the process the master started holds the socket at fd 3: a child it forks sees
  // another LISTEN_PID (and fd 3 is something else there, such as its IPC channel).
  if (!(port > 0) || env.LISTEN_FDS !== '1' || env.LISTEN_PID !== String(process.pid)) {
    return;
  }
  const fs = require('fs');
  try {
    if (!fs.fstatSync(3).isSocket()) return;
  } catch (_) {
    return;
  }
  const net = require('net');
  const listen = net.Server.prototype.listen;
  let taken = false;

  // The port asked for, with Node's own argument forms: listen(port[, host][, backlog][, cb]),
  // listen({port, host, ...}[, cb]); a handle, an fd or a path is not a port.
  function portOf(args) {
    const first = args[0];
    if (first !== null && typeof first === 'object') {
      if (first.path !== undefined || first.fd !== undefined || first.handle !== undefined ||
          first._handle !== undefined) {
        return NaN;
      }
      return Number(first.port);
    }
    if (typeof first === 'number') return first;
    if (typeof first === 'string' && /^\d+$/.test(first)) return Number(first);
    return NaN;
  }

  // Kernel-steered sticky mode (CLUTCH_STICKY=kernel): fd 3 is this worker's own slot
  // socket, and while another slot is down the master hands over what was queued on that
  // slot's socket as a handle with a clutch:connection message. Such a connection goes to
  // the server that took fd 3. The listener goes with the server's close, so the IPC
  // channel does not keep a closed server's process alive.
  function takeHandoffs(server) {
    if (env.CLUTCH_STICKY !== 'kernel' || typeof process.send !== 'function') return;
    const onMessage = (msg, socket) => {
      if (socket && msg && msg.action === 'clutch:connection') server.emit('connection', socket);
    };
    process.on('message', onMessage);
    server.once('close', () => process.removeListener('message', onMessage));
  }

  net.Server.prototype.listen = function clutchListen(...args) {
    if (taken || portOf(args) !== port) {
      return listen.apply(this, args);
    }
    taken = true;
    takeHandoffs(this);
    const cb = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
    const first = args[0];
    const options = { fd: 3 };
    if (first !== null && typeof first === 'object' && first.backlog !== undefined) {
      options.backlog = first.backlog;
    }
    return cb ? listen.call(this, options, cb) : listen.call(this, options);
  };
})();
