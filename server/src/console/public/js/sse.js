/* global TextDecoder */
// Server-sent events read from a fetch body, since EventSource cannot carry the Bearer header.

/**
 * Splits complete frames off the front of `buffer`. Returns the events found (comments such as
 * heartbeats are dropped) and what is left for the next chunk.
 */
export function parseFrames(buffer) {
  const events = [];
  const normalized = buffer.replace(/\r\n?/g, '\n');
  let rest = normalized;
  let cut;
  while ((cut = rest.indexOf('\n\n')) >= 0) {
    const block = rest.slice(0, cut);
    rest = rest.slice(cut + 2);
    let event = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0) events.push({ event, data: data.join('\n') });
  }
  return { events, rest };
}

/** Calls `onEvent({ event, data })` for every frame until the stream ends or `signal` aborts. */
export async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const parsed = parseFrames(buffer);
      buffer = parsed.rest;
      for (const e of parsed.events) onEvent(e);
    }
  } finally {
    reader.releaseLock();
  }
}
