// The unmodified Pusher libraries, configured the way self-hosters point them at their own server,
// and promise helpers that wait for their events with bounded timeouts (never fixed sleeps).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** pusher-js 8 (its Node build, with its own WebSocket client and tweetnacl). */
export const Pusher = require('pusher-js');
/** pusher-js 7, installed under the npm alias `pusher-js-7`. */
export const Pusher7 = require('pusher-js-7');
/** The official `pusher` server SDK for Node. */
export const PusherServer = require('pusher');

/** Upper bound for anything Herald should do at once (a delivery, a subscription, a close). */
export const WAIT_MS = 5_000;

/** The version npm installed, read from node_modules (some packages do not export their package.json). */
export function installedVersion(packageName) {
  const manifest = join(packageDir, 'node_modules', packageName, 'package.json');
  return JSON.parse(readFileSync(manifest, 'utf8')).version;
}

/** The server SDK for one app of a running Herald. */
export function serverSdk(herald, appId, extra = {}) {
  const app = herald.apps[appId];
  return new PusherServer({
    appId: String(appId),
    key: app.key,
    secret: app.secret,
    host: herald.host,
    port: String(herald.port),
    useTLS: false,
    ...extra,
  });
}

/** pusher-js options as a self-hosted app writes them; `user` fills the auth params the app server reads. */
export function clientOptions(herald, { authServer, user, watchlist, ...extra } = {}) {
  const params = {};
  if (user) {
    params.user_id = user.id;
    params.user_name = user.name ?? user.id;
  }
  if (watchlist) {
    params.watchlist = watchlist.join(',');
  }
  const options = {
    cluster: 'herald',
    wsHost: herald.host,
    wsPort: herald.port,
    forceTLS: false,
    enabledTransports: ['ws'],
  };
  if (authServer) {
    options.channelAuthorization = { endpoint: `${authServer.url}/pusher/auth`, transport: 'ajax', params };
    options.userAuthentication = { endpoint: `${authServer.url}/pusher/user-auth`, transport: 'ajax', params };
  }
  return { ...options, ...extra };
}

/**
 * Resolves with the first `eventName` emitted by a pusher-js dispatcher (connection, channel, user, watchlist)
 * that passes `filter`; rejects after `timeout` ms.
 * With `withMetadata` it resolves with `{data, metadata}` (pusher-js puts a presence sender's `user_id` in metadata).
 */
export function waitForEvent(
  target,
  eventName,
  { filter = () => true, timeout = WAIT_MS, label = eventName, withMetadata = false } = {},
) {
  return new Promise((resolve, reject) => {
    const onEvent = (data, metadata) => {
      if (!filter(data, metadata)) {
        return;
      }
      clearTimeout(timer);
      target.unbind(eventName, onEvent);
      resolve(withMetadata ? { data, metadata } : data);
    };
    const timer = setTimeout(() => {
      target.unbind(eventName, onEvent);
      reject(new Error(`timed out after ${timeout} ms waiting for ${label}`));
    }, timeout);
    target.bind(eventName, onEvent);
  });
}

/** Resolves when `pusher.connection.state` is `state`; rejects after `timeout` ms. */
export function waitForState(pusher, state, timeout = WAIT_MS) {
  if (pusher.connection.state === state) {
    return Promise.resolve();
  }
  return waitForEvent(pusher.connection, 'state_change', {
    filter: (change) => change.current === state,
    timeout,
    label: `connection state ${state} (now ${pusher.connection.state})`,
  });
}

/** Everything one event name delivered, with a way to wait until the list satisfies a condition. */
export class Recorder {
  constructor(target, eventName) {
    this.eventName = eventName;
    this.events = [];
    this.waiters = new Set();
    this.onEvent = (data, metadata) => {
      this.events.push({ data, metadata });
      for (const waiter of this.waiters) {
        waiter();
      }
    };
    this.target = target;
    target.bind(eventName, this.onEvent);
  }

