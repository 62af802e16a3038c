// Turns Herald's page settings (herald-config.js), the URL's query and the page's own location into
// what the page connects with. Pure: the browser objects are parameters, so tests can pass their own.

const DEFAULT_CHANNEL = 'offers';
const DEFAULT_EVENT = 'new_offer';

/**
 * Returns `{ appKey, channel, event, pusherOptions }`, or `{ problem }` when the page cannot connect.
 *
 * `config` is `window.HERALD_CONFIG` (absent when herald-config.js did not load), `query` a
 * `URLSearchParams` whose `key`, `host`, `port`, `channel` and `event` override it for testing,
 * and `location` the page's `window.location`.
 */
export function readSettings(config, query, location) {
  const served = isPlainObject(config) ? config : {};
  const appKey = firstText(query.get('key'), served.appKey);
  if (!appKey) {
    return {
      problem: isPlainObject(config)
        ? 'Herald has no app key for this page.'
        : 'The page settings (herald-config.js) did not load. Open this page through Herald.',
    };
  }
  const forceTLS = served.forceTLS === true;
  const ownPort = location.port ? Number(location.port) : location.protocol === 'https:' ? 443 : 80;
  const port = firstPort(query.get('port'), served.wsPort) || ownPort;
  const pusherOptions = {
    // pusher-js insists on a cluster even though wsHost decides where it connects.
    cluster: 'herald',
    wsHost: firstText(query.get('host'), served.wsHost) || location.hostname,
    wsPort: port,
    wssPort: port,
    // pusher-js uses TLS unless this is exactly false (and always on an https page).
    forceTLS,
    // Herald speaks only WebSocket; without this pusher-js would fall back to Pusher's own hosts.
    enabledTransports: ['ws', 'wss'],
  };
  if (typeof served.wsPath === 'string' && served.wsPath !== '') {
    pusherOptions.wsPath = served.wsPath;
  }
  return {
    appKey,
    channel: firstText(query.get('channel'), served.channel) || DEFAULT_CHANNEL,
    event: firstText(query.get('event'), served.event) || DEFAULT_EVENT,
    pusherOptions,
  };
}

function isPlainObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function firstText(...candidates) {
  for (const candidate of candidates) {
    if (typeof candidate === 'string' && candidate.trim() !== '') {
      return candidate.trim();
    }
  }
  return '';
}

/** The first candidate that is a whole number from 1 to 65535 (given as a number or as digits), else 0. */
function firstPort(...candidates) {
  for (const candidate of candidates) {
    const port = typeof candidate === 'string' && /^\d+$/.test(candidate) ? Number(candidate) : candidate;
    if (Number.isInteger(port) && port > 0 && port <= 65535) {
      return port;
    }
  }
  return 0;
}
