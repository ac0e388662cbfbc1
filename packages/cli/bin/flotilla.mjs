#!/usr/bin/env node
// The CLI ships as TypeScript source: register tsx's loader, then run the entry point.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
