// User authentication with pusher-js 8: signin, sendToUser, watchlist events, and terminating a user's connections.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import { startAuthServer } from '../lib/auth-server.mjs';
import {
  ClientPool,
  Recorder,
  WAIT_MS,
  recordFrames,
  serverSdk,
  subscribe,
  uniqueName,
  waitForEvent,
  waitForState,
} from '../lib/clients.mjs';
import { startHerald } from '../lib/herald.mjs';

const APP_ID = '301';
const MAX_WATCHLIST = 3;

/** Signs in and resolves once Herald confirmed the `#server-to-user-<id>` subscription pusher-js makes next. */
async function signIn(client, userId) {
  const frames = recordFrames(client);
  client.signin();
  await frames.until(
    (events) =>
      events.some(
        ({ data }) =>
          data.event === 'pusher_internal:subscription_succeeded' && data.channel === `#server-to-user-${userId}`,
      ),
    { label: `the user channel of ${userId}` },
  );
  frames.stop();
  assert.equal(client.user.user_data.id, userId);
}

describe('users with pusher-js 8 and the Node server SDK', () => {
  let herald;
  let authServer;
  let server;
  let clients;

  before(async () => {
    herald = await startHerald({
      apps: {
        [APP_ID]: {
          key: 'users-key',
          secret: 'users-secret',
          watchlist_events: true,
          limits: { max_watchlist: MAX_WATCHLIST },
        },
      },
    });
    server = serverSdk(herald, APP_ID);
    authServer = await startAuthServer(server);
    clients = new ClientPool(herald, { appId: APP_ID, authServer });
  });

  afterEach(() => clients.disconnectAll());

  after(async () => {
    await authServer?.close();
    await herald?.dispose();
  });

  test('signin succeeds with the user data the app server signed', async () => {
    const userId = uniqueName('dana-');
    const client = await clients.connected({ user: { id: userId, name: 'Dana' } });
    const frames = recordFrames(client);
    await signIn(client, userId);
    assert.deepEqual(client.user.user_data, { id: userId, user_info: { name: 'Dana' } });
    const success = frames.data.find((frame) => frame.event === 'pusher:signin_success');
    assert.equal(typeof success.data.user_data, 'string', 'user_data is echoed as the signed string');
    const userAuth = authServer.requests.find((request) => request.path === '/pusher/user-auth');
    assert.ok(userAuth, 'pusher-js called the user authentication endpoint');
  });

  test('sendToUser reaches every signed-in connection of that user and nobody else', async () => {
    const userId = uniqueName('erin-');
    const otherId = uniqueName('frank-');
    const firstTab = await clients.connected({ user: { id: userId } });
    const secondTab = await clients.connected({ user: { id: userId } });
    const other = await clients.connected({ user: { id: otherId } });
    await Promise.all([signIn(firstTab, userId), signIn(secondTab, userId), signIn(other, otherId)]);

    const otherInvoices = new Recorder(other.user, 'invoice');
    const first = waitForEvent(firstTab.user, 'invoice');
    const second = waitForEvent(secondTab.user, 'invoice');
    await server.sendToUser(userId, 'invoice', { total: 99.5 });
    assert.deepEqual(await first, { total: 99.5 });
    assert.deepEqual(await second, { total: 99.5 });

    const barrier = waitForEvent(other.user, 'barrier');
    await server.sendToUser(otherId, 'barrier', { for: otherId });
    assert.deepEqual(await barrier, { for: otherId });
    assert.equal(otherInvoices.events.length, 0);
  });

  test('watchlist: online when a watched user signs in, offline when their last connection closes', async () => {
    const alreadyOnline = uniqueName('wl-early-');
    const later = uniqueName('wl-later-');
    const early = await clients.connected({ user: { id: alreadyOnline } });
    await signIn(early, alreadyOnline);

    const watcherId = uniqueName('watcher-');
    const watcher = await clients.connected({ user: { id: watcherId }, watchlist: [alreadyOnline, later] });
    const online = new Recorder(watcher.user.watchlist, 'online');
    const offline = new Recorder(watcher.user.watchlist, 'offline');
    const onlineIds = () => online.data.flatMap((event) => event.user_ids);
    const offlineIds = () => offline.data.flatMap((event) => event.user_ids);
    await signIn(watcher, watcherId);
    await online.until(() => onlineIds().includes(alreadyOnline), { label: `${alreadyOnline} online` });
    assert.equal(online.data[0].name, 'online');
    assert.ok(!onlineIds().includes(later));

    const lateClient = await clients.connected({ user: { id: later } });
    await signIn(lateClient, later);
    await online.until(() => onlineIds().includes(later), { label: `${later} online` });

    lateClient.disconnect();
    await offline.until(() => offlineIds().includes(later), { label: `${later} offline` });
    assert.equal(offline.data.at(-1).name, 'offline');
    assert.ok(!offlineIds().includes(alreadyOnline));
  });

  test('a watchlist over the limit signs in, then gets a 4302 error', async () => {
    const userId = uniqueName('greedy-');
    const watchlist = Array.from({ length: MAX_WATCHLIST + 1 }, (_, index) => `watched-${index}`);
    const client = await clients.connected({ user: { id: userId }, watchlist });
    const error = waitForEvent(client.connection, 'error', { filter: (event) => event.data?.code === 4302 });
    await signIn(client, userId);
    const { type, data } = await error;
    assert.equal(type, 'PusherError');
    assert.equal(typeof data.message, 'string');
    assert.equal(client.connection.state, 'connected');
  });

  test('a presence subscription without channel_data takes the signed-in user', async () => {
    const userId = uniqueName('signed-');
    const channelName = uniqueName('presence-signed-');
    const client = await clients.connected({
      user: { id: userId, name: 'Signed In' },
      channelAuthorization: {
        // The app server signs only socket_id:channel, as it may once the user signed in.
        customHandler: ({ socketId, channelName: name }, callback) => {
          callback(null, server.authorizeChannel(socketId, name));
        },
      },
    });
    await signIn(client, userId);
    const observer = await clients.connected({ user: { id: 'observer' } });
    const observerChannel = await subscribe(observer, channelName);
    const added = waitForEvent(observerChannel, 'pusher:member_added');
    const channel = await subscribe(client, channelName);
    assert.deepEqual(channel.members.me, { id: userId, info: { name: 'Signed In' } });
    assert.deepEqual(await added, { id: userId, info: { name: 'Signed In' } });
  });

  test('terminateUserConnections closes signed-in connections with 4009 and pusher-js stays disconnected', async () => {
    const userId = uniqueName('ted-');
    const signedIn = await clients.connected({ user: { id: userId } });
    await signIn(signedIn, userId);
    // Same user id, but only in a presence channel: not signed in, so not terminated.
    const presenceOnly = await clients.connected({ user: { id: userId } });
    const channelName = uniqueName('presence-ted-');
    const presenceChannel = await subscribe(presenceOnly, channelName);

    const closeError = waitForEvent(signedIn.connection, 'error', {
      filter: (error) => error.data?.code === 4009,
      label: 'a 4009 error',
    });
    const states = new Recorder(signedIn.connection, 'state_change');
    await server.terminateUserConnections(userId);
    const error = await closeError;
    assert.equal(error.type, 'PusherError');
    await waitForState(signedIn, 'disconnected');

    const barrier = waitForEvent(presenceChannel, 'still-here');
    await server.trigger(channelName, 'still-here', { ok: true });
    assert.deepEqual(await barrier, { ok: true });
    assert.equal(presenceOnly.connection.state, 'connected');
    assert.equal(signedIn.connection.state, 'disconnected', 'pusher-js does not reconnect after 4009');
    assert.deepEqual(
      states.data.map((change) => change.current),
      ['disconnected'],
      'connected -> disconnected, with no reconnect attempt',
    );
  });

  test('a user may reconnect after being terminated', { timeout: 4 * WAIT_MS }, async () => {
    const userId = uniqueName('phoenix-');
    const client = await clients.connected({ user: { id: userId } });
    await signIn(client, userId);
    const closed = waitForState(client, 'disconnected');
    await server.terminateUserConnections(userId);
    await closed;

    client.connect();
    await waitForState(client, 'connected');
    await signIn(client, userId);
    const received = waitForEvent(client.user, 'welcome-back');
    await server.sendToUser(userId, 'welcome-back', { again: true });
    assert.deepEqual(await received, { again: true });
  });
});
