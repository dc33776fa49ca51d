/**
 * Which variant of a model version each targeted device gets: the first one its firmware profile accepts, in
 * the profile's preference order, that the version has. A rollout that would leave a targeted device without
 * one is refused before anything is stored or sent, naming the devices. Pure.
 */
import { ConflictError } from '../../shared/errors.js';
import type { ModelRef } from '../../shared/protocol/messages.js';

/** What a device whose profile the fleet does not know (any more) accepts: the schema's default. */
export const FALLBACK_ACCEPTS: readonly string[] = ['default'];

/** Devices named in a refusal before it says "and N more". */
const NAMED_DEVICES = 20;

/** The first variant in `accepts` (preference order) that `offered` has, or null. */
export function chooseVariant(offered: readonly string[], accepts: readonly string[]): string | null {
  return accepts.find((v) => offered.includes(v)) ?? null;
}

export interface Assignment {
  /** Device id → the variant it gets. */
  variants: Map<string, string>;
  /** Devices no variant fits, with their profile, in device-id order. */
  unfit: { deviceId: string; profile: string }[];
}

/**
 * Assign a variant to each device. `targets` maps device id → profile id; `acceptsOf` gives a profile's
 * accepted variants (undefined for a profile the fleet does not know: FALLBACK_ACCEPTS).
 */
export function assignVariants(
  targets: ReadonlyMap<string, string>,
  offered: readonly string[],
  acceptsOf: (profile: string) => readonly string[] | undefined,
): Assignment {
  const variants = new Map<string, string>();
  const unfit: Assignment['unfit'] = [];
  for (const [deviceId, profile] of [...targets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const chosen = chooseVariant(offered, acceptsOf(profile) ?? FALLBACK_ACCEPTS);
    if (chosen === null) unfit.push({ deviceId, profile });
    else variants.set(deviceId, chosen);
  }
  return { variants, unfit };
}

/** Why a device gets no variant, in one sentence (the late-joiner's skip reason). */
export function noVariantReason(
  model: ModelRef,
  offered: readonly string[],
  profile: string,
  accepts: readonly string[] | undefined,
): string {
  return `${model.name}@${model.version} offers ${offered.join(', ')}; profile ${profile} accepts ${describeAccepts(accepts)}`;
}

/**
 * The refusal of a rollout some targets cannot run: names the devices (the first NAMED_DEVICES, then how many
 * more) with their profiles, what each of those profiles accepts, and what the version offers.
 */
export function noVariantError(
  model: ModelRef,
  offered: readonly string[],
  unfit: Assignment['unfit'],
  acceptsOf: (profile: string) => readonly string[] | undefined,
): ConflictError {
  const named = unfit
    .slice(0, NAMED_DEVICES)
    .map((d) => `${d.deviceId} (${d.profile})`)
    .join(', ');
  const more = unfit.length > NAMED_DEVICES ? ` and ${unfit.length - NAMED_DEVICES} more` : '';
  const profiles = [...new Set(unfit.map((d) => d.profile))]
    .sort()
    .map((p) => `${p} accepts ${describeAccepts(acceptsOf(p))}`)
    .join('; ');
  return new ConflictError(
    `${model.name}@${model.version} has no variant for ${unfit.length} targeted device(s): ${named}${more}. ` +
      `The version offers ${offered.join(', ')}; ${profiles}. ` +
      'Add a variant they accept to the version, or leave them out of the targets.',
    'no_variant_for_devices',
  );
}

function describeAccepts(accepts: readonly string[] | undefined): string {
  return accepts ? accepts.join(', ') : `${FALLBACK_ACCEPTS.join(', ')} (profile unknown to the fleet)`;
}
