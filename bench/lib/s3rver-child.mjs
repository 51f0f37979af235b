// The S3-compatible server of the storage bench, in a process of its own (so it never runs inside
// a timed process): s3rver 3.7 on 127.0.0.1, port chosen by the OS, storing objects in the folder
// given as argv[2], with the bucket `bkp` created. As test/helpers/s3-server.ts: path-style only
// (vhostBuckets off), access key S3RVER / secret S3RVER, and single DES routed to triple DES so
// listings of more than 1000 keys paginate on OpenSSL 3.
// Prints one JSON line {"port":N} on stdout once listening; stops on SIGTERM/SIGINT or when its
// stdin closes (the parent died).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node s3rver-child.mjs DIR\n');
  process.exit(2);
}

const crypto = require('node:crypto');
for (const name of ['createCipheriv', 'createDecipheriv']) {
  const original = crypto[name];
  crypto[name] = function (algorithm, key, iv, ...rest) {
    if (typeof algorithm === 'string' && algorithm.toLowerCase() === 'des' && Buffer.isBuffer(key) && key.length === 8) {
      return original.call(this, 'des-ede3-cbc', Buffer.concat([key, key, key]), iv, ...rest);
    }
    return original.call(this, algorithm, key, iv, ...rest);
  };
}

const S3rver = require('s3rver');
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory: dir,
  configureBuckets: [{ name: 'bkp' }],
  vhostBuckets: false,
  resetOnClose: false,
});
const address = await server.run();
process.stdout.write(`${JSON.stringify({ port: address.port, pid: process.pid })}\n`);

let closing = false;
const stop = async () => {
  if (closing) return;
  closing = true;
  await server.close().catch(() => undefined);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
