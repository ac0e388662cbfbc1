import type { DeviceView } from '@flotilla/protocol';
import { bytes, fields, when } from '../../output.ts';

export function labelsText(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

/** `digits@1.2.0(healthy)`, what the device says it runs. */
export function reportedModelsText(d: DeviceView): string {
  const models = Object.entries(d.reported?.models ?? {});
  return models.length === 0 ? '-' : models.map(([name, m]) => `${name}@${m.version ?? 'none'}(${m.state})`).join(',');
}

export function presenceText(d: DeviceView): string {
  return d.online ? 'online' : 'offline';
}

export function renderDevice(d: DeviceView): string[] {
  const inv = d.inventory;
  const entries: Array<[string, string]> = [
    ['device', d.id],
    ['status', `${d.status} since ${when(d.statusChangedAt)}`],
    ['presence', `${presenceText(d)}, last seen ${when(d.lastSeenAt)}`],
    ['labels', labelsText(d.labels)],
  ];
  if (inv) {
    entries.push(
      ['arch', inv.arch],
      ['os', `${inv.os.platform} ${inv.os.release}${inv.os.distro ? ` (${inv.os.distro})` : ''}`],
      ['cpu', `${inv.cpu.model}, ${inv.cpu.cores} cores`],
      ['memory', bytes(inv.memoryBytes)],
      ['disk', `${bytes(inv.disk.freeBytes)} free of ${bytes(inv.disk.totalBytes)} at ${inv.disk.path}`],
      ['gpu', inv.gpu ? `${inv.gpu.name}, compute capability ${inv.gpu.computeCapability}` : 'none'],
      ['providers', inv.executionProviders.join(', ') || '-'],
    );
    if (inv.cudaVersion) entries.push(['cuda', inv.cudaVersion]);
    if (inv.tensorrtVersion) entries.push(['tensorrt', inv.tensorrtVersion]);
    if (inv.jetpackVersion) entries.push(['jetpack', inv.jetpackVersion]);
    entries.push(['agent', `${inv.agentVersion}${inv.onnxruntimeVersion ? `, onnxruntime ${inv.onnxruntimeVersion}` : ''}`]);
  } else {
    entries.push(['inventory', 'not reported yet']);
  }
  const desired = d.desired ? Object.entries(d.desired.models).map(([n, m]) => `${n}@${m.version}`).join(',') || '-' : '-';
  entries.push(
    ['desired', d.desired ? `generation ${d.desired.generation}: ${desired}` : '-'],
    ['reported', d.reported ? `generation ${d.reported.appliedGeneration} at ${when(d.reportedAt)}: ${reportedModelsText(d)}` : '-'],
    ['in sync', d.inSync ? 'yes' : 'no'],
  );
  return fields(entries);
}
