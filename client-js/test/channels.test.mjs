// Channel types end to end: pusher-js 8 subscribes, the `pusher` Node SDK publishes and signs auth.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';

import { startAuthServer } from '../lib/auth-server.mjs';
import {
  ClientPool,
  Recorder,
  channelInfo,
  pollUntil,
  recordFrames,
  serverSdk,
  subscribe,
  uniqueName,
  waitForEvent,
} from '../lib/clients.mjs';
import { startHerald } from '../lib/herald.mjs';

const APP_ID = '101';
const MASTER_KEY_BASE64 = randomBytes(32).toString('base64');

describe('channels with pusher-js 8 and the Node server SDK', () => {
  let herald;
  let authServer;
  let server;
  let clients;

  before(async () => {
    herald = await startHerald({
      apps: { [APP_ID]: { key: 'channels-key', secret: 'channels-secret' } },
    });
    server = serverSdk(herald, APP_ID, { encryptionMasterKeyBase64: MASTER_KEY_BASE64 });
    authServer = await startAuthServer(server);
    clients = new ClientPool(herald, { appId: APP_ID, authServer });
  });

  afterEach(() => clients.disconnectAll());

  after(async () => {
    await authServer?.close();
    await herald?.dispose();
  });

  test('a public channel receives an event triggered with the Node SDK', async () => {
    const client = await clients.connected();
    const channelName = uniqueName('public-');
    const channel = await subscribe(client, channelName);
    const received = waitForEvent(channel, 'order-shipped');
    await server.trigger(channelName, 'order-shipped', { order: 42, items: ['a', 'b'] });
    assert.deepEqual(await received, { order: 42, items: ['a', 'b'] });
  });

  test('event data that is not JSON reaches pusher-js as the same string', async () => {
    const client = await clients.connected();
    const channelName = uniqueName('plain-');
    const channel = await subscribe(client, channelName);
    const received = waitForEvent(channel, 'note');
    await server.trigger(channelName, 'note', 'just some text, not JSON');
    assert.equal(await received, 'just some text, not JSON');
  });

  test('a private channel is authorized through the app server and receives events', async () => {
    const client = await clients.connected();
    const channelName = uniqueName('private-orders-');
    const channel = await subscribe(client, channelName);
    const authRequest = authServer.requests.find((request) => request.form.channel_name === channelName);
    assert.equal(authRequest.path, '/pusher/auth');
    assert.equal(authRequest.form.socket_id, client.connection.socket_id);
    assert.match(client.connection.socket_id, /^\d+\.\d+$/);

    const received = waitForEvent(channel, 'status');
    await server.trigger(channelName, 'status', { paid: true });
    assert.deepEqual(await received, { paid: true });
  });

  test('an app server that refuses authorization gives pusher:subscription_error with its status', async () => {
    const client = await clients.connected();
    const channel = client.subscribe(uniqueName('private-forbidden-'));
    const error = await waitForEvent(channel, 'pusher:subscription_error');
    assert.equal(error.type, 'AuthError');
    assert.equal(error.status, 403);
    assert.equal(channel.subscribed, false);
  });

  test('a wrong signature is refused with a pusher:error whose code is null, and the connection stays open', async () => {
    const wrongSigner = serverSdk(herald, APP_ID, { secret: 'not-the-secret' });
    const client = await clients.connected({
      channelAuthorization: {
        customHandler: ({ socketId, channelName }, callback) => {
          callback(null, wrongSigner.authorizeChannel(socketId, channelName));
        },
      },
    });
    const channelName = uniqueName('private-badsig-');
    const errorEvent = waitForEvent(client.connection, 'error');
    const channel = client.subscribe(channelName);
    const error = await errorEvent;
    assert.equal(error.type, 'PusherError');
    assert.equal(error.data.code, null);
    assert.match(error.data.message, /signature/i);
    assert.equal(channel.subscribed, false);
    assert.equal(client.connection.state, 'connected');

    // The same connection still works.
    const publicChannel = await subscribe(client, uniqueName('after-error-'));
    const received = waitForEvent(publicChannel, 'ping-event');
    await server.trigger(publicChannel.name, 'ping-event', { ok: 1 });
    assert.deepEqual(await received, { ok: 1 });
  });

  test('presence: members.me, members.count, member_added and member_removed', async () => {
    const channelName = uniqueName('presence-room-');
    const alice = await clients.connected({ user: { id: 'alice', name: 'Alice' } });
    const aliceChannel = alice.subscribe(channelName);
    const aliceMembers = await waitForEvent(aliceChannel, 'pusher:subscription_succeeded');
    assert.equal(aliceMembers.count, 1);
    assert.deepEqual(aliceMembers.me, { id: 'alice', info: { name: 'Alice' } });

    const added = waitForEvent(aliceChannel, 'pusher:member_added');
    const bob = await clients.connected({ user: { id: 'bob', name: 'Bob' } });
    const bobChannel = bob.subscribe(channelName);
    const bobMembers = await waitForEvent(bobChannel, 'pusher:subscription_succeeded');
    assert.equal(bobMembers.count, 2);
    assert.deepEqual(bobMembers.me, { id: 'bob', info: { name: 'Bob' } });
    const seenByBob = {};
    bobMembers.each((member) => {
      seenByBob[member.id] = member.info;
    });
    assert.deepEqual(seenByBob, { alice: { name: 'Alice' }, bob: { name: 'Bob' } });

    assert.deepEqual(await added, { id: 'bob', info: { name: 'Bob' } });
    assert.equal(aliceChannel.members.count, 2);

    const removed = waitForEvent(aliceChannel, 'pusher:member_removed');
    bob.disconnect();
    assert.deepEqual(await removed, { id: 'bob', info: { name: 'Bob' } });
    assert.equal(aliceChannel.members.count, 1);
  });

  test('presence: a user on two connections is one member, removed only when the last one leaves', async () => {
    const channelName = uniqueName('presence-tabs-');
    const watcher = await clients.connected({ user: { id: 'watcher' } });
    const watcherChannel = await subscribe(watcher, channelName);
    const added = new Recorder(watcherChannel, 'pusher:member_added');
    const removed = new Recorder(watcherChannel, 'pusher:member_removed');

    const firstTab = await clients.connected({ user: { id: 'carol', name: 'Carol' } });
    await subscribe(firstTab, channelName);
    await added.count(1);
    const secondTab = await clients.connected({ user: { id: 'carol', name: 'Carol' } });
    const secondChannel = await subscribe(secondTab, channelName);
    assert.equal(secondChannel.members.count, 2);

    firstTab.disconnect();
    await pollUntil(async () => (await channelInfo(server, channelName)).subscription_count === 2, {
      label: 'the first tab to leave',
    });
    // Anything Herald sent about that leave reaches the watcher before this marker.
    const marker = waitForEvent(watcherChannel, 'marker');
    await server.trigger(channelName, 'marker', {});
    await marker;
    assert.equal(removed.events.length, 0);
    assert.equal(watcherChannel.members.count, 2);

    secondTab.disconnect();
    const [event] = await removed.count(1);
    assert.equal(event.data.id, 'carol');
    assert.equal(added.events.length, 1);
  });

  test('presence: a numeric user_id from channel_data reaches other members as a string', async () => {
    const channelName = uniqueName('presence-numeric-');
    const numericUser = {
      channelAuthorization: {
        customHandler: ({ socketId, channelName: name }, callback) => {
          callback(null, server.authorizeChannel(socketId, name, { user_id: 42, user_info: { name: 'Answer' } }));
        },
      },
    };
    const observer = await clients.connected({ user: { id: 'observer' } });
    const observerChannel = await subscribe(observer, channelName);
    const added = waitForEvent(observerChannel, 'pusher:member_added');
    const numeric = await clients.connected(numericUser);
    await subscribe(numeric, channelName);
    assert.deepEqual(await added, { id: '42', info: { name: 'Answer' } });

    const response = await server.get({ path: `/channels/${channelName}/users` });
    const body = await response.json();
    const ids = body.users.map((user) => user.id).sort();
    assert.deepEqual(ids, ['42', 'observer']);
  });

  test('presence: a member without user_info is still listed, so members.me is set', async () => {
    const channelName = uniqueName('presence-bare-');
    const bare = await clients.connected({
      channelAuthorization: {
        customHandler: ({ socketId, channelName: name }, callback) => {
          callback(null, server.authorizeChannel(socketId, name, { user_id: 'bare' }));
        },
      },
    });
    const channel = await subscribe(bare, channelName);
    assert.equal(channel.members.count, 1);
    assert.equal(channel.members.me?.id, 'bare');
  });

  test('private-encrypted: the SDK encrypts, Herald relays ciphertext, pusher-js decrypts', async () => {
    const client = await clients.connected();
    const frames = recordFrames(client);
    const channelName = uniqueName('private-encrypted-vault-');
    const channel = await subscribe(client, channelName);
    const authRequest = authServer.requests.find((request) => request.form.channel_name === channelName);
    assert.ok(authRequest, 'pusher-js asked the app server for the shared secret');

    const received = waitForEvent(channel, 'secret-plans');
    await server.trigger(channelName, 'secret-plans', { launch: 'tuesday' });
    assert.deepEqual(await received, { launch: 'tuesday' });

    const frame = frames.data.find((message) => message.event === 'secret-plans');
    assert.equal(typeof frame.data.nonce, 'string');
    assert.equal(typeof frame.data.ciphertext, 'string');
    assert.ok(!JSON.stringify(frame).includes('tuesday'), 'the wire only carries ciphertext');
  });

  test('cache channel: pusher:cache_miss when empty, then the last event is replayed to a new subscriber', async () => {
    const channelName = uniqueName('cache-prices-');
    const first = await clients.connected();
    const firstChannel = first.subscribe(channelName);
    const cacheMiss = waitForEvent(firstChannel, 'pusher:cache_miss');
    await waitForEvent(firstChannel, 'pusher:subscription_succeeded');
    await cacheMiss;

    const delivered = waitForEvent(firstChannel, 'price');
    await server.trigger(channelName, 'price', { eur: 10 });
    await delivered;
    const secondDelivered = waitForEvent(firstChannel, 'price');
    await server.trigger(channelName, 'price', { eur: 11 });
    await secondDelivered;

    const late = await clients.connected();
    const lateChannel = late.subscribe(channelName);
    const lateMisses = new Recorder(lateChannel, 'pusher:cache_miss');
    const replayed = await waitForEvent(lateChannel, 'price');
    assert.deepEqual(replayed, { eur: 11 });
    assert.equal(lateMisses.events.length, 0);
  });

  test('private cache channel: authorized, and replays its last event', async () => {
    const channelName = uniqueName('private-cache-scores-');
    const first = await clients.connected();
    const firstChannel = first.subscribe(channelName);
    await waitForEvent(firstChannel, 'pusher:cache_miss');
    const delivered = waitForEvent(firstChannel, 'score');
    await server.trigger(channelName, 'score', { home: 2, away: 1 });
    await delivered;

    const late = await clients.connected();
    const replayed = await waitForEvent(late.subscribe(channelName), 'score');
    assert.deepEqual(replayed, { home: 2, away: 1 });
  });

  test('a 200-character channel name works for pusher-js and the SDK', async () => {
    const prefix = uniqueName('long-');
    const channelName = prefix + 'x'.repeat(200 - prefix.length);
    assert.equal(channelName.length, 200);
    const client = await clients.connected();
    const channel = await subscribe(client, channelName);
    const received = waitForEvent(channel, 'long');
    await server.trigger(channelName, 'long', { n: 200 });
    assert.deepEqual(await received, { n: 200 });
  });

  test('unsubscribe stops delivery on that channel only', async () => {
    const client = await clients.connected();
    const leftName = uniqueName('left-');
    const keptName = uniqueName('kept-');
    await subscribe(client, leftName);
    const kept = await subscribe(client, keptName);
    const frames = recordFrames(client);
    client.unsubscribe(leftName);
    // Herald does not answer an unsubscribe; the REST API shows when it took effect.
    await pollUntil(async () => !(await channelInfo(server, leftName)).occupied, { label: 'the unsubscribe' });
    const barrier = waitForEvent(kept, 'news');
    await server.trigger(leftName, 'news', { dropped: true });
    await server.trigger(keptName, 'news', { kept: true });
    assert.deepEqual(await barrier, { kept: true });
    assert.deepEqual(
      frames.data.filter((frame) => frame.channel === leftName),
      [],
      'no frame for the unsubscribed channel reached the socket',
    );
  });
});
