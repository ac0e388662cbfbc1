/** PRETTY_NAME from /etc/os-release (else NAME VERSION_ID), e.g. "Ubuntu 22.04.4 LTS". */
export function distroFromOsRelease(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) fields.set(m[1]!, m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1'));
  }
  const pretty = fields.get('PRETTY_NAME');
  if (pretty) return pretty.slice(0, 256);
  const name = fields.get('NAME');
  if (!name) return undefined;
  const version = fields.get('VERSION_ID');
  return (version ? `${name} ${version}` : name).slice(0, 256);
}
