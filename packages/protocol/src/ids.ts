/**
 * A device id is also its MQTT client id and one topic segment, so it must never contain the
 * MQTT wildcard characters `+` and `#`, the level separator `/`, or a leading `$`.
 */
export const DEVICE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const deviceIdRe = new RegExp(DEVICE_ID_PATTERN);

export function isValidDeviceId(id: unknown): id is string {
  return typeof id === 'string' && deviceIdRe.test(id);
}

/** Label keys and values: short, printable, no selector metacharacters. */
export const LABEL_KEY_PATTERN = '^[a-z0-9]([a-z0-9._/-]{0,62})$';
export const LABEL_VALUE_PATTERN = '^[A-Za-z0-9._-]{0,63}$';
