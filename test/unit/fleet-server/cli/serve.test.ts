/**
 * `edgefleet serve`: config passed to the fleet server, the started line, and shutdown on a signal.
 * The first tests record what serve hands a stand-in server; the last starts the real one on ephemeral ports.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emptyDir, runCli } from './harness.js';

function standIn(options: { closeFails?: boolean } = {}) {
  const configs: Record<string, unknown>[] = [];
  let closed = 0;
  const signals: ((signal: string) => void)[] = [];
  return {
    configs,
    signals,
    closed: () => closed,
    io: {
      startFleetServer: async (config: Record<string, unknown>) => {
        configs.push(config);
        return {
          httpUrl: 'http://127.0.0.1:18080',
          mqttUrl: 'mqtt://127.0.0.1:11883',
          config: { dataDir: String(config['dataDir']) },
          close: async () => {
            closed++;
            if (options.closeFails) throw new Error('database is locked');
          },
        };
      },
      onShutdownSignal: (handler: (signal: string) => void) => {
        signals.push(handler);
      },
    },
  };
}

/** An injectable `exit` and a promise of its code, bounded so a hang fails saying what never happened. */
function exitWatch(timeoutMs = 10_000) {
  let exit!: (code: number) => void;
  const exited = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`serve never exited within ${timeoutMs} ms of the signal`)),
      timeoutMs,
    );
    exit = (code) => {
      clearTimeout(timer);
      resolve(code);
    };
  });
  return { exit, exited };
}

describe('edgefleet serve', () => {
  it('passes the given flags, resolves paths against the working directory, and keeps running', async () => {
    const server = standIn();
    const cwd = emptyDir();
    const run = await runCli(
      [
        'serve',
        '--data-dir',
        'fleet-data',
        '--http-port',
        '0',
        '--mqtt-port',
        '1884',
        '--http-host',
        '127.0.0.1',
        '--profiles-dir',
        'profiles',
        '--log-level',
        'warn',
      ],
      { cwd, io: server.io },
    );
    expect(run.code).toBe(0);
    expect(run.exits).toEqual([]);
    expect(server.configs).toEqual([
      {
        dataDir: join(cwd, 'fleet-data'),
        httpPort: 0,
        mqttPort: 1884,
        httpHost: '127.0.0.1',
        profilesDir: join(cwd, 'profiles'),
        logLevel: 'warn',
      },
    ]);
    expect(run.stdout).toBe(
      `edgefleet fleet server: http=http://127.0.0.1:18080 mqtt=mqtt://127.0.0.1:11883 data=${join(cwd, 'fleet-data')}\n`,
    );
    expect(server.signals).toHaveLength(1);
  });

  it('defaults to ./data and leaves other defaults to the server config', async () => {
    const server = standIn();
    const cwd = emptyDir();
    await runCli(['serve'], { cwd, io: server.io });
    expect(server.configs).toEqual([{ dataDir: join(cwd, 'data') }]);
  });

  it('closes the server on a shutdown signal and exits 0', async () => {
    const server = standIn();
    const { exit, exited } = exitWatch();
    const run = await runCli(['serve'], { io: { ...server.io, exit } });
    expect(run.code).toBe(0);
    server.signals[0]!('SIGTERM');
    expect(await exited).toBe(0);
    expect(server.closed()).toBe(1);
  });

  it('exits 1 when closing fails, saying why', async () => {
    const server = standIn({ closeFails: true });
    let stderr = '';
    const { exit, exited } = exitWatch();
    await runCli(['serve'], {
      io: {
        ...server.io,
        exit,
        stderr: (t) => {
          stderr += t;
        },
      },
    });
    server.signals[0]!('SIGINT');
    expect(await exited).toBe(1);
    expect(stderr).toContain('edgefleet: closing failed: database is locked');
  });

  it('a server that fails to start is exit 1 with its message', async () => {
    const run = await runCli(['serve'], {
      io: {
        startFleetServer: async () => {
          throw new Error('listen EADDRINUSE: address already in use 0.0.0.0:8080');
        },
      },
    });
    expect(run).toMatchObject({ code: 1, exits: [1] });
    expect(run.stderr).toBe('edgefleet: listen EADDRINUSE: address already in use 0.0.0.0:8080\n');
  });

  it('starts the real fleet server on ephemeral ports and stops it on a signal', async () => {
    const cwd = emptyDir();
    const signals: ((signal: string) => void)[] = [];
    const { exit, exited } = exitWatch(30_000);
    const run = await runCli(
      [
        'serve',
        '--http-port',
        '0',
        '--mqtt-port',
        '0',
        '--http-host',
        '127.0.0.1',
        '--mqtt-host',
        '127.0.0.1',
        '--log-level',
        'silent',
      ],
      {
        cwd,
        io: {
          startFleetServer: async (config) => {
            const { startFleetServer } = await import('../../../../fleet-server/main.js');
            return startFleetServer(config);
          },
          onShutdownSignal: (handler) => signals.push(handler),
          exit,
        },
      },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const match =
      /^edgefleet fleet server: http=(http:\/\/127\.0\.0\.1:\d+) mqtt=mqtt:\/\/127\.0\.0\.1:\d+ data=(.+)\n$/.exec(
        run.stdout,
      );
    expect(match, `unexpected start line: ${run.stdout}`).not.toBeNull();
    expect(match![2]).toBe(join(cwd, 'data'));
    const health = await fetch(`${match![1]}/api/v1/health`);
    expect(await health.json()).toMatchObject({ ok: true });
    // A command run next to the data dir authenticates with the admin token the server wrote there.
    const list = await runCli(['--url', match![1]!, 'devices', 'list', '--json'], { cwd });
    expect(list.stderr).toBe('');
    expect(JSON.parse(list.stdout)).toEqual({ devices: [] });

    signals[0]!('SIGINT');
    expect(await exited).toBe(0);
    await expect(fetch(`${match![1]}/api/v1/health`)).rejects.toThrow();
  });
});
