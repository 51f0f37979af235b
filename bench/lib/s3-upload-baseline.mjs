// The S3 baseline of the storage bench: a plain `@aws-sdk/lib-storage` Upload of one file, with
// the settings bkp's S3 storage uses (src/storage/s3/s3-storage.ts: 16 MiB parts, 2 in flight,
// requestChecksumCalculation/responseChecksumValidation WHEN_REQUIRED, path-style with an
// endpoint, 3 attempts) and nothing else: no hashing, no manifest, no lock, no plan.
//   node s3-upload-baseline.mjs FILE ENDPOINT BUCKET KEY
// Credentials come from the AWS chain (the bench sets AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
import { createReadStream } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

const [file, endpoint, bucket, key] = process.argv.slice(2);
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const client = new S3Client({
  region: 'us-east-1',
  endpoint,
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  maxAttempts: 3,
});
const upload = new Upload({
  client,
  params: { Bucket: bucket, Key: key, Body: createReadStream(file) },
  partSize: 16 * 1024 * 1024,
  queueSize: 2,
});
await upload.done();
client.destroy();
