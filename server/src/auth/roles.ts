export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

const rank: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** viewer reads; operator also changes devices and rollouts; admin also manages tokens and keys. */
export function roleAllows(held: Role, needed: Role): boolean {
  return rank[held] >= rank[needed];
}
