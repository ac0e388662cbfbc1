// What the signed-in role may do, mirrored from the server (which enforces it on every call).

const RANK = { viewer: 0, operator: 1, admin: 2 };

export function roleAllows(held, needed) {
  return (RANK[held] ?? -1) >= RANK[needed];
}

/** Rollout commands, the role each needs and the rollout states the server accepts it in. */
export const ROLLOUT_COMMANDS = [
  { name: 'pause', label: 'Pause', role: 'operator', states: ['running', 'awaitingApproval'] },
  { name: 'resume', label: 'Resume', role: 'operator', states: ['paused'] },
  { name: 'approve', label: 'Approve next stage', role: 'operator', states: ['awaitingApproval'] },
  { name: 'cancel', label: 'Cancel', role: 'operator', states: ['running', 'awaitingApproval', 'paused'], confirm: 'Cancel this rollout? Devices already moved keep the new version.' },
  { name: 'revert', label: 'Revert', role: 'operator', states: ['running', 'awaitingApproval', 'paused', 'completed', 'cancelled'], confirm: 'Revert this rollout? Every device it moved goes back to its previous version.' },
];

export const FINAL_STATES = new Set(['completed', 'cancelled', 'reverted', 'preempted']);
