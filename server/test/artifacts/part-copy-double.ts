/**
 * A strict test double for the two multipart calls s3rver does not implement: UploadPartCopy
 * (answered NotImplemented) and AbortMultipartUpload (answered 405). It sits in the S3 client's
 * middleware stack and handles only those two commands; everything else goes to s3rver.
 *
 * UploadPartCopy is carried out for real against s3rver (a ranged GetObject of the source, then an
 * UploadPart of exactly those bytes), after checking what S3 itself would refuse: a copy source
 * that is not `bucket/key`, a range that is not `bytes=start-end` or runs past the source. Every
 * call is recorded (multipart creations, passed through, in `creates`), and a chosen part can be made to fail the way S3 fails a request (HTTP 500).
 */
import { GetObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';

export interface PartCopyDouble {
  calls: string[];
  /** keys of the multipart uploads created (passed through to s3rver) */
  creates: string[];
  /** The S3StoreOptions.configureClient hook. */
  install(client: S3Client): void;
}

export function partCopyDouble(opts: { failPart?: number } = {}): PartCopyDouble {
  const calls: string[] = [];
  const creates: string[] = [];
  const install = (client: S3Client): void => {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as Record<string, unknown>;
        if (context.commandName === 'CreateMultipartUploadCommand') {
          const out = await next(args);
          creates.push(String(input.Key));
          return out;
        }
        if (context.commandName === 'AbortMultipartUploadCommand') {
          calls.push(`abort ${String(input.Key)} ${String(input.UploadId)}`);
          return { output: { $metadata: { httpStatusCode: 204 } }, response: {} };
        }
        if (context.commandName !== 'UploadPartCopyCommand') return next(args);
        const part = input.PartNumber as number;
        calls.push(`copy-part ${part} ${String(input.CopySourceRange)}`);
        if (part === opts.failPart) {
          throw Object.assign(new Error('We encountered an internal error. Please try again.'), { name: 'InternalError', $fault: 'server', $metadata: { httpStatusCode: 500 } });
        }
        const source = decodeURI(String(input.CopySource));
        const slash = source.indexOf('/');
        const range = /^bytes=(\d+)-(\d+)$/.exec(String(input.CopySourceRange));
        if (slash <= 0 || !range) throw new Error(`double: malformed UploadPartCopy ${source} ${String(input.CopySourceRange)}`);
        const start = Number(range[1]);
        const end = Number(range[2]);
        const got = await client.send(new GetObjectCommand({ Bucket: source.slice(0, slash), Key: source.slice(slash + 1), Range: `bytes=${start}-${end}` }));
        const bytes = Buffer.concat(await (got.Body as Readable).toArray());
        if (end < start || bytes.length !== end - start + 1) throw new Error(`double: range ${start}-${end} runs past the source (${bytes.length} bytes read)`);
        const put = await client.send(
          new UploadPartCommand({ Bucket: String(input.Bucket), Key: String(input.Key), UploadId: String(input.UploadId), PartNumber: part, Body: bytes }),
        );
        return { output: { CopyPartResult: { ETag: put.ETag }, $metadata: { httpStatusCode: 200 } }, response: {} };
      },
      { step: 'initialize', name: 'flotillaPartCopyDouble' },
    );
  };
  return { calls, creates, install };
}
