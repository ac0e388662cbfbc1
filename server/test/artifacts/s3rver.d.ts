// The part of s3rver's (untyped) API the tests use.
declare module 's3rver' {
  import type { Server } from 'node:http';
  interface S3rverOptions {
    address?: string;
    port?: number;
    directory: string;
    silent?: boolean;
    configureBuckets?: { name: string }[];
  }
  export default class S3rver {
    constructor(opts: S3rverOptions);
    httpServer?: Server;
    run(): Promise<{ port: number; address: string }>;
    close(): Promise<void>;
  }
}
