/**
 * Baseline (b) of the inference benchmark: a hono endpoint that parses the same JSON request and answers a
 * response of the same shape, doing no inference. Run as its own process, like the agent.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono();
app.post('/v2/models/:name/infer', async (c) => {
  const body = (await c.req.json()) as { id?: string };
  return c.json({
    model_name: c.req.param('name'),
    model_version: '1',
    id: body.id ?? '',
    outputs: [{ name: 'output', shape: [1, 2], datatype: 'FP32', data: [0.25, 0.75] }],
  });
});
const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => {
  console.log(`trivial ready url=http://127.0.0.1:${info.port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
