// Connection set-up and upkeep as pusher-js 8 surfaces them: refusals (4001, 4003, 4004) and heartbeats.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import {
  ClientPool,
  Recorder,
  WAIT_MS,
  errorCode,
  recordFrames,
  waitForEvent,
  waitForState,
} from '../lib/clients.mjs';
import { startHerald } from '../lib/herald.mjs';

const OPEN_APP = '501';
const DISABLED_APP = '502';
const SMALL_APP = '503';

describe('connections with pusher-js 8', () => {
  let herald;
  let clients;

  before(async () => {
    herald = await startHerald({
      apps: {
        [OPEN_APP]: { key: 'open-key', secret: 'open-secret' },
        [DISABLED_APP]: { key: 'disabled-key', secret: 'disabled-secret', enabled: false },
        [SMALL_APP]: { key: 'small-key', secret: 'small-secret', max_connections: 1 },
      },
      // Short heartbeats so the tests see several rounds quickly.
      server: { activity_timeout: '1s', pong_timeout: '1s' },
    });
    clients = new ClientPool(herald, { appId: OPEN_APP });
  });

  afterEach(() => clients.disconnectAll());

  after(async () => {
    await herald?.dispose();
  });

  /**
   * Connects with `options` and returns the refusal pusher-js reported, once it settled in `disconnected`.
   * pusher-js is already `connecting` when its constructor returns, so the recorded states start after that.
   */
  async function refusal(options) {
    const client = clients.create(options);
    const states = new Recorder(client.connection, 'state_change');
    const error = await waitForEvent(client.connection, 'error', { label: 'a refusal' });
    await waitForState(client, 'disconnected');
    return { client, error, states: states.data.map((change) => change.current) };
  }

  test('the handshake gives pusher-js a socket id and the server activity timeout', async () => {
    const client = await clients.connected();
    assert.match(client.connection.socket_id, /^\d+\.\d+$/);
    // pusher-js keeps min(its own 120 s default, the server's activity_timeout) in milliseconds.
    assert.equal(client.connection.activityTimeout, 1_000);
  });

  test('an unknown app key is refused with 4001 and pusher-js does not retry', async () => {
    const { error, states } = await refusal({ key: 'no-such-key' });
    assert.equal(error.type, 'WebSocketError');
    assert.equal(errorCode(error), 4001);
    assert.match(error.error.data.message, /no-such-key/);
    assert.deepEqual(states, ['disconnected']);
  });

  test('a disabled app is refused with 4003 and pusher-js does not retry', async () => {
    const { error, states } = await refusal({ appId: DISABLED_APP });
    assert.equal(errorCode(error), 4003);
    assert.equal(typeof error.error.data.message, 'string');
    assert.deepEqual(states, ['disconnected']);
  });

  test('an app over its connection quota refuses the next socket with 4004', async () => {
    const first = await clients.connected({ appId: SMALL_APP });
    const { error, states } = await refusal({ appId: SMALL_APP });
    assert.equal(errorCode(error), 4004);
    assert.deepEqual(states, ['disconnected']);
    assert.equal(first.connection.state, 'connected');
  });

  test('Herald pings an idle pusher-js client, which answers and keeps its connection', async () => {
    const client = clients.create();
    const frames = recordFrames(client);
    await waitForState(client, 'connected');
    const socketId = client.connection.socket_id;
    // With a 1 s pong timeout, a third ping proves the answers to the first ones were accepted.
    await frames.until((events) => events.filter(({ data }) => data.event === 'pusher:ping').length >= 3, {
      timeout: 3 * WAIT_MS,
      label: 'three server pings',
    });
    assert.equal(client.connection.state, 'connected');
    assert.equal(client.connection.socket_id, socketId);
  });

  test('Herald answers pusher-js pings with pusher:pong', async () => {
    // pusher-js pings after min(its activityTimeout, the server's) of silence from the server.
    const client = clients.create({ activityTimeout: 200 });
    const frames = recordFrames(client);
    await waitForState(client, 'connected');
    const socketId = client.connection.socket_id;
    await frames.until((events) => events.filter(({ data }) => data.event === 'pusher:pong').length >= 2, {
      label: 'two pongs',
    });
    assert.equal(client.connection.state, 'connected');
    assert.equal(client.connection.socket_id, socketId);
  });
});
