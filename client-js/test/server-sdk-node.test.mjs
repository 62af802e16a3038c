// The official `pusher` Node SDK against Herald's REST API, checked through what pusher-js 8 clients receive.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import { startAuthServer } from '../lib/auth-server.mjs';
import {
  ClientPool,
  Recorder,
  pollUntil,
  serverSdk,
  subscribe,
  uniqueName,
  waitForEvent,
} from '../lib/clients.mjs';
import { startHerald } from '../lib/herald.mjs';

const APP_ID = '601';

/** The SDK rejects with a RequestError carrying the HTTP status and the raw body. */
async function requestError(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('the request was expected to fail');
}

describe('the pusher Node server SDK', () => {
  let herald;
  let authServer;
  let server;
  let clients;

  before(async () => {
    herald = await startHerald({
      apps: { [APP_ID]: { key: 'node-sdk-key', secret: 'node-sdk-secret' } },
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

  test('trigger to several channels delivers once on each', async () => {
    const names = [uniqueName('multi-a-'), uniqueName('multi-b-'), uniqueName('private-multi-c-')];
    const client = await clients.connected();
    const channels = await Promise.all(names.map((name) => subscribe(client, name)));
    const recorders = channels.map((channel) => new Recorder(channel, 'fanout'));
    const response = await server.trigger(names, 'fanout', { to: 'all' });
    assert.equal(response.status, 200);
    await Promise.all(recorders.map((recorder) => recorder.count(1)));

    const barrier = waitForEvent(channels[0], 'barrier');
    await server.trigger(names[0], 'barrier', {});
    await barrier;
    assert.deepEqual(
      recorders.map((recorder) => recorder.data),
      [[{ to: 'all' }], [{ to: 'all' }], [{ to: 'all' }]],
    );
  });

  test('trigger with socket_id skips that connection only', async () => {
    const channelName = uniqueName('exclude-');
    const author = await clients.connected();
    const reader = await clients.connected();
    const authorChannel = await subscribe(author, channelName);
    const readerChannel = await subscribe(reader, channelName);
    const authorEvents = new Recorder(authorChannel, 'comment');

    const readerGot = waitForEvent(readerChannel, 'comment');
    await server.trigger(channelName, 'comment', { text: 'mine' }, { socket_id: author.connection.socket_id });
    assert.deepEqual(await readerGot, { text: 'mine' });

    const barrier = waitForEvent(authorChannel, 'barrier');
    await server.trigger(channelName, 'barrier', {});
    await barrier;
    assert.equal(authorEvents.events.length, 0, 'the excluded socket did not get the event');
  });

  /** Two users on three connections in a presence channel, and one subscriber on a public channel. */
  async function occupiedChannels() {
    const presenceName = uniqueName('presence-info-');
    const publicName = uniqueName('info-');
    const alice = await clients.connected({ user: { id: 'alice' } });
    const aliceAgain = await clients.connected({ user: { id: 'alice' } });
    const bob = await clients.connected({ user: { id: 'bob' } });
    for (const client of [alice, aliceAgain, bob]) {
      await subscribe(client, presenceName);
    }
    await subscribe(bob, publicName);
    return { presenceName, publicName };
  }

  test('trigger with info returns user_count and subscription_count of a presence channel', async () => {
    const { presenceName } = await occupiedChannels();
    const response = await server.trigger(presenceName, 'counted', { x: 1 }, { info: 'user_count,subscription_count' });
    assert.deepEqual(await response.json(), {
      channels: { [presenceName]: { user_count: 2, subscription_count: 3 } },
    });
  });

  test('trigger with info to presence and public channels together omits user_count where it does not apply', async () => {
    // The hosted HTTP API reference shows exactly this response shape for a mixed trigger.
    const { presenceName, publicName } = await occupiedChannels();
    const response = await server.trigger([presenceName, publicName], 'counted', { x: 1 }, {
      info: 'user_count,subscription_count',
    });
    assert.deepEqual(await response.json(), {
      channels: {
        [presenceName]: { user_count: 2, subscription_count: 3 },
        [publicName]: { subscription_count: 1 },
      },
    });
  });

  test('triggerBatch delivers every event of the batch, with info when asked', async () => {
    const first = uniqueName('batch-a-');
    const second = uniqueName('batch-b-');
    const client = await clients.connected();
    const firstChannel = await subscribe(client, first);
    const secondChannel = await subscribe(client, second);
    const received = Promise.all([
      waitForEvent(firstChannel, 'one'),
      waitForEvent(secondChannel, 'two'),
      waitForEvent(firstChannel, 'three'),
    ]);
    const response = await server.triggerBatch([
      { channel: first, name: 'one', data: { n: 1 } },
      { channel: second, name: 'two', data: { n: 2 }, info: 'subscription_count' },
      { channel: first, name: 'three', data: 'three as text' },
    ]);
    assert.deepEqual(await received, [{ n: 1 }, { n: 2 }, 'three as text']);
    assert.deepEqual(await response.json(), { batch: [{}, { subscription_count: 1 }, {}] });
  });

  test('GET /channels lists occupied channels, filtered by prefix, with user_count for presence', async () => {
    const prefix = uniqueName('presence-list-');
    const roomA = `${prefix}-a`;
    const roomB = `${prefix}-b`;
    const publicName = uniqueName('listed-');
    const userId = uniqueName('lister-');
    const carol = await clients.connected({ user: { id: userId } });
    const dave = await clients.connected({ user: { id: 'dave' } });
    await subscribe(carol, roomA);
    await subscribe(dave, roomA);
    await subscribe(dave, roomB);
    await subscribe(carol, publicName);
    // A signed-in user has a #server-to-user channel; it is not listed.
    const signedIn = waitForEvent(carol.connection, 'message', {
      filter: (frame) =>
        frame.event === 'pusher_internal:subscription_succeeded' && frame.channel === `#server-to-user-${userId}`,
    });
    carol.signin();
    await signedIn;

    const filtered = await (await server.get({
      path: '/channels',
      params: { filter_by_prefix: prefix, info: 'user_count' },
    })).json();
    assert.deepEqual(filtered, { channels: { [roomA]: { user_count: 2 }, [roomB]: { user_count: 1 } } });

    const all = await (await server.get({ path: '/channels' })).json();
    assert.deepEqual(all.channels[publicName], {});
    assert.deepEqual(all.channels[roomA], {});
    assert.ok(!Object.keys(all.channels).some((name) => name.startsWith('#')), 'user channels are not listed');
  });

  test('GET /channels/{name} reports occupation and the requested counts', async () => {
    const presenceName = uniqueName('presence-one-');
    const cacheName = uniqueName('cache-one-');
    const client = await clients.connected({ user: { id: 'erin' } });
    await subscribe(client, presenceName);
    const cacheChannel = await subscribe(client, cacheName);
    const cached = waitForEvent(cacheChannel, 'latest');
    await server.trigger(cacheName, 'latest', { v: 3 });
    await cached;

    const presence = await (await server.get({
      path: `/channels/${presenceName}`,
      params: { info: 'user_count,subscription_count' },
    })).json();
    assert.deepEqual(presence, { occupied: true, user_count: 1, subscription_count: 1 });

    const cache = await (await server.get({ path: `/channels/${cacheName}`, params: { info: 'cache' } })).json();
    assert.equal(cache.occupied, true);
    assert.equal(cache.cache.data, JSON.stringify({ v: 3 }));
    assert.ok(cache.cache.ttl > 0);

    const empty = await (await server.get({ path: `/channels/${uniqueName('nobody-')}` })).json();
    assert.deepEqual(empty, { occupied: false });
  });

  test('GET /channels/{name}/users lists presence members with string ids, and follows leaves', async () => {
    const channelName = uniqueName('presence-users-');
    const frank = await clients.connected({ user: { id: 'frank' } });
    const gina = await clients.connected({ user: { id: 'gina' } });
    await subscribe(frank, channelName);
    await subscribe(gina, channelName);
    const users = await (await server.get({ path: `/channels/${channelName}/users` })).json();
    assert.deepEqual(users.users.map((user) => user.id).sort(), ['frank', 'gina']);

    gina.disconnect();
    await pollUntil(async () => {
      const body = await (await server.get({ path: `/channels/${channelName}/users` })).json();
      return body.users.length === 1 && body.users[0].id === 'frank';
    }, { label: 'gina to leave the member list' });
  });

  test('REST errors come back as plain text with the hosted status codes', async () => {
    const badInfo = await requestError(server.get({ path: '/channels', params: { info: 'user_count' } }));
    assert.equal(badInfo.status, 400);
    assert.ok(badInfo.body.length > 0);
    assert.throws(() => JSON.parse(badInfo.body), SyntaxError, `a plain-text body: ${badInfo.body}`);

    const usersOfPublic = await requestError(server.get({ path: `/channels/${uniqueName('public-')}/users` }));
    assert.equal(usersOfPublic.status, 400);

    const wrongSecret = serverSdk(herald, APP_ID, { secret: 'wrong-secret' });
    const unauthorized = await requestError(wrongSecret.trigger('anything', 'event', {}));
    assert.equal(unauthorized.status, 401);
    assert.throws(() => JSON.parse(unauthorized.body), SyntaxError);

    const tooLarge = await requestError(server.trigger('anything', 'big', 'x'.repeat(11 * 1024)));
    assert.equal(tooLarge.status, 413);

    const elevenEvents = Array.from({ length: 11 }, (_, index) => ({ channel: 'anything', name: 'e', data: `${index}` }));
    const tooManyEvents = await requestError(server.triggerBatch(elevenEvents));
    assert.equal(tooManyEvents.status, 400);

    const unknownApp = serverSdk(herald, APP_ID, { appId: '999999' });
    const notFound = await requestError(unknownApp.get({ path: '/channels' }));
    assert.equal(notFound.status, 404);
  });
});
