// tests/grpc/client.js - a one-shot gRPC health client on the real gRPC stack (@grpc/grpc-js and
// the grpc-health-check package's service definition): the benchmark's reference point for
// `healthagg check grpc://...`, and a cross-check of the test server.
//
// Usage: node client.js HOST:PORT [SERVICE]
// Prints the status (SERVING, NOT_SERVING, ...) or the error; exit 0 iff SERVING, else 1.
'use strict';
const grpc = require('@grpc/grpc-js');
const { service } = require('grpc-health-check');

const [target, svc = ''] = process.argv.slice(2);
if (!target) {
  process.stderr.write('usage: node client.js HOST:PORT [SERVICE]\n');
  process.exit(1);
}
const Client = grpc.makeGenericClientConstructor(service, 'Health');
const client = new Client(target, grpc.credentials.createInsecure());
client.check({ service: svc }, { deadline: Date.now() + 2000 }, (err, res) => {
  client.close();
  if (err) {
    process.stdout.write(`error: ${grpc.status[err.code]} ${err.details}\n`);
    process.exit(1);
  }
  process.stdout.write(`${res.status}\n`);
  process.exit(res.status === 'SERVING' ? 0 : 1);
});
