/**
 * The footprint bench's floor for "start to ready": what any agent built on this runtime must do before it
 * can answer a request, and nothing else. Built by the bench into the same kind of single executable as the
 * agent (same Node base, same embedded ONNX Runtime and LevelDB addons extracted from the same cache), it
 * opens a LevelDB, loads the model with the CPU provider and the agent's session options, runs it once,
 * listens on node:http and prints the agent's ready line. The agent's start minus this one is the agent's
 * own cost: its JavaScript, config and identity, the update store's recovery, the inference API's framework.
 *
 *   edgefleet-floor-linux-x64 <model.onnx> <leveldb dir>
 */
import { createServer } from 'node:http';
import { Level } from 'level';
import * as ort from 'onnxruntime-node';

async function main(): Promise<void> {
  const [modelPath, dbPath] = process.argv.slice(2);
  if (!modelPath || !dbPath) throw new Error('usage: edgefleet-floor <model.onnx> <leveldb dir>');
  const db = new Level<string, unknown>(dbPath, { valueEncoding: 'json' });
  await db.open();
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  });
  const input = session.inputNames[0]!;
  const metadata = session.inputMetadata[0];
  const width = metadata?.isTensor ? Number(metadata.shape.at(-1)) : Number.NaN;
  if (!Number.isInteger(width)) throw new Error(`${modelPath}: input ${input} has no fixed last dimension`);
  await session.run({ [input]: new ort.Tensor('float32', new Float32Array(width), [1, width]) });
  const server = createServer((_req, res) => res.end('ok'));
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    process.stdout.write(`edgefleet-agent ready device=floor api=http://127.0.0.1:${port}\n`);
  });
  const stop = () => {
    server.close();
    db.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`edgefleet-floor: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
