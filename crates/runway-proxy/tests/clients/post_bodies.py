#!/usr/bin/env python3
"""POSTs JSON bodies with a real client library and reports what it saw.

    post_bodies.py (http.client|requests) URL ROUNDS SIZE...

For each SIZE (bytes of JSON), ROUNDS POSTs in a row on the library's
keep-alive connection. Prints one JSON object: the number of requests, the
count of each status, the number of TCP connections the library opened,
how many answers said "Connection: close", how many answer bodies were not
the expected page, and every exception (a reset, a broken pipe, a timeout)
as text. Exits 0 whatever happened: the caller judges.
"""

import http.client
import json
import sys
import urllib.parse


def body_of(size):
    """A JSON document of exactly `size` bytes (at least 2)."""
    if size < 12:
        return b"{}" + b" " * max(0, size - 2)
    return json.dumps({"data": "x" * (size - 12)}).encode()


def summary():
    return {
        "requests": 0,
        "status": {},
        "connections": 0,
        "closes": 0,
        "bad_pages": 0,
        "errors": [],
    }


def judge(out, status, headers, data):
    out["status"][str(status)] = out["status"].get(str(status), 0) + 1
    if "close" in (headers.get("Connection") or "").lower():
        out["closes"] += 1
    length = headers.get("Content-Length")
    if length is None or int(length) != len(data):
        out["bad_pages"] += 1
        return
    if status == 503:
        try:
            page = json.loads(data)
        except ValueError:
            out["bad_pages"] += 1
            return
        if page.get("error") not in ("maintenance", "read_only"):
            out["bad_pages"] += 1


def with_http_client(url, rounds, sizes):
    out = summary()
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    sock = None
    for size in sizes:
        body = body_of(size)
        for _ in range(rounds):
            out["requests"] += 1
            try:
                conn.request(
                    "POST",
                    parts.path or "/",
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        "Accept": "application/json",
                    },
                )
                if conn.sock is not sock:
                    out["connections"] += 1
                    sock = conn.sock
                response = conn.getresponse()
                data = response.read()
                judge(out, response.status, response.headers, data)
            except Exception as error:  # noqa: BLE001 - every failure is reported
                out["errors"].append(f"{size} B: {type(error).__name__}: {error}")
                conn.close()
    conn.close()
    return out


def with_requests(url, rounds, sizes):
    import requests
    import urllib3.connection

    out = summary()
    connect = urllib3.connection.HTTPConnection.connect

    def counting_connect(self):
        out["connections"] += 1
        return connect(self)

    urllib3.connection.HTTPConnection.connect = counting_connect
    with requests.Session() as session:
        for size in sizes:
            body = body_of(size)
            for _ in range(rounds):
                out["requests"] += 1
                try:
                    response = session.post(
                        url,
                        data=body,
                        headers={
                            "Content-Type": "application/json",
                            "Accept": "application/json",
                        },
                        timeout=20,
                    )
                    judge(out, response.status_code, response.headers, response.content)
                except Exception as error:  # noqa: BLE001 - every failure is reported
                    out["errors"].append(f"{size} B: {type(error).__name__}: {error}")
    return out


def main():
    library, url, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sizes = [int(size) for size in sys.argv[4:]]
    run = {"http.client": with_http_client, "requests": with_requests}[library]
    print(json.dumps(run(url, rounds, sizes)))


if __name__ == "__main__":
    main()
