import { FlotillaError } from '@flotilla/protocol';
import { parse as parseCron, validate as validateCron } from 'node-cron';

/**
 * Maintenance windows: a window opens at every time a cron expression names, in an IANA time zone,
 * and stays open `durationSec`. node-cron parses the expression (it only computes next runs against
 * the real clock), and the next-open search below works against any instant, so the engine and its
 * tests can use an injected clock.
 *
 * Local times that do not exist (the hour skipped when clocks go forward) never open a window;
 * local times that happen twice (the hour repeated when clocks go back) open it at the first one.
 */

interface CronFields {
  seconds: number[];
  minutes: number[];
  hours: number[];
  days: Set<number>;
  lastDay: boolean;
  months: Set<number>;
  weekdays: Set<number>;
  /** Vixie cron: when both day fields are restricted, a day matching either one counts. */
  dayOr: boolean;
}

export interface WindowSpec {
  cron: string;
  durationSec: number;
  timeZone?: string;
}

export interface OpenWindow {
  start: number;
  end: number;
}

const SEARCH_DAYS = 400;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new FlotillaError('FLT_ROLLOUT_WINDOW_INVALID', `unknown time zone ${JSON.stringify(timeZone)}`);
    }
    formatters.set(timeZone, f);
  }
  return f;
}

interface Wall {
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  s: number;
}

function wallOf(instant: number, timeZone: string): Wall {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(instant))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return { y: parts.year!, mo: parts.month!, d: parts.day!, h: parts.hour!, mi: parts.minute!, s: parts.second! };
}

/** Offset of the zone from UTC at an instant, in ms (whole seconds). */
function offsetAt(instant: number, timeZone: string): number {
  const w = wallOf(instant, timeZone);
  const asUtc = Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s);
  return asUtc - Math.floor(instant / 1000) * 1000;
}

/** The instants at which a local wall time occurs in the zone: none (skipped), one, or two (repeated). */
function instantsOf(y: number, mo: number, d: number, h: number, mi: number, s: number, timeZone: string): number[] {
  const asUtc = Date.UTC(y, mo - 1, d, h, mi, s);
  const out = new Set<number>();
  // Offsets half a day either side cover the one transition a wall time can straddle.
  for (const probe of [asUtc - 14 * 3_600_000, asUtc + 14 * 3_600_000]) {
    const candidate = asUtc - offsetAt(probe, timeZone);
    const w = wallOf(candidate, timeZone);
    if (w.y === y && w.mo === mo && w.d === d && w.h === h && w.mi === mi && w.s === s) out.add(candidate);
  }
  return [...out].sort((a, b) => a - b);
}

function fieldsOf(expression: string): CronFields {
  if (!validateCron(expression)) throw new FlotillaError('FLT_ROLLOUT_WINDOW_INVALID', `cron expression ${JSON.stringify(expression)} does not parse`);
  const f = parseCron(expression);
  const numbers = (values: Array<number | string>, what: string): number[] =>
    values.map((v) => {
      if (typeof v !== 'number') throw new FlotillaError('FLT_ROLLOUT_WINDOW_INVALID', `cron ${what} value ${JSON.stringify(v)} is not supported in maintenance windows`);
      return v;
    });
  const lastDay = f.dayOfMonth.includes('L');
  const days = numbers(f.dayOfMonth.filter((v) => v !== 'L'), 'day-of-month');
  const weekdays = numbers(f.dayOfWeek, 'day-of-week').map((v) => v % 7);
  const domRestricted = lastDay || days.length < 31;
  const dowRestricted = new Set(weekdays).size < 7;
  return {
    seconds: [...f.second].sort((a, b) => a - b),
    minutes: [...f.minute].sort((a, b) => a - b),
    hours: [...f.hour].sort((a, b) => a - b),
    days: new Set(days),
    lastDay,
    months: new Set(f.month),
    weekdays: new Set(weekdays),
    dayOr: domRestricted && dowRestricted,
  };
}

function dayMatches(f: CronFields, y: number, mo: number, d: number): boolean {
  if (!f.months.has(mo)) return false;
  const lastOfMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  const domOk = f.days.has(d) || (f.lastDay && d === lastOfMonth);
  const dowOk = f.weekdays.has(new Date(Date.UTC(y, mo - 1, d)).getUTCDay());
  return f.dayOr ? domOk || dowOk : domOk && dowOk;
}

/** A compiled window: cron fields plus zone and duration, with next-open and is-open queries. */
export class MaintenanceWindowSchedule {
  readonly spec: Required<WindowSpec>;
  readonly #fields: CronFields;

  constructor(spec: WindowSpec) {
    this.spec = { cron: spec.cron, durationSec: spec.durationSec, timeZone: spec.timeZone ?? 'UTC' };
    this.#fields = fieldsOf(spec.cron);
    formatter(this.spec.timeZone);
  }

  /** Validates a window: parses, known zone, and it opens at least once within a year of `from`. */
  static check(spec: WindowSpec, from: number): MaintenanceWindowSchedule {
    const w = new MaintenanceWindowSchedule(spec);
    if (w.nextOpenAfter(from) === null) throw new FlotillaError('FLT_ROLLOUT_WINDOW_INVALID', `maintenance window ${JSON.stringify(spec.cron)} never opens`);
    return w;
  }

  /** The first time strictly after `after` at which the window opens, or null within the search horizon. */
  nextOpenAfter(after: number): number | null {
    const f = this.#fields;
    const tz = this.spec.timeZone;
    const start = wallOf(after, tz);
    // Walk local calendar days; the first day also considers an hour either side for DST shifts.
    for (let i = 0; i < SEARCH_DAYS; i++) {
      const day = new Date(Date.UTC(start.y, start.mo - 1, start.d + i));
      const y = day.getUTCFullYear();
      const mo = day.getUTCMonth() + 1;
      const d = day.getUTCDate();
      if (!dayMatches(f, y, mo, d)) continue;
      for (const h of f.hours) {
        if (i === 0 && h < start.h - 2) continue;
        for (const mi of f.minutes) {
          for (const s of f.seconds) {
            // A repeated wall time opens only at its first occurrence.
            const first = instantsOf(y, mo, d, h, mi, s, tz)[0];
            if (first !== undefined && first > after) return first;
          }
        }
      }
    }
    return null;
  }

  /** The window open at `at`, if any. */
  openAt(at: number): OpenWindow | null {
    const duration = this.spec.durationSec * 1000;
    const start = this.nextOpenAfter(at - duration);
    return start !== null && start <= at ? { start, end: start + duration } : null;
  }

  /** The window open at `at`, or else the next one to open. */
  currentOrNext(at: number): OpenWindow | null {
    const open = this.openAt(at);
    if (open) return open;
    const start = this.nextOpenAfter(at);
    return start === null ? null : { start, end: start + this.spec.durationSec * 1000 };
  }
}
