import { isValidDeviceId } from '@flotilla/protocol';

/**
 * Turns a hostname into a valid device id: characters outside the id alphabet become '-',
 * leading punctuation is dropped, the result is cut to 64 characters.
 */
export function deviceIdFromHostname(hostname: string): string {
  const cleaned = hostname
    .trim()
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64);
  return isValidDeviceId(cleaned) ? cleaned : 'device';
}
