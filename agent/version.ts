/**
 * The agent's `--version` line: agent version, Node version, ONNX Runtime version and target, e.g.
 * `edgefleet-agent 0.1.0 (node v20.20.2, onnxruntime 1.30.0, linux-x64)`.
 * It must not load ONNX Runtime: under qemu-user (cross-built arm64 executables) merely loading ORT's native
 * library crashes in its CPU probe, and `--version` is how such a build is checked. onnxruntime-node ships
 * its native library in lockstep with its package version, so the package version is the runtime's.
 */
import ortPackage from 'onnxruntime-node/package.json' with { type: 'json' };
import { AGENT_VERSION } from './config.js';

/** ONNX Runtime version the agent is built with (read without loading the native library). */
export const ORT_VERSION: string = ortPackage.version;

/**
 * `<platform>-<arch>` of the running process: from source, the host; in a single executable, the target it
 * was built for (the embedded Node binary is that target's).
 */
export function agentTarget(): string {
  return `${process.platform}-${process.arch}`;
}

export function versionLine(): string {
  return `edgefleet-agent ${AGENT_VERSION} (node ${process.version}, onnxruntime ${ORT_VERSION}, ${agentTarget()})`;
}
