/**
 * Memory of processes this bench did not start through node's fork (mosquitto), read from /proc.
 * Linux only, which is where the bench runs.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** VmRSS of a process in bytes, from /proc/<pid>/status. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb[1]) * 1024;
}

/**
 * The pid of the child of this process whose command name is `comm` (mosquitto is spawned by the
 * test helper, which does not hand out its pid). The youngest one when there are several.
 */
export function childPidByName(comm: string, parent = process.pid): number {
  let best: { pid: number; start: number } | null = null;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // it exited while we looked
    }
    // Fields after the parenthesised command: state ppid ... (starttime is field 22).
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    if (stat.slice(open + 1, close) !== comm) continue;
    const rest = stat.slice(close + 2).split(' ');
    if (Number(rest[1]) !== parent) continue;
    const start = Number(rest[19]);
    if (!best || start > best.start) best = { pid: Number(entry), start };
  }
  if (!best) throw new Error(`no child process named ${comm}`);
  return best.pid;
}

