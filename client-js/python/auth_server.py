"""A tiny app server whose auth endpoints sign with the official `pusher` Python SDK.

Usage: python auth_server.py '<json>' with app_id, key, secret, host, port (Herald's) and an optional
encryption_master_key_base64. It listens on 127.0.0.1 on a free port, prints {"port": N} on one line, and serves
POST /pusher/auth (channel authorization) and POST /pusher/user-auth (user authentication) until it is killed.
The user is named by the form fields user_id and user_name, as the pusher-js `params` option sends them.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pusher


def make_handler(client):
    class AuthHandler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            form = {name: values[0] for name, values in parse_qs(self.rfile.read(length).decode("utf-8")).items()}
            socket_id = form.get("socket_id", "")
            user_id = form.get("user_id")
            user_info = {"name": form.get("user_name", user_id)}
            if self.path == "/pusher/auth":
                channel = form["channel_name"]
                if channel.startswith("presence-"):
                    payload = client.authenticate(channel, socket_id, {"user_id": user_id, "user_info": user_info})
                else:
                    payload = client.authenticate(channel, socket_id)
                self.reply(200, payload)
            elif self.path == "/pusher/user-auth":
                self.reply(200, client.authenticate_user(socket_id, {"id": user_id, "user_info": user_info}))
            else:
                self.reply(404, {"message": "not found"})

        def reply(self, status, payload):
            body = json.dumps(payload, default=lambda value: value.decode("ascii")).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return AuthHandler


def main():
    spec = json.loads(sys.argv[1])
    client = pusher.Pusher(
        app_id=spec["app_id"],
        key=spec["key"],
        secret=spec["secret"],
        ssl=False,
        host=spec["host"],
        port=spec["port"],
        encryption_master_key_base64=spec.get("encryption_master_key_base64"),
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(client))
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
