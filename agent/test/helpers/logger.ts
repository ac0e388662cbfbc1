import { pino } from 'pino';

/** Tests read outcomes from the agent's API and events, not from its logs. */
export const silentLogger = pino({ level: 'silent' });
