// The official `pusher` Python SDK (3.x, from PyPI) against Herald, checked through what pusher-js 8 receives.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
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
  waitForState,
} from '../lib/clients.mjs';
import { startHerald } from '../lib/herald.mjs';
import { assertVenv, pythonApp, pythonSdk, startPythonAuthServer } from '../lib/python.mjs';

const APP_ID = '701';
const MASTER_KEY_BASE64 = randomBytes(32).toString('base64');

/** The single outcome of one Python SDK call, which must have succeeded. */
async function pythonCall(app, method, args = [], kwargs = {}) {
  const [outcome] = await pythonSdk(app, [{ method, args, kwargs }]);
  assert.ok(outcome.ok, `${method} failed: ${JSON.stringify(outcome)}`);
  return outcome.result;
}

describe('the pusher Python SDK', () => {
  let herald;
  let app;
  let nodeAuthServer;
  let pythonAuthServer;
  let clients;
  let pythonAuthClients;

  before(async () => {
    assertVenv();
    herald = await startHerald({
      apps: { [APP_ID]: { key: 'python-key', secret: 'python-secret' } },
    });
    app = pythonApp(herald, APP_ID, { encryption_master_key_base64: MASTER_KEY_BASE64 });
    nodeAuthServer = await startAuthServer(
      serverSdk(herald, APP_ID, { encryptionMasterKeyBase64: MASTER_KEY_BASE64 }),
    );
    pythonAuthServer = await startPythonAuthServer(app);
    clients = new ClientPool(herald, { appId: APP_ID, authServer: nodeAuthServer });
    pythonAuthClients = new ClientPool(herald, { appId: APP_ID, authServer: pythonAuthServer });
  });

  afterEach(() => {
    clients.disconnectAll();
    pythonAuthClients.disconnectAll();
  });

  after(async () => {
    await nodeAuthServer?.close();
    await pythonAuthServer?.close();
    await herald?.dispose();
  });

  test('trigger to one and to several channels, and with socket_id exclusion', async () => {
    const first = uniqueName('py-a-');
    const second = uniqueName('private-py-b-');
    const reader = await clients.connected();
    const author = await clients.connected();
    const readerFirst = await subscribe(reader, first);
    const readerSecond = await subscribe(reader, second);
    const authorFirst = await subscribe(author, first);
    const authorEvents = new Recorder(authorFirst, 'py-event');

    const one = waitForEvent(readerFirst, 'py-event');
    assert.deepEqual(await pythonCall(app, 'trigger', [first, 'py-event', { n: 1 }]), {});
    assert.deepEqual(await one, { n: 1 });
    await authorEvents.count(1);

    const both = Promise.all([waitForEvent(readerFirst, 'py-both'), waitForEvent(readerSecond, 'py-both')]);
    await pythonCall(app, 'trigger', [[first, second], 'py-both', { n: 2 }]);
    assert.deepEqual(await both, [{ n: 2 }, { n: 2 }]);

    const excluded = waitForEvent(readerFirst, 'py-event');
    await pythonCall(app, 'trigger', [first, 'py-event', { n: 3 }], { socket_id: author.connection.socket_id });
    assert.deepEqual(await excluded, { n: 3 });
    const barrier = waitForEvent(authorFirst, 'barrier');
    await pythonCall(app, 'trigger', [first, 'barrier', {}]);
    await barrier;
    assert.deepEqual(authorEvents.data, [{ n: 1 }], 'the excluded socket got only the first event');
  });

  test('trigger_batch delivers each event to its channel', async () => {
    const first = uniqueName('py-batch-a-');
    const second = uniqueName('py-batch-b-');
    const client = await clients.connected();
    const firstChannel = await subscribe(client, first);
    const secondChannel = await subscribe(client, second);
    const received = Promise.all([waitForEvent(firstChannel, 'one'), waitForEvent(secondChannel, 'two')]);
    await pythonCall(app, 'trigger_batch', [
      [
        { channel: first, name: 'one', data: { n: 1 } },
        { channel: second, name: 'two', data: 'two as text' },
      ],
    ]);
    assert.deepEqual(await received, [{ n: 1 }, 'two as text']);
  });

  test('trigger to a private-encrypted channel: Python encrypts, pusher-js decrypts', async () => {
    const channelName = uniqueName('private-encrypted-py-');
    const client = await clients.connected();
    const frames = recordFrames(client);
    const channel = await subscribe(client, channelName);
    const received = waitForEvent(channel, 'sealed');
    await pythonCall(app, 'trigger', [channelName, 'sealed', { secret: 'from python' }]);
    assert.deepEqual(await received, { secret: 'from python' });
    const frame = frames.data.find((message) => message.event === 'sealed');
    assert.ok(!JSON.stringify(frame).includes('from python'), 'the wire only carries ciphertext');
  });

  test('channels_info, channel_info and users_info (GETs that carry body_md5) report the live state', async () => {
    const prefix = uniqueName('presence-py-');
    const room = `${prefix}-room`;
    const publicName = uniqueName('py-public-');
    const hana = await clients.connected({ user: { id: 'hana' } });
    const ivan = await clients.connected({ user: { id: 'ivan' } });
    await subscribe(hana, room);
    await subscribe(ivan, room);
    await subscribe(ivan, publicName);

    const outcomes = await pythonSdk(app, [
      { method: 'channels_info', kwargs: { prefix_filter: prefix, attributes: ['user_count'] } },
      { method: 'channel_info', args: [room, ['user_count', 'subscription_count']] },
      { method: 'channel_info', args: [publicName, ['subscription_count']] },
      { method: 'users_info', args: [room] },
      { method: 'channels_info', kwargs: { attributes: ['user_count'] } },
    ]);
    const [list, presence, publicInfo, users, badList] = outcomes;
    assert.deepEqual(list.result, { channels: { [room]: { user_count: 2 } } });
    assert.deepEqual(presence.result, { occupied: true, user_count: 2, subscription_count: 2 });
    assert.deepEqual(publicInfo.result, { occupied: true, subscription_count: 1 });
    assert.deepEqual(users.result.users.map((user) => user.id).sort(), ['hana', 'ivan']);
    assert.equal(badList.ok, false);
    assert.equal(badList.error, 'PusherBadRequest', 'user_count without a presence- prefix is a 400');
  });

  test('authenticate and authenticate_user from a Python app server work for pusher-js', async () => {
    const channelName = uniqueName('presence-py-auth-');
    const privateName = uniqueName('private-py-auth-');
    const userId = uniqueName('py-user-');
    const client = await pythonAuthClients.connected({ user: { id: userId, name: 'Py User' } });
    const privateChannel = await subscribe(client, privateName);
    const presenceChannel = await subscribe(client, channelName);
    assert.deepEqual(presenceChannel.members.me, { id: userId, info: { name: 'Py User' } });

    const signedIn = waitForEvent(client.connection, 'message', {
      filter: (frame) =>
        frame.event === 'pusher_internal:subscription_succeeded' && frame.channel === `#server-to-user-${userId}`,
      label: 'the user channel subscription',
    });
    client.signin();
    await signedIn;
    assert.deepEqual(client.user.user_data, { id: userId, user_info: { name: 'Py User' } });

    const received = Promise.all([
      waitForEvent(privateChannel, 'hello'),
      waitForEvent(presenceChannel, 'hello'),
      waitForEvent(client.user, 'hello'),
    ]);
    const outcomes = await pythonSdk(app, [
      { method: 'trigger', args: [[privateName, channelName], 'hello', { to: 'channels' }] },
      { method: 'send_to_user', args: [userId, 'hello', { to: 'user' }] },
    ]);
    assert.ok(outcomes.every((outcome) => outcome.ok), JSON.stringify(outcomes));
    assert.deepEqual(await received, [{ to: 'channels' }, { to: 'channels' }, { to: 'user' }]);
  });

  test('terminate_user_connections (posted without /apps/{id}) closes the signed-in connection with 4009', async () => {
    const userId = uniqueName('py-term-');
    const client = await clients.connected({ user: { id: userId } });
    const signedIn = waitForEvent(client.connection, 'message', {
      filter: (frame) =>
        frame.event === 'pusher_internal:subscription_succeeded' && frame.channel === `#server-to-user-${userId}`,
      label: 'the user channel subscription',
    });
    client.signin();
    await signedIn;
    const closed = waitForEvent(client.connection, 'error', { filter: (error) => error.data?.code === 4009 });
    assert.deepEqual(await pythonCall(app, 'terminate_user_connections', [userId]), {});
    await closed;
    await waitForState(client, 'disconnected');
  });
});
