"""A service that reads its feature flags through OpenFeature's OFREP provider, as an
application of runway's users does: each request evaluates `new-agent` and `bad-agent` for a
targeting key of its own (user-0, user-1, ...); where `bad-agent` is on, the request fails
with a 500 (a broken feature). The flags' server is OFREP_URL, its token FLAG_TOKEN."""

import argparse
import itertools
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

TOKEN = os.environ["FLAG_TOKEN"]
api.set_provider(
    OFREPProvider(
        os.environ["OFREP_URL"],
        headers_factory=lambda: {"Authorization": f"Bearer {TOKEN}"},
        timeout=2.0,
    )
)
CLIENT = api.get_client()
USERS = itertools.count()
USERS_LOCK = threading.Lock()
VERSION = os.environ.get("RUNWAY_VERSION", "?")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.send_header("x-version", VERSION)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/health"):
            return self.answer(200, "ok")
        with USERS_LOCK:
            user = f"user-{next(USERS)}"
        context = EvaluationContext(targeting_key=user)
        if CLIENT.get_boolean_value("bad-agent", False, context):
            return self.answer(500, "the bad agent failed")
        new = CLIENT.get_boolean_value("new-agent", False, context)
        return self.answer(200, f"{VERSION} new-agent={new}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()
