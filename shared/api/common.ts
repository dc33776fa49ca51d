/** Names several parts of the wire contract share (kept apart so the area files never import in a cycle). */

/** The names an alias may have: `production` (what devices should run), `candidate` (set by training). */
export const ALIASES = ['production', 'candidate'] as const;
export type Alias = (typeof ALIASES)[number];

/** Operator roles, least first: each may do what the ones before it may. */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];
