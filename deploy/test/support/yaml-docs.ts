import { parseAllDocuments } from 'yaml';
import { listFiles, readRepoFile } from './paths.ts';

export interface YamlDoc {
  file: string;
  index: number;
  value: unknown;
}

/** Parses every document of a YAML file; any error or warning (duplicate keys included) throws with the file named. */
export function parseYamlFile(file: string): YamlDoc[] {
  const docs = parseAllDocuments(readRepoFile(file), { prettyErrors: true, uniqueKeys: true });
  const out: YamlDoc[] = [];
  docs.forEach((doc, index) => {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) throw new Error(`${file} document ${index}: ${problems.map((p) => p.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push({ file, index, value });
  });
  return out;
}

/** Every YAML file under deploy/. */
export function yamlFiles(): string[] {
  return listFiles('deploy', (p) => /\.ya?ml$/.test(p));
}
