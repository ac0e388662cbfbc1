import { readFile } from 'node:fs/promises';
import { VersionMetadata } from '@flotilla/protocol';
import { usageError } from '../../cli-errors.ts';

const METADATA_KEYS = Object.keys(VersionMetadata.properties);

/**
 * Reads version metadata from a JSON file: either version metadata itself or a model card as the
 * model kit writes it (`model.json`), of which only the metadata fields are kept. The server
 * validates the result against `VersionMetadata`.
 */
export async function readMetadataFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw usageError(`cannot read metadata file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw usageError(`metadata file ${path} is not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw usageError(`metadata file ${path} must hold a JSON object`);
  const picked = Object.fromEntries(Object.entries(parsed).filter(([k, v]) => METADATA_KEYS.includes(k) && v !== undefined));
  if (!('inputs' in picked) || !('outputs' in picked)) throw usageError(`metadata file ${path} has no "inputs" and "outputs" tensor signatures`);
  return picked;
}
