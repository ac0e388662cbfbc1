import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  CHANNEL_MESSAGES,
  DOWN_CHANNELS,
  ERROR_CODES,
  ERRORS,
  MAX_JSON_DEPTH,
  MAX_MQTT_PAYLOAD_BYTES,
  PROTOCOL_VERSION,
  StatusMessage,
  TOPIC_ROOT,
  UP_CHANNELS,
  type Channel,
} from '../src/index.ts';

const doc = readFileSync(fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url)), 'utf8');
const CHANNELS: readonly Channel[] = [...UP_CHANNELS, ...DOWN_CHANNELS];

/** Text from a heading to the next heading of the same or a higher level. */
function section(heading: string): string {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l === heading);
  if (start < 0) return '';
  const level = heading.match(/^#+/)![0].length;
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && l.match(/^#+/)![0].length <= level);
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

/** Table rows of a section, as cells. */
function rows(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| ---'))
    .map((l) => l.slice(2, -2).split(' | '));
}

type Schema = {
  properties?: Record<string, Schema>;
  patternProperties?: Record<string, Schema>;
  items?: Schema;
  anyOf?: Schema[];
};

/** Every property name a schema declares, at any depth (map values, list items and variants included). */
function fieldNames(schema: Schema, out = new Set<string>()): Set<string> {
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    out.add(name);
    fieldNames(child, out);
  }
  for (const child of Object.values(schema.patternProperties ?? {})) fieldNames(child, out);
  if (schema.items) fieldNames(schema.items, out);
  for (const variant of schema.anyOf ?? []) fieldNames(variant, out);
  return out;
}

/**
 * Field names a channel's section documents: the code spans of each table row's first cell, split
 * into path segments (`escalation.<name>.routes[].pool` → escalation, routes, pool). Rows marked
 * "extra (open object)" name fields outside the schema on purpose and are left out.
 */
function documentedFields(text: string): Set<string> {
  const out = new Set<string>();
  for (const cells of rows(text)) {
    if (cells.some((c) => c.includes('extra (open object)'))) continue;
    for (const span of cells[0]!.match(/`[^`]+`/g) ?? []) {
      for (const seg of span.slice(1, -1).split('.')) {
        const name = seg.replace(/\[\]$/, '');
        if (name !== '' && !name.startsWith('<')) out.add(name);
      }
    }
  }
  return out;
}

describe('docs/protocol.md', () => {
  it('lists every channel in the topic table with its direction and message type', () => {
    const table = new Map(rows(section('## Topics')).map((cells) => [cells[0]!, cells]));
    for (const channel of CHANNELS) {
      const row = table.get(`\`${channel}\``);
      expect(row, `no row for ${channel}`).toBeDefined();
      expect(row![1]).toBe((UP_CHANNELS as readonly string[]).includes(channel) ? 'up' : 'down');
      expect(row![5]).toBe(`\`${CHANNEL_MESSAGES[channel].type}\``);
    }
  });

  it('has a section for every channel, naming its message type, and none for a channel that does not exist', () => {
    for (const channel of CHANNELS) {
      const text = section(`### \`${channel}\``);
      expect(text, `no section for ${channel}`).not.toBe('');
      expect(text).toContain(`type \`${CHANNEL_MESSAGES[channel].type}\``);
    }
    const documented = [...section('## Channels and bodies').matchAll(/^### `([^`]+)`$/gm)].map((m) => m[1]);
    expect(documented.filter((c) => !(CHANNELS as readonly string[]).includes(c!))).toEqual([]);
  });

  it('documents every body field of every message, and no field the schemas do not have', () => {
    for (const channel of CHANNELS) {
      const body = (CHANNEL_MESSAGES[channel].schema as unknown as Schema).properties!.body!;
      const inSchema = fieldNames(body);
      const inDoc = documentedFields(section(`### \`${channel}\``));
      expect([...inSchema].filter((f) => !inDoc.has(f)), `${channel}: fields missing from the doc`).toEqual([]);
      expect([...inDoc].filter((f) => !inSchema.has(f)), `${channel}: documented fields the schema lacks`).toEqual([]);
    }
  });

  it('documents the envelope fields, the version and the limits as the package defines them', () => {
    const envelope = documentedFields(section('## The envelope'));
    for (const field of Object.keys((StatusMessage as unknown as Schema).properties!)) expect(envelope.has(field), field).toBe(true);
    expect(doc).toContain(`\`${TOPIC_ROOT}\``);
    expect(doc).toContain(`"v": ${PROTOCOL_VERSION}`);
    expect(doc).toContain(`**${MAX_MQTT_PAYLOAD_BYTES / 1024} KiB**`);
    expect(doc).toContain(`**${MAX_JSON_DEPTH}**`);
  });

  it('names every payload error code, and only codes that exist', () => {
    const msgCodes = ERROR_CODES.filter((c) => c.startsWith('FLT_MSG_'));
    expect(msgCodes.filter((c) => !doc.includes(`\`${c}\``))).toEqual([]);
    const mentioned = [...doc.matchAll(/`(FLT_[A-Z0-9_]+)`/g)].map((m) => m[1]!);
    expect(mentioned.filter((c) => !(c in ERRORS))).toEqual([]);
  });
});
