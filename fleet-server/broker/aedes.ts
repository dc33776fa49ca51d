/**
 * The embedded MQTT broker: aedes on a TCP server, with every authentication and authorization decision
 * delegated to `AccessPolicy`. Refusals are counted by kind and logged; a refused publish closes the
 * offending connection (aedes' behaviour), a refused subscription is granted as failure (0x80).
 */
import { createServer, type Server } from 'node:net';
import { Aedes, type Client } from 'aedes';
import type { Logger } from 'pino';
import type { AccessPolicy, Identity } from './access.js';

export interface BrokerCounters {
  connectionsRefused: number;
  publishesRefused: number;
  subscriptionsRefused: number;
}

export interface EmbeddedBroker {
  port: number;
  counters: BrokerCounters;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(options: {
  host: string;
  port: number;
  policy: AccessPolicy;
  log: Logger;
}): Promise<EmbeddedBroker> {
  const { policy, log } = options;
  const counters: BrokerCounters = { connectionsRefused: 0, publishesRefused: 0, subscriptionsRefused: 0 };
  const identities = new WeakMap<Client, Identity>();

  const broker = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      policy
        .authenticate(client.id, username, password?.toString('utf8'))
        .then((result) => {
          if (result.ok) {
            identities.set(client, result.identity);
            done(null, true);
            return;
          }
          counters.connectionsRefused++;
          log.warn({ clientId: client.id, username, reason: result.reason }, 'mqtt connection refused');
          const err = Object.assign(new Error(result.reason), { returnCode: 5 as const });
          done(err, false);
        })
        .catch((err) => {
          counters.connectionsRefused++;
          log.error({ err }, 'mqtt authentication failed');
          done(Object.assign(new Error('authentication error'), { returnCode: 3 as const }), false);
        });
    },
    authorizePublish: (client, packet, done) => {
      // client is null for broker-internal publishes (e.g. wills already authorized at connect).
      const identity = client ? identities.get(client) : { kind: 'server' as const };
      if (identity && policy.canPublish(identity, packet.topic)) return done(null);
      counters.publishesRefused++;
      log.warn({ clientId: client?.id, topic: packet.topic }, 'mqtt publish refused');
      done(new Error(`not allowed to publish to ${packet.topic}`));
    },
    authorizeSubscribe: (client, subscription, done) => {
      const identity = identities.get(client);
      if (identity && policy.canSubscribe(identity, subscription.topic)) return done(null, subscription);
      counters.subscriptionsRefused++;
      log.warn({ clientId: client.id, topic: subscription.topic }, 'mqtt subscription refused');
      done(null, null);
    },
  });
  broker.on('clientError', (client, err) =>
    log.debug({ clientId: client.id, err: err.message }, 'mqtt client error'),
  );

  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;

  return {
    port,
    counters,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
