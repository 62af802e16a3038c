// pusher-js 7 (installed as `pusher-js-7`): the features apps on the previous major version rely on.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import { startAuthServer } from '../lib/auth-server.mjs';
import {
  ClientPool,
  Pusher7,
  installedVersion,
  serverSdk,
  subscribe,
  uniqueName,
  waitForEvent,
  waitForState,
} from '../lib/clients.mjs';
import { startHerald } from '../lib/herald.mjs';

const APP_ID = '801';

describe(`pusher-js ${installedVersion('pusher-js-7')}`, () => {
  let herald;
  let authServer;
  let server;
  let clients;

  before(async () => {
    assert.match(installedVersion('pusher-js-7'), /^7\./);
    herald = await startHerald({
      apps: { [APP_ID]: { key: 'seven-key', secret: 'seven-secret', client_events: true } },
    });
    server = serverSdk(herald, APP_ID);
    authServer = await startAuthServer(server);
    clients = new ClientPool(herald, { appId: APP_ID, authServer, PusherClass: Pusher7 });
  });

  afterEach(() => clients.disconnectAll());

  after(async () => {
    await authServer?.close();
    await herald?.dispose();
  });

  test('connects and receives events on a public channel', async () => {
    const client = await clients.connected();
    assert.match(client.connection.socket_id, /^\d+\.\d+$/);
    const channelName = uniqueName('seven-public-');
    const channel = await subscribe(client, channelName);
    const received = waitForEvent(channel, 'news');
    await server.trigger(channelName, 'news', { version: 7 });
    assert.deepEqual(await received, { version: 7 });
  });

  test('subscribes to a private channel through the auth endpoint', async () => {
    const client = await clients.connected();
    const channelName = uniqueName('private-seven-');
    const channel = await subscribe(client, channelName);
    const received = waitForEvent(channel, 'secret');
    await server.trigger(channelName, 'secret', { ok: true });
    assert.deepEqual(await received, { ok: true });
  });

  test('presence members, member_added and member_removed', async () => {
    const channelName = uniqueName('presence-seven-');
    const ann = await clients.connected({ user: { id: 'ann', name: 'Ann' } });
    const annChannel = await subscribe(ann, channelName);
    assert.equal(annChannel.members.count, 1);
    assert.deepEqual(annChannel.members.me, { id: 'ann', info: { name: 'Ann' } });

    const added = waitForEvent(annChannel, 'pusher:member_added');
    const ben = await clients.connected({ user: { id: 'ben', name: 'Ben' } });
    const benChannel = await subscribe(ben, channelName);
    assert.equal(benChannel.members.count, 2);
    assert.deepEqual(await added, { id: 'ben', info: { name: 'Ben' } });

    const removed = waitForEvent(annChannel, 'pusher:member_removed');
    ben.disconnect();
    assert.equal((await removed).id, 'ben');
    assert.equal(annChannel.members.count, 1);
  });

  test('client events on private and presence channels, with user_id on presence', async () => {
    const privateName = uniqueName('private-seven-chat-');
    const presenceName = uniqueName('presence-seven-chat-');
    const cat = await clients.connected({ user: { id: 'cat' } });
    const dan = await clients.connected({ user: { id: 'dan' } });
    const catPrivate = await subscribe(cat, privateName);
    const danPrivate = await subscribe(dan, privateName);
    const catPresence = await subscribe(cat, presenceName);
    const danPresence = await subscribe(dan, presenceName);

    const onPrivate = waitForEvent(danPrivate, 'client-typing');
    catPrivate.trigger('client-typing', { typing: true });
    assert.deepEqual(await onPrivate, { typing: true });

    const onPresence = waitForEvent(catPresence, 'client-typing', { withMetadata: true });
    danPresence.trigger('client-typing', { typing: false });
    const { data, metadata } = await onPresence;
    assert.deepEqual(data, { typing: false });
    assert.equal(metadata.user_id, 'dan');
  });

  test('signin and sendToUser', async () => {
    const userId = uniqueName('seven-user-');
    const client = await clients.connected({ user: { id: userId } });
    const userChannel = waitForEvent(client.connection, 'message', {
      filter: (frame) =>
        frame.event === 'pusher_internal:subscription_succeeded' && frame.channel === `#server-to-user-${userId}`,
      label: 'the user channel subscription',
    });
    client.signin();
    await userChannel;
    const received = waitForEvent(client.user, 'direct');
    await server.sendToUser(userId, 'direct', { for: userId });
    assert.deepEqual(await received, { for: userId });
  });

  test('a wrong app key is refused with 4001', async () => {
    const client = clients.create({ key: 'wrong-key' });
    const error = await waitForEvent(client.connection, 'error');
    assert.equal(error.error.data.code, 4001);
    await waitForState(client, 'disconnected');
  });
});
