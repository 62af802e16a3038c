// The page's connection state, derived from pusher-js's connection state. Pure.

/** What each page state says to the visitor. */
export const STATE_LABELS = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  failed: 'Not connected',
};

/**
 * Maps pusher-js's `connection.state` to one of `connecting`, `live`, `reconnecting` or `failed`.
 *
 * `live` needs the channel subscription too: before it succeeds, a published offer would be missed.
 * `wasLive` tells a first connection apart from a reconnection.
 */
export function pageState(connectionState, subscribed, wasLive) {
  switch (connectionState) {
    case 'connected':
      if (subscribed) {
        return 'live';
      }
      return wasLive ? 'reconnecting' : 'connecting';
    case 'initialized':
    case 'connecting':
    case 'unavailable':
      // pusher-js keeps retrying in all three.
      return wasLive ? 'reconnecting' : 'connecting';
    default:
      // 'failed' (no WebSocket in this browser) and 'disconnected' (Herald refused the
      // connection, e.g. an unknown app key): pusher-js does not retry either.
      return 'failed';
  }
}
