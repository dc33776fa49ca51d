/** The states a successful update reports, in order (shared by the agent's updater suites). */
import type { UpdateState } from '../../shared/protocol/messages.js';

export const HAPPY_PATH: readonly UpdateState[] = [
  'received',
  'downloading',
  'verifying',
  'staged',
  'loading',
  'activating',
  'active',
];
