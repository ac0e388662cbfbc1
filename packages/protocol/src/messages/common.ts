import { Type } from 'typebox';
import { LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN } from '../ids.ts';

export const strict = { additionalProperties: false } as const;

/** Message id: unique per sender, used for deduplication and acknowledgement. */
export const MessageId = Type.String({ minLength: 8, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });

export const Name = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });
export const Version = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9.+_-]*$' });
export const Timestamp = Type.Integer({ minimum: 0, maximum: 8.64e15 });
export const Generation = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

export const Labels = Type.Record(
  Type.String({ pattern: LABEL_KEY_PATTERN }),
  Type.String({ pattern: LABEL_VALUE_PATTERN }),
  { maxProperties: 64, additionalProperties: false },
);
