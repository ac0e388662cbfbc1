#!/usr/bin/env node
// Runs the TypeScript entry point in this same process through tsx's loader (the agent ships as
// source in this repository), so SIGTERM/SIGINT reach the agent directly.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../src/main.ts', import.meta.url).href);
