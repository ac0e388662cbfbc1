import type { EscalationPolicy, EscalationRoute, ModelEscalation, PoolView } from '@flotilla/protocol';

/** Most models one desired state carries escalation for (the schema's bound). */
export const MAX_ESCALATION_MODELS = 64;
/** Most pools offered to a device per model. */
export const MAX_ROUTES = 16;

/**
 * The pools a device should send a model's hard requests to, best first: pools in the device's
 * region (its `region` label) before the others, then higher weight, then name for a stable order.
 * `cloudModel` is the name the pools know the model by.
 */
export function routesFor(pools: readonly PoolView[], cloudModel: string, deviceRegion: string | undefined): EscalationRoute[] {
  return pools
    .filter((p) => p.models.includes(cloudModel) && p.endpoints.length > 0)
    .map((p) => ({ p, local: deviceRegion !== undefined && p.region === deviceRegion ? 0 : 1 }))
    .sort((a, b) => a.local - b.local || b.p.weight - a.p.weight || (a.p.name < b.p.name ? -1 : a.p.name > b.p.name ? 1 : 0))
    .slice(0, MAX_ROUTES)
    .map(({ p }) => ({ pool: p.name, region: p.region, endpoints: [...p.endpoints] }));
}

/** A device's whole escalation section: every model with a policy, with its routes for that device. */
export function escalationFor(policies: ReadonlyArray<{ model: string; policy: EscalationPolicy }>, pools: readonly PoolView[], deviceRegion: string | undefined): Record<string, ModelEscalation> {
  const out: Record<string, ModelEscalation> = {};
  for (const { model, policy } of policies.slice(0, MAX_ESCALATION_MODELS)) {
    out[model] = { policy, routes: routesFor(pools, policy.cloudModel ?? model, deviceRegion) };
  }
  return out;
}
