import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.ts';

/** Flotilla's own images: ghcr.io/flotilla/<name>:<version>[-variant], one Dockerfile per name. */
export const IMAGE_REGISTRY = 'ghcr.io/flotilla/';

export interface FlotillaImage {
  name: string;
  tag: string;
  dockerfile: string;
}

export function parseFlotillaImage(image: string): FlotillaImage | undefined {
  if (!image.startsWith(IMAGE_REGISTRY)) return undefined;
  const m = /^([a-z0-9-]+):([A-Za-z0-9._-]+)$/.exec(image.slice(IMAGE_REGISTRY.length));
  if (!m) throw new Error(`image ${image} is not <registry>/<name>:<tag>`);
  return { name: m[1]!, tag: m[2]!, dockerfile: `deploy/docker/${m[1]}.Dockerfile` };
}

export function dockerfileExists(img: FlotillaImage): boolean {
  return existsSync(join(REPO_ROOT, img.dockerfile));
}

/** Which component's code runs in an image. */
export function componentOf(imageName: string): 'server' | 'agent' | 'pool' {
  if (imageName === 'server') return 'server';
  if (imageName === 'agent' || imageName === 'agent-jetson') return 'agent';
  if (imageName === 'pool') return 'pool';
  throw new Error(`unknown Flotilla image ${imageName}`);
}
