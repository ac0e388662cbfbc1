export { HardExampleStore, type HardExampleFilter } from './hard-example-store.ts';
