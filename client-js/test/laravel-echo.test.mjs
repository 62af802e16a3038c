// Laravel Echo 2 with its `pusher` broadcaster (pusher-js 8), as a Laravel front end uses it.
// The app server plays Laravel's part: /broadcasting/auth signs channels and the Node SDK broadcasts events.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';

import Echo from 'laravel-echo';

import { startAuthServer } from '../lib/auth-server.mjs';
import { Pusher, Recorder, WAIT_MS, installedVersion, serverSdk, uniqueName, waitForState } from '../lib/clients.mjs';
import { startHerald } from '../lib/herald.mjs';

const APP_ID = '901';
const MASTER_KEY_BASE64 = randomBytes(32).toString('base64');

/** Resolves with the first value `register(callback)` passes to its callback; rejects after `timeout` ms. */
function nextCall(register, label, timeout = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeout} ms waiting for ${label}`)), timeout);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** Resolves once Echo's channel is subscribed (Echo's `subscribed` callback, unless that already happened). */
function subscribed(echoChannel, label) {
  if (echoChannel.subscription.subscribed) {
    return Promise.resolve();
  }
  return nextCall((callback) => echoChannel.subscribed(callback), `subscription to ${label}`);
}

describe(`laravel-echo ${installedVersion('laravel-echo')} with the pusher broadcaster`, () => {
  let herald;
  let authServer;
  let server;
  const echoes = [];

  /** An Echo instance for a logged-in Laravel user, connected. */
  async function echoFor(user) {
    const params = { user_id: user.id, user_name: user.name };
    const echo = new Echo({
      broadcaster: 'pusher',
      key: herald.apps[APP_ID].key,
      cluster: 'herald',
      wsHost: herald.host,
      wsPort: herald.port,
      forceTLS: false,
      enabledTransports: ['ws'],
      authEndpoint: `${authServer.url}/broadcasting/auth`,
      auth: { headers: {}, params },
      userAuthentication: { endpoint: `${authServer.url}/broadcasting/user-auth`, headers: {}, params },
      Pusher,
    });
    echoes.push(echo);
    await waitForState(echo.connector.pusher, 'connected');
    return echo;
  }

  before(async () => {
    herald = await startHerald({
      apps: { [APP_ID]: { key: 'echo-key', secret: 'echo-secret', client_events: true } },
    });
    server = serverSdk(herald, APP_ID, { encryptionMasterKeyBase64: MASTER_KEY_BASE64 });
    authServer = await startAuthServer(server);
  });

  afterEach(() => {
    for (const echo of echoes.splice(0)) {
      echo.disconnect();
    }
  });

  after(async () => {
    await authServer?.close();
    await herald?.dispose();
  });

  test('channel().listen receives a namespaced Laravel event and a broadcastAs name', async () => {
    const echo = await echoFor({ id: '1', name: 'Taylor' });
    const name = uniqueName('orders-');
    const channel = echo.channel(name);
    await subscribed(channel, name);
    const shipped = nextCall((callback) => channel.listen('OrderShipped', callback), 'OrderShipped');
    const custom = nextCall((callback) => channel.listen('.order.refunded', callback), '.order.refunded');
    await server.trigger(name, 'App\\Events\\OrderShipped', { order: { id: 1, total: 12.5 } });
    await server.trigger(name, 'order.refunded', { order: { id: 1 } });
    assert.deepEqual(await shipped, { order: { id: 1, total: 12.5 } });
    assert.deepEqual(await custom, { order: { id: 1 } });
  });

  test('private() is authorized at /broadcasting/auth and receives events', async () => {
    const echo = await echoFor({ id: '2', name: 'Abigail' });
    const name = uniqueName('orders.');
    const channel = echo.private(name);
    await subscribed(channel, `private-${name}`);
    const request = authServer.requests.find((entry) => entry.form.channel_name === `private-${name}`);
    assert.equal(request.path, '/broadcasting/auth');
    assert.equal(request.form.socket_id, echo.socketId());
    const updated = nextCall((callback) => channel.listen('OrderUpdated', callback), 'OrderUpdated');
    await server.trigger(`private-${name}`, 'App\\Events\\OrderUpdated', { status: 'packed' });
    assert.deepEqual(await updated, { status: 'packed' });
  });

  test('broadcast(...)->toOthers(): the socket id Echo reports is excluded', async () => {
    const author = await echoFor({ id: '3', name: 'Author' });
    const reader = await echoFor({ id: '4', name: 'Reader' });
    const name = uniqueName('comments-');
    const authorChannel = author.channel(name);
    const readerChannel = reader.channel(name);
    await subscribed(authorChannel, name);
    await subscribed(readerChannel, name);
    const authorEvents = new Recorder(author.connector.pusher.channel(name), 'App\\Events\\CommentPosted');
    const readerGot = nextCall((callback) => readerChannel.listen('CommentPosted', callback), 'CommentPosted');
    // Laravel takes the X-Socket-ID header (Echo's socketId()) and passes it on as socket_id.
    await server.trigger(name, 'App\\Events\\CommentPosted', { body: 'first!' }, { socket_id: author.socketId() });
    assert.deepEqual(await readerGot, { body: 'first!' });
    const barrier = nextCall((callback) => authorChannel.listen('Barrier', callback), 'Barrier');
    await server.trigger(name, 'App\\Events\\Barrier', {});
    await barrier;
    assert.equal(authorEvents.events.length, 0);
  });

  test('join(): here, joining and leaving', async () => {
    const name = uniqueName('chat.');
    const first = await echoFor({ id: '10', name: 'First' });
    const joiningSeen = [];
    const firstRoom = first.join(name);
    const firstHere = nextCall((callback) => firstRoom.here(callback), 'here');
    firstRoom.joining((user) => joiningSeen.push(user));
    const left = nextCall((callback) => firstRoom.leaving(callback), 'leaving');
    assert.deepEqual(await firstHere, [{ name: 'First' }]);

    const joined = nextCall((callback) => firstRoom.joining(callback), 'joining');
    const second = await echoFor({ id: '11', name: 'Second' });
    const secondHere = nextCall((callback) => second.join(name).here(callback), 'here');
    const members = await secondHere;
    assert.deepEqual(members.map((member) => member.name).sort(), ['First', 'Second']);
    assert.deepEqual(await joined, { name: 'Second' });

    second.leave(name);
    assert.deepEqual(await left, { name: 'Second' });
    assert.deepEqual(joiningSeen, [{ name: 'Second' }]);
  });

  test('whisper and listenForWhisper on private and presence channels', async () => {
    const privateName = uniqueName('typing.');
    const presenceName = uniqueName('room.');
    const alice = await echoFor({ id: '20', name: 'Alice' });
    const bob = await echoFor({ id: '21', name: 'Bob' });
    const alicePrivate = alice.private(privateName);
    const bobPrivate = bob.private(privateName);
    await subscribed(alicePrivate, privateName);
    await subscribed(bobPrivate, privateName);
    const privateWhisper = nextCall((callback) => bobPrivate.listenForWhisper('typing', callback), 'whisper');
    alicePrivate.whisper('typing', { name: 'Alice', typing: true });
    assert.deepEqual(await privateWhisper, { name: 'Alice', typing: true });

    const aliceRoom = alice.join(presenceName);
    const bobRoom = bob.join(presenceName);
    await subscribed(aliceRoom, presenceName);
    await subscribed(bobRoom, presenceName);
    const presenceWhisper = nextCall((callback) => aliceRoom.listenForWhisper('wave', callback), 'whisper');
    bobRoom.whisper('wave', { from: 'Bob' });
    assert.deepEqual(await presenceWhisper, { from: 'Bob' });
  });

  test('notification() on the private App.Models.User.{id} channel', async () => {
    const userId = uniqueName('');
    const echo = await echoFor({ id: userId, name: 'Notified' });
    const channel = echo.private(`App.Models.User.${userId}`);
    await subscribed(channel, `App.Models.User.${userId}`);
    const notified = nextCall((callback) => channel.notification(callback), 'notification');
    // What Laravel's BroadcastNotificationCreated sends: the notification's data plus id and type.
    const payload = { amount: 30, id: 'a6d4e0b2-0c2b-4d3a-9f3e-8b2c1d0e9f7a', type: 'App\\Notifications\\InvoicePaid' };
    await server.trigger(
      `private-App.Models.User.${userId}`,
      'Illuminate\\Notifications\\Events\\BroadcastNotificationCreated',
      payload,
    );
    assert.deepEqual(await notified, payload);
  });

  test('encryptedPrivate() decrypts what the SDK encrypted', async () => {
    const echo = await echoFor({ id: '30', name: 'Vault' });
    const name = uniqueName('vault.');
    const channel = echo.encryptedPrivate(name);
    await subscribed(channel, `private-encrypted-${name}`);
    const opened = nextCall((callback) => channel.listen('VaultOpened', callback), 'VaultOpened');
    await server.trigger(`private-encrypted-${name}`, 'App\\Events\\VaultOpened', { code: 1234 });
    assert.deepEqual(await opened, { code: 1234 });
  });
});
