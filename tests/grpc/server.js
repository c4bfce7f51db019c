// tests/grpc/server.js - the real gRPC server the grpc:// tests run against.
//
// @grpc/grpc-js with the grpc-health-check package's HealthImplementation (the reference Node
// health service), on 127.0.0.1, an ephemeral port unless --port is given. Modes:
//   health    (default) the health service; statuses set with --status and at run time
//   nohealth  a gRPC server with no service at all: every call is UNIMPLEMENTED
//   goaway    node's own HTTP/2 server that answers every request with GOAWAY (ENHANCE_YOUR_CALM)
//   hang      node's own HTTP/2 server that accepts requests and never answers them
// Prints "listening PORT" on stdout once bound. Control lines on stdin, each answered "ok" (or
// "error: ..."):
//   set SERVICE STATUS   SERVING | NOT_SERVING | UNKNOWN | SERVICE_UNKNOWN ("-" is the "" service)
// With --require-metadata KEY=VALUE, a Check call without that metadata entry is answered
// UNAUTHENTICATED (a wrong value is echoed in the message; the health service itself is untouched),
// and every call's metadata keys are printed as "metadata KEY,KEY,...".
//   clear SERVICE        forget the service: Check answers NOT_FOUND for it again
// It exits when stdin closes, so a test that dies cannot leave it behind.
//
// With --tls CERT KEY the gRPC server speaks TLS (grpcs://; ALPN h2) with that PEM certificate;
// with --client-ca CA as well it requires a client certificate signed by that CA (mTLS).
//
// Usage: node server.js [--mode M] [--port P] [--status SERVICE=STATUS]... [--require-metadata K=V]
//                       [--tls CERT KEY [--client-ca CA]]
'use strict';
const http2 = require('http2');
const readline = require('readline');

const args = process.argv.slice(2);
let mode = 'health';
let port = 0;
const initial = {};
let required = null;
let tls = null;
let clientCa = null;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const v = args[i + 1];
  if (a === '--mode') { mode = v; i++; }
  else if (a === '--port') { port = Number(v); i++; }
  else if (a === '--status') {
    const eq = v.lastIndexOf('=');
    initial[name(v.slice(0, eq))] = v.slice(eq + 1);
    i++;
  } else if (a === '--client-ca') {
    clientCa = v;
    i++;
  } else if (a === '--tls') {
    tls = [args[i + 1], args[i + 2]];
    i += 2;
  } else if (a === '--require-metadata') {
    const eq = v.indexOf('=');
    required = [v.slice(0, eq), v.slice(eq + 1)];
    i++;
  } else { fail(`unknown argument ${a}`); }
}

function name(s) { return s === '-' ? '' : s; }
function fail(msg) { process.stderr.write(`server.js: ${msg}\n`); process.exit(2); }

let health = null;
let grpcServer = null;
let rawServer = null;

function listening(p) { process.stdout.write(`listening ${p}\n`); }

if (mode === 'health' || mode === 'nohealth') {
  const grpc = require('@grpc/grpc-js');
  grpcServer = new grpc.Server();
  if (mode === 'health') {
    const { HealthImplementation } = require('grpc-health-check');
    health = new HealthImplementation(initial);
    if (required) {
      // Wrap the package's Check handler: metadata first, then the real implementation.
      const addService = grpcServer.addService.bind(grpcServer);
      grpcServer.addService = (svc, impl) => addService(svc, {
        ...impl,
        check: (call, callback) => {
          const md = call.metadata.getMap();
          process.stdout.write(`metadata ${Object.keys(md).sort().join(',')}\n`);
          if (md[required[0]] === undefined) {
            callback({ code: grpc.status.UNAUTHENTICATED, details: `missing ${required[0]}` });
            return;
          }
          if (String(md[required[0]]) !== required[1]) {
            // Echoes what it got, as careless interceptors do: the client must not show it.
            callback({ code: grpc.status.UNAUTHENTICATED,
                       details: `bad ${required[0]}: ${md[required[0]]}` });
            return;
          }
          impl.check(call, callback);
        },
      });
    }
    health.addToServer(grpcServer);
  }
  const creds = tls
    ? grpc.ServerCredentials.createSsl(clientCa ? require('fs').readFileSync(clientCa) : null,
                                       [{ cert_chain: require('fs').readFileSync(tls[0]),
                                          private_key: require('fs').readFileSync(tls[1]) }],
                                       Boolean(clientCa))
    : grpc.ServerCredentials.createInsecure();
  grpcServer.bindAsync(`127.0.0.1:${port}`, creds, (err, p) => {
    if (err) fail(`bind: ${err.message}`);
    listening(p);
  });
} else if (mode === 'goaway' || mode === 'hang') {
  rawServer = http2.createServer();
  rawServer.on('stream', (stream) => {
    if (mode === 'goaway') stream.session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0,
                                                  Buffer.from('test server says go away'));
    // hang: keep the stream open and say nothing
  });
  rawServer.on('sessionError', () => {});
  rawServer.listen(port, '127.0.0.1', () => listening(rawServer.address().port));
} else {
  fail(`unknown mode ${mode}`);
}

const statuses = new Set(['SERVING', 'NOT_SERVING', 'UNKNOWN', 'SERVICE_UNKNOWN']);
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const w = line.trim().split(/\s+/);
  if (w[0] === 'set' && w.length === 3 && health && statuses.has(w[2])) {
    health.setStatus(name(w[1]), w[2]);
  } else if (w[0] === 'clear' && w.length === 2 && health) {
    // The package has no "remove"; its status map is what Check consults.
    health.statusMap.delete(name(w[1]));
  } else {
    process.stdout.write(`error: cannot do "${line}" in mode ${mode}\n`);
    return;
  }
  process.stdout.write('ok\n');
});
rl.on('close', () => process.exit(0));
