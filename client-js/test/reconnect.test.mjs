// How pusher-js 8 reconnects against Herald: a restart on the same port, 4200 failover behind a load balancer,
// and the 4100 back-off when Herald is over capacity.

import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';

import { startAuthServer } from '../lib/auth-server.mjs';
import {
  ClientPool,
  Recorder,
  WAIT_MS,
  errorCode,
  serverSdk,
  subscribe,
  uniqueName,
  waitForEvent,
  waitForState,
} from '../lib/clients.mjs';
import { startHerald } from '../lib/herald.mjs';
import { startProxy } from '../lib/proxy.mjs';

const APP_ID = '401';
const APP = { key: 'reconnect-key', secret: 'reconnect-secret' };
/**
 * pusher-js waits out a 15 s connection timeout after a refused TCP connect before it tries again
 * (SequentialStrategy with `timeout: 15000`), so a restart costs a client up to that long.
 */
const RESTART_MS = 40_000;

describe('reconnecting with pusher-js 8', () => {
  const cleanups = [];
  const pools = [];

  /** Registers something to dispose at the end of the current test. */
  function disposeLater(resource, dispose) {
    cleanups.push(() => dispose(resource));
    return resource;
  }

  function pool(herald, options) {
    const clients = new ClientPool(herald, { appId: APP_ID, ...options });
    pools.push(clients);
    return clients;
  }

  afterEach(async () => {
    for (const clients of pools.splice(0)) {
      clients.disconnectAll();
    }
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup();
    }
  });

  after(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup();
    }
  });

  test('after Herald restarts on the same port, pusher-js reconnects, resubscribes and receives the next event', {
    timeout: RESTART_MS + 4 * WAIT_MS,
  }, async () => {
    const herald = disposeLater(await startHerald({ apps: { [APP_ID]: APP } }), (h) => h.dispose());
    const server = serverSdk(herald, APP_ID);
    const authServer = disposeLater(await startAuthServer(server), (a) => a.close());
    const clients = pool(herald, { authServer });
    const client = await clients.connected({ user: { id: 'restart-user' } });
    const publicName = uniqueName('restart-public-');
    const privateName = uniqueName('private-restart-');
    const presenceName = uniqueName('presence-restart-');
    const publicChannel = await subscribe(client, publicName);
    const privateChannel = await subscribe(client, privateName);
    const presenceChannel = await subscribe(client, presenceName);
    const firstSocketId = client.connection.socket_id;

    // The SDK's idle keep-alive connection (Node's default agent) must not hold up the drain.
    const warmUp = waitForEvent(publicChannel, 'before-restart');
    await server.trigger(publicName, 'before-restart', {});
    await warmUp;

    const errors = new Recorder(client.connection, 'error');
    const states = new Recorder(client.connection, 'state_change');
    const stopStarted = Date.now();
    const status = await herald.stop();
    const stopMs = Date.now() - stopStarted;
    assert.deepEqual(status, { code: 0, signal: null }, 'Herald drains and exits 0 on SIGTERM');
    assert.ok(stopMs < 3_000, `Herald exited ${stopMs} ms after SIGTERM, before its 5 s shutdown_timeout`);
    await errors.until((events) => events.some(({ data }) => errorCode(data) === 4200), { label: 'a 4200 close' });
    const resubscribed = Promise.all(
      [publicChannel, privateChannel, presenceChannel].map((channel) =>
        waitForEvent(channel, 'pusher:subscription_succeeded', { timeout: RESTART_MS + WAIT_MS }),
      ),
    );
    await herald.start();

    await waitForState(client, 'connected', RESTART_MS);
    assert.notEqual(client.connection.socket_id, firstSocketId);
    assert.ok(!states.data.some((change) => change.current === 'disconnected'), 'pusher-js never gave up');
    await resubscribed;

    const received = Promise.all([
      waitForEvent(publicChannel, 'after-restart'),
      waitForEvent(privateChannel, 'after-restart'),
      waitForEvent(presenceChannel, 'after-restart'),
    ]);
    await server.trigger([publicName, privateName, presenceName], 'after-restart', { n: 1 });
    assert.deepEqual(await received, [{ n: 1 }, { n: 1 }, { n: 1 }]);
    assert.equal(presenceChannel.members.me.id, 'restart-user');
  });

  test('a 4200 close makes pusher-js reconnect at once: failover to a second node behind a load balancer', {
    timeout: 6 * WAIT_MS,
  }, async () => {
    const nodeA = disposeLater(await startHerald({ apps: { [APP_ID]: APP } }), (h) => h.dispose());
    const nodeB = disposeLater(await startHerald({ apps: { [APP_ID]: APP } }), (h) => h.dispose());
    const balancer = disposeLater(await startProxy(nodeA.port), (p) => p.close());
    const serverB = serverSdk(nodeB, APP_ID);
    const authServer = disposeLater(await startAuthServer(serverB), (a) => a.close());
    const clients = pool(nodeA, { authServer });
    const client = await clients.connected({ wsPort: balancer.port });
    const publicName = uniqueName('failover-');
    const privateName = uniqueName('private-failover-');
    const publicChannel = await subscribe(client, publicName);
    const privateChannel = await subscribe(client, privateName);
    const firstSocketId = client.connection.socket_id;

    let closedAt = null;
    client.connection.bind('error', (error) => {
      if (errorCode(error) === 4200 && closedAt === null) {
        closedAt = Date.now();
      }
    });
    const reconnected = waitForEvent(client.connection, 'connected').then(() => Date.now());
    const resubscribed = Promise.all([
      waitForEvent(publicChannel, 'pusher:subscription_succeeded'),
      waitForEvent(privateChannel, 'pusher:subscription_succeeded'),
    ]);
    balancer.targetPort = nodeB.port;
    await nodeA.stop();
    const reconnectedAt = await reconnected;
    assert.ok(closedAt !== null, 'node A closed the socket with 4200');
    // pusher-js also announces its generic 1 s retry after any close, but the 4200 "retry now" wins.
    const reconnectMs = reconnectedAt - closedAt;
    assert.ok(reconnectMs < 1_000, `reconnected ${reconnectMs} ms after the 4200, without the 1 s back-off`);
    assert.notEqual(client.connection.socket_id, firstSocketId);
    await resubscribed;

    const received = Promise.all([
      waitForEvent(publicChannel, 'on-node-b'),
      waitForEvent(privateChannel, 'on-node-b'),
    ]);
    await serverB.trigger([publicName, privateName], 'on-node-b', { node: 'b' });
    assert.deepEqual(await received, [{ node: 'b' }, { node: 'b' }]);
  });

  test('4100 over capacity: pusher-js stays connecting, retries about once a second, and gets in when there is room', {
    timeout: 8 * WAIT_MS,
  }, async () => {
    const herald = disposeLater(
      await startHerald({ apps: { [APP_ID]: APP }, server: { max_connections: 1 } }),
      (h) => h.dispose(),
    );
    const clients = pool(herald);
    const first = await clients.connected();

    const second = clients.create();
    const refusals = new Recorder(second.connection, 'error');
    const delays = new Recorder(second.connection, 'connecting_in');
    const states = new Recorder(second.connection, 'state_change');
    const refusalTimes = [];
    second.connection.bind('error', (error) => {
      if (errorCode(error) === 4100) {
        refusalTimes.push(Date.now());
      }
    });
    await refusals.until(() => refusalTimes.length >= 3, { timeout: 4 * WAIT_MS, label: 'three 4100 refusals' });
    const refusal = refusals.data.find((error) => errorCode(error) === 4100);
    assert.equal(refusal.type, 'WebSocketError');
    assert.equal(refusal.error.type, 'PusherError');
    assert.ok(delays.data.length >= 2 && delays.data.every((seconds) => seconds === 1), `connecting_in ${delays.data}`);
    for (let index = 1; index < refusalTimes.length; index += 1) {
      const gap = refusalTimes[index] - refusalTimes[index - 1];
      assert.ok(gap >= 900, `attempts ${gap} ms apart: pusher-js backs off instead of hammering`);
    }
    assert.equal(second.connection.state, 'connecting');
    assert.ok(
      states.data.every((change) => change.current === 'connecting' || change.current === 'unavailable'),
      `states ${JSON.stringify(states.data)}`,
    );

    first.disconnect();
    await waitForState(second, 'connected', 3 * WAIT_MS);
    const channel = await subscribe(second, uniqueName('room-'));
    const received = waitForEvent(channel, 'finally');
    await serverSdk(herald, APP_ID).trigger(channel.name, 'finally', { in: true });
    assert.deepEqual(await received, { in: true });
  });
});
