"""Runs a list of calls on the official `pusher` Python SDK against Herald and prints the outcomes as JSON.

Usage: python sdk_calls.py '<json>' where the JSON holds the app (app_id, key, secret), where Herald listens
(host, port), an optional encryption_master_key_base64, and "calls": [{"method": ..., "args": [...], "kwargs": {...}}].
Each outcome is {"ok": true, "result": <what the SDK returned>} or {"ok": false, "error": <class>, "message": ...}.
"""

import json
import sys

import pusher
from pusher.errors import PusherError


def to_json(value):
    """SDK return values, made printable: the encrypted-channel shared secret comes back as bytes."""
    if isinstance(value, bytes):
        return value.decode("ascii")
    raise TypeError("cannot serialize %r" % (value,))


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
    outcomes = []
    for call in spec["calls"]:
        method = getattr(client, call["method"])
        try:
            result = method(*call.get("args", []), **call.get("kwargs", {}))
            outcomes.append({"ok": True, "result": result})
        except PusherError as error:
            outcomes.append({"ok": False, "error": type(error).__name__, "message": str(error)})
    json.dump(outcomes, sys.stdout, default=to_json)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
