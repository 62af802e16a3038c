// Client events (`client-*`) between pusher-js 8 clients, their rate limit, and subscription counts.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import { startAuthServer } from '../lib/auth-server.mjs';
import {
  ClientPool,
  Recorder,
  recordFrames,
  serverSdk,
  subscribe,
  uniqueName,
  waitForEvent,
} from '../lib/clients.mjs';
import { startHerald } from '../lib/herald.mjs';

const CHAT_APP = '201';
const LIMITED_APP = '202';
const QUIET_APP = '203';
const RATE_LIMIT = 2;

describe('client events and subscription counts with pusher-js 8', () => {
  let herald;
  let authServers = [];
  let pools = {};
  let servers = {};

  before(async () => {
    herald = await startHerald({
      apps: {
        [CHAT_APP]: { key: 'chat-key', secret: 'chat-secret', client_events: true, subscription_count: true },
        [LIMITED_APP]: {
          key: 'limited-key',
          secret: 'limited-secret',
          client_events: true,
          limits: { client_events_per_second: RATE_LIMIT },
        },
        [QUIET_APP]: { key: 'quiet-key', secret: 'quiet-secret', client_events: false },
      },
    });
    for (const appId of [CHAT_APP, LIMITED_APP, QUIET_APP]) {
      servers[appId] = serverSdk(herald, appId);
      const authServer = await startAuthServer(servers[appId]);
      authServers.push(authServer);
      pools[appId] = new ClientPool(herald, { appId, authServer });
    }
  });

  afterEach(() => {
    for (const pool of Object.values(pools)) {
      pool.disconnectAll();
    }
  });

  after(async () => {
    await Promise.all(authServers.map((authServer) => authServer.close()));
    await herald?.dispose();
  });

  test('a client event on a private channel reaches the other subscriber, not the sender', async () => {
    const clients = pools[CHAT_APP];
    const channelName = uniqueName('private-chat-');
    const sender = await clients.connected();
    const receiver = await clients.connected();
    const senderChannel = await subscribe(sender, channelName);
    const receiverChannel = await subscribe(receiver, channelName);
    const senderFrames = recordFrames(sender);

    const received = waitForEvent(receiverChannel, 'client-typing', { withMetadata: true });
    assert.equal(senderChannel.trigger('client-typing', { text: 'hello', at: 1 }), true);
    const { data, metadata } = await received;
    assert.deepEqual(data, { text: 'hello', at: 1 });
    assert.equal(metadata.user_id, undefined);

    // A server event after the client event reaches the sender last; by then any echo would have arrived.
    const barrier = waitForEvent(senderChannel, 'barrier');
    await servers[CHAT_APP].trigger(channelName, 'barrier', {});
    await barrier;
    assert.deepEqual(
      senderFrames.data.filter((frame) => frame.event === 'client-typing'),
      [],
      'the sender does not get its own client event back',
    );
  });

  test('a client event on a presence channel carries the sender user_id', async () => {
    const clients = pools[CHAT_APP];
    const channelName = uniqueName('presence-chat-');
    const alice = await clients.connected({ user: { id: 'alice', name: 'Alice' } });
    const bob = await clients.connected({ user: { id: 'bob', name: 'Bob' } });
    const aliceChannel = await subscribe(alice, channelName);
    const bobChannel = await subscribe(bob, channelName);

    const received = waitForEvent(bobChannel, 'client-wave', { withMetadata: true });
    aliceChannel.trigger('client-wave', { emoji: 'hi' });
    const { data, metadata } = await received;
    assert.deepEqual(data, { emoji: 'hi' });
    assert.equal(metadata.user_id, 'alice');
    assert.deepEqual(bobChannel.members.get(metadata.user_id).info, { name: 'Alice' });
  });

  test('client events over the per-second limit get a 4301 error and are not relayed', async () => {
    const clients = pools[LIMITED_APP];
    const channelName = uniqueName('private-burst-');
    const sender = await clients.connected();
    const receiver = await clients.connected();
    const senderChannel = await subscribe(sender, channelName);
    const receiverChannel = await subscribe(receiver, channelName);
    const relayed = new Recorder(receiverChannel, 'client-burst');

    const rateError = waitForEvent(sender.connection, 'error', {
      filter: (error) => error.data?.code === 4301,
      label: 'a 4301 error',
    });
    const sent = 5 * RATE_LIMIT;
    for (let index = 0; index < sent; index += 1) {
      senderChannel.trigger('client-burst', { index });
    }
    const error = await rateError;
    assert.equal(error.type, 'PusherError');
    assert.equal(typeof error.data.message, 'string');

    const barrier = waitForEvent(receiverChannel, 'barrier');
    await servers[LIMITED_APP].trigger(channelName, 'barrier', {});
    await barrier;
    const indexes = relayed.data.map((data) => data.index);
    assert.ok(indexes.length >= 1, 'the first events within the limit are relayed');
    // Ten events sent at once touch at most two one-second windows.
    assert.ok(indexes.length <= 2 * RATE_LIMIT, `only ${2 * RATE_LIMIT} at most relayed, got ${indexes}`);
    assert.deepEqual(indexes, [...indexes].sort((a, b) => a - b));
    assert.equal(sender.connection.state, 'connected', 'a 4301 does not close the connection');
  });

  test('client events on an app without them get a pusher:error with code null', async () => {
    const clients = pools[QUIET_APP];
    const channelName = uniqueName('private-quiet-');
    const sender = await clients.connected();
    const receiver = await clients.connected();
    const senderChannel = await subscribe(sender, channelName);
    const receiverChannel = await subscribe(receiver, channelName);
    const relayed = new Recorder(receiverChannel, 'client-nope');

    const error = waitForEvent(sender.connection, 'error');
    senderChannel.trigger('client-nope', {});
    const { type, data } = await error;
    assert.equal(type, 'PusherError');
    assert.equal(data.code, null);
    assert.match(data.message, /client events/i);

    const barrier = waitForEvent(receiverChannel, 'barrier');
    await servers[QUIET_APP].trigger(channelName, 'barrier', {});
    await barrier;
    assert.equal(relayed.events.length, 0);
  });

  test('pusher:subscription_count follows subscribers when the app enables it', async () => {
    const clients = pools[CHAT_APP];
    const channelName = uniqueName('counted-');
    const first = await clients.connected();
    const firstChannel = first.subscribe(channelName);
    const counts = new Recorder(firstChannel, 'pusher:subscription_count');
    await counts.until((events) => events.at(-1)?.data.subscription_count === 1, { label: 'a count of 1' });

    const second = await clients.connected();
    const secondChannel = second.subscribe(channelName);
    const secondCounts = new Recorder(secondChannel, 'pusher:subscription_count');
    await counts.until((events) => events.at(-1)?.data.subscription_count === 2, { label: 'a count of 2' });
    await secondCounts.until((events) => events.at(-1)?.data.subscription_count === 2, { label: 'a count of 2' });
    assert.equal(firstChannel.subscriptionCount, 2);

    second.disconnect();
    await counts.until((events) => events.at(-1)?.data.subscription_count === 1, { label: 'a count back to 1' });
    assert.equal(firstChannel.subscriptionCount, 1);
  });
});
