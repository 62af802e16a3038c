// Webhooks as the official SDKs receive them: Herald posts to a real endpoint, and the Node SDK's
// pusher.webhook() and the Python SDK's validate_webhook() check every request and read its events.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { startAuthServer } from '../lib/auth-server.mjs';
import { ClientPool, serverSdk, subscribe, uniqueName, waitForEvent, WAIT_MS } from '../lib/clients.mjs';
import { startHerald } from '../lib/herald.mjs';
import { assertVenv, pythonValidateWebhook } from '../lib/python.mjs';

const APP_ID = '901';
const APP = { key: 'webhook-key', secret: 'webhook-secret' };

/** A webhook endpoint that keeps every request as received: raw headers and raw body. */
async function startReceiver() {
  const received = [];
  const waiting = [];
  const server = createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const hook = { headers: request.headers, rawHeaders: request.rawHeaders, body: Buffer.concat(chunks).toString('utf8') };
      response.writeHead(200).end();
      const waiter = waiting.shift();
      if (waiter) {
        waiter(hook);
      } else {
        received.push(hook);
      }
    });
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${server.address().port}/pusher/webhook`,
    /** The next request, within WAIT_MS. */
    next() {
      if (received.length > 0) {
        return Promise.resolve(received.shift());
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no webhook arrived in time')), WAIT_MS);
        waiting.push((hook) => {
          clearTimeout(timer);
          resolve(hook);
        });
      });
    },
    close: () => new Promise((done) => server.close(done)),
  };
}

describe('webhooks verified by the official server SDKs', () => {
  let herald;
  let receiver;
  let server;
  let authServer;
  let clients;

  before(async () => {
    assertVenv();
    receiver = await startReceiver();
    herald = await startHerald({
      apps: { [APP_ID]: { ...APP, client_events: true, webhooks: [{ url: receiver.url }] } },
      webhooks: { grace: '200ms' },
    });
    server = serverSdk(herald, APP_ID);
    authServer = await startAuthServer(server);
    clients = new ClientPool(herald, { appId: APP_ID, authServer });
  });

  after(async () => {
    clients?.disconnectAll();
    await authServer?.close();
    await herald?.dispose();
    await receiver?.close();
  });

  /** Checks one request with both SDKs and returns its events as the Node SDK reads them. */
  async function verified(hook) {
    const webhook = server.webhook({ headers: hook.headers, rawBody: hook.body });
    assert.equal(webhook.isValid(), true, `Node SDK refused ${hook.body}`);
    assert.ok(Math.abs(webhook.getTime().getTime() - Date.now()) < 60_000, 'time_ms is the production time');
    const python = await pythonValidateWebhook({
      key: APP.key,
      secret: APP.secret,
      signature: hook.headers['x-pusher-signature'],
      body: hook.body,
    });
    assert.equal(python.valid, true, `Python SDK refused ${hook.body}`);
    assert.deepEqual(python.body.events, webhook.getEvents());
    return webhook.getEvents();
  }

  test('headers are exactly what the SDK verifiers require', async () => {
    const client = await clients.connected();
    const channelName = uniqueName('hooks-headers-');
    await subscribe(client, channelName);
    const hook = await receiver.next();
    assert.deepEqual(await verified(hook), [{ name: 'channel_occupied', channel: channelName }]);
    // Node only parses the exact content type; PHP looks headers up with this exact casing.
    assert.equal(hook.headers['content-type'], 'application/json');
    for (const name of ['X-Pusher-Key', 'X-Pusher-Signature', 'Content-Type']) {
      assert.ok(hook.rawHeaders.includes(name), `${name} is sent in title case: ${hook.rawHeaders}`);
    }
    assert.equal(hook.headers['x-pusher-key'], APP.key);
    client.unsubscribe(channelName);
    assert.deepEqual(await verified(await receiver.next()), [{ name: 'channel_vacated', channel: channelName }]);
  });

  test('presence and client events arrive signed, with the fields the SDKs expose', async () => {
    const alice = await clients.connected({ user: { id: 'alice' } });
    const bob = await clients.connected({ user: { id: 'bob' } });
    const channelName = uniqueName('presence-hooks-');
    await subscribe(alice, channelName);
    assert.deepEqual(await verified(await receiver.next()), [{ name: 'channel_occupied', channel: channelName }]);
    assert.deepEqual(await verified(await receiver.next()), [
      { name: 'member_added', channel: channelName, user_id: 'alice' },
    ]);
    const bobChannel = await subscribe(bob, channelName);
    assert.deepEqual(await verified(await receiver.next()), [
      { name: 'member_added', channel: channelName, user_id: 'bob' },
    ]);
    const relayed = waitForEvent(alice.channel(channelName), 'client-wave');
    bobChannel.trigger('client-wave', { hi: true });
    await relayed;
    assert.deepEqual(await verified(await receiver.next()), [
      {
        name: 'client_event',
        channel: channelName,
        event: 'client-wave',
        data: '{"hi":true}',
        socket_id: bob.connection.socket_id,
        user_id: 'bob',
      },
    ]);
    bob.unsubscribe(channelName);
    assert.deepEqual(await verified(await receiver.next()), [
      { name: 'member_removed', channel: channelName, user_id: 'bob' },
    ]);
  });

  test('a tampered body or a wrong secret fails both verifiers', async () => {
    const client = await clients.connected();
    await subscribe(client, uniqueName('hooks-tamper-'));
    const hook = await receiver.next();
    const tampered = hook.body.replace('channel_occupied', 'channel_vacated');
    assert.equal(server.webhook({ headers: hook.headers, rawBody: tampered }).isValid(), false);
    const python = await pythonValidateWebhook({
      key: APP.key,
      secret: 'not-the-secret',
      signature: hook.headers['x-pusher-signature'],
      body: hook.body,
    });
    assert.equal(python.valid, false);
  });
});
