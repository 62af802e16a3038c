// A TCP load balancer in miniature: new connections go to the current target port, existing ones stay put.
// It lets a test move clients from one Herald node to another the way a real load balancer would.

import { createConnection, createServer } from 'node:net';

export async function startProxy(targetPort) {
  const sockets = new Set();
  const proxy = {
    targetPort,
    port: null,
    close: () =>
      new Promise((done) => {
        for (const socket of sockets) {
          socket.destroy();
        }
        server.close(done);
      }),
  };
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: proxy.targetPort });
    sockets.add(client);
    sockets.add(upstream);
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  proxy.port = server.address().port;
  return proxy;
}
