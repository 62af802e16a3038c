"""Checks one webhook with the official `pusher` Python SDK's validate_webhook and prints the outcome as JSON.

Usage: python validate_webhook.py '<json>' with key, secret, signature (the X-Pusher-Signature header) and body
(the raw request body). Prints {"valid": true, "body": <the parsed body>} or {"valid": false}.
"""

import json
import sys

import pusher


def main():
    spec = json.loads(sys.argv[1])
    client = pusher.Pusher(app_id="1", key=spec["key"], secret=spec["secret"])
    parsed = client.validate_webhook(spec["key"], spec["signature"], spec["body"])
    json.dump({"valid": parsed is not None, "body": parsed}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
