// A tiny app server with the two endpoints pusher-js calls, signing with the official `pusher` Node SDK.
// The "session" is simulated: the client names its user in the auth params (pusher-js `params` option).

import { createServer } from 'node:http';

/** Reads a whole request body as a string. */
async function readBody(request) {
  const chunks = [];
  for await (const chunk of request) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function userFromParams(form) {
  const userId = form.get('user_id');
  if (!userId) {
    return null;
  }
  const user = { id: userId, user_info: { name: form.get('user_name') || userId } };
  const watchlist = form.get('watchlist');
  if (watchlist) {
    user.watchlist = watchlist.split(',');
  }
  return user;
}

/**
 * Serves `/pusher/auth` and `/pusher/user-auth` (and Laravel's `/broadcasting/auth` and `/broadcasting/user-auth`).
 * Channels whose name contains `forbidden` are refused with 403, like an app refusing a user.
 */
export async function startAuthServer(serverSdk) {
  const requests = [];
  const server = createServer(async (request, response) => {
    const body = await readBody(request);
    const form = new URLSearchParams(body);
    const path = new URL(request.url, 'http://localhost').pathname;
    requests.push({ path, form: Object.fromEntries(form), headers: request.headers });
    const reply = (status, payload) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(payload));
    };
    try {
      const socketId = form.get('socket_id');
      const user = userFromParams(form);
      if (request.method === 'POST' && (path === '/pusher/auth' || path === '/broadcasting/auth')) {
        const channel = form.get('channel_name');
        if (channel.includes('forbidden')) {
          reply(403, { message: 'This user may not join that channel.' });
          return;
        }
        if (channel.startsWith('presence-')) {
          if (!user) {
            reply(403, { message: 'Presence channels need a user.' });
            return;
          }
          reply(200, serverSdk.authorizeChannel(socketId, channel, { user_id: user.id, user_info: user.user_info }));
          return;
        }
        reply(200, serverSdk.authorizeChannel(socketId, channel));
        return;
      }
      if (request.method === 'POST' && (path === '/pusher/user-auth' || path === '/broadcasting/user-auth')) {
        if (!user) {
          reply(403, { message: 'Not logged in.' });
          return;
        }
        reply(200, serverSdk.authenticateUser(socketId, user));
        return;
      }
      reply(404, { message: 'Not found.' });
    } catch (error) {
      reply(500, { message: String(error) });
    }
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((done) => {
        server.closeAllConnections();
        server.close(done);
      }),
  };
}
