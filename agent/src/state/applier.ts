import type { DesiredState, ReportedState } from '@flotilla/protocol';

/**
 * Turns a desired state into reality and says what is really running. The agent hands it every
 * accepted desired state (in generation order, one at a time) and publishes what it returns as
 * the reported models for that generation. A later ModelManager implements this for real; if
 * apply() throws, the generation is not marked applied and is tried again on the next connect.
 */
export interface DesiredStateApplier {
  apply(desired: DesiredState): Promise<ReportedState['models']>;
}

/** Placeholder until model installation exists: every desired model is reported as pending. */
export class PendingApplier implements DesiredStateApplier {
  async apply(desired: DesiredState): Promise<ReportedState['models']> {
    const models: ReportedState['models'] = {};
    for (const name of Object.keys(desired.models)) models[name] = { version: null, state: 'pending' };
    return models;
  }
}