  get data() {
    return this.events.map((event) => event.data);
  }

  /** Resolves with the events once `condition(events)` holds; rejects after `timeout` ms. */
  until(condition, { timeout = WAIT_MS, label = this.eventName } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (condition(this.events)) {
          clearTimeout(timer);
          this.waiters.delete(check);
          resolve(this.events);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${timeout} ms waiting for ${label}; got ${JSON.stringify(this.data)}`));
      }, timeout);
      this.waiters.add(check);
      check();
    });
  }

  count(n, options) {
    return this.until((events) => events.length >= n, { label: `${n} × ${this.eventName}`, ...options });
  }

  stop() {
    this.target.unbind(this.eventName, this.onEvent);
  }
}

/** Records every frame pusher-js decoded on this connection (including `pusher:` and `pusher_internal:` ones). */
export function recordFrames(pusher) {
  return new Recorder(pusher.connection, 'message');
}

/**
 * Makes pusher-js clients for one Herald app and disconnects them all at the end of a test,
 * so no socket or retry timer outlives it.
 */
export class ClientPool {
  constructor(herald, { appId, authServer, PusherClass = Pusher } = {}) {
    this.herald = herald;
    this.appId = appId;
    this.authServer = authServer;
    this.PusherClass = PusherClass;
    this.clients = [];
  }

  /** A new pusher-js client (it starts connecting at once). */
  create(options = {}) {
    const { appId = this.appId, PusherClass = this.PusherClass, key, ...rest } = options;
    const appKey = key ?? this.herald.apps[appId].key;
    const client = new PusherClass(appKey, clientOptions(this.herald, { authServer: this.authServer, ...rest }));
    this.clients.push(client);
    return client;
  }

  /** A new client, once it is connected. */
  async connected(options) {
    const client = this.create(options);
    await waitForState(client, 'connected');
    return client;
  }

  disconnectAll() {
    for (const client of this.clients.splice(0)) {
      client.disconnect();
    }
  }
}

/** Subscribes and resolves with the channel once Herald confirmed the subscription. */
export async function subscribe(client, channelName, timeout = WAIT_MS) {
  const channel = client.subscribe(channelName);
  if (channel.subscribed) {
    return channel;
  }
  await new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      channel.unbind('pusher:subscription_succeeded', onSuccess);
      channel.unbind('pusher:subscription_error', onError);
    };
    const onSuccess = () => {
      cleanup();
      resolve();
    };
    const onError = (error) => {
      cleanup();
      reject(new Error(`subscription to ${channelName} failed: ${JSON.stringify(error)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeout} ms subscribing to ${channelName}`));
    }, timeout);
    channel.bind('pusher:subscription_succeeded', onSuccess);
    channel.bind('pusher:subscription_error', onError);
  });
  return channel;
}

/** A channel name no other test uses. */
let channelCounter = 0;
export function uniqueName(prefix) {
  channelCounter += 1;
  return `${prefix}${process.pid}-${channelCounter}`;
}

/**
 * Calls `probe` until it returns a value other than `undefined`/`false`, for state only visible by asking
 * (the REST API); rejects after `timeout` ms.
 */
export async function pollUntil(probe, { timeout = WAIT_MS, label = 'condition', interval = 25 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last !== undefined && last !== false) {
      return last;
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${label}`);
}

/** `GET /channels/{name}?info=…` through the Node SDK, parsed. */
export async function channelInfo(server, channelName, info = 'subscription_count') {
  const response = await server.get({ path: `/channels/${channelName}`, params: { info } });
  return response.json();
}

/**
 * The Pusher code inside a pusher-js connection `error` event: `{type:'PusherError', data:{code}}` for a
 * `pusher:error` frame or a close on an open connection, `{type:'WebSocketError', error:{…same…}}` for a
 * refusal during the handshake.
 */
export function errorCode(error) {
  return error?.data?.code ?? error?.error?.data?.code;
}
