/** The `url` field of a pino JSON log line whose message is `msg`, if this line is one. */
export function urlFromLogLine(line: string, msg: string): string | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const entry = JSON.parse(line) as { msg?: unknown; url?: unknown };
    return entry.msg === msg && typeof entry.url === 'string' ? entry.url : undefined;
  } catch {
    return undefined;
  }
}
