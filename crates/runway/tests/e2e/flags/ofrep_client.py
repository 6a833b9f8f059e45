"""Evaluates flags with the OpenFeature Python SDK and its OFREP provider, unchanged, and
prints one JSON object per evaluation: what a real application sees.

usage: ofrep_client.py BASE_URL TOKEN < requests (one JSON per line:
       {"flag", "type": boolean|string|integer|float|object, "default", "key", "attributes"})"""

import json
import sys

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

base_url, token = sys.argv[1], sys.argv[2]
api.set_provider(
    OFREPProvider(
        base_url,
        headers_factory=lambda: {"Authorization": f"Bearer {token}"} if token else {},
        timeout=5.0,
    )
)
client = api.get_client()


def plain(word):
    """An SDK enum (or a plain string) as its text."""
    return None if word is None else str(getattr(word, "value", word))


for line in sys.stdin:
    request = json.loads(line)
    context = EvaluationContext(
        targeting_key=request.get("key"), attributes=request.get("attributes", {})
    )
    get = getattr(client, f"get_{request['type']}_details")
    details = get(request["flag"], request["default"], context)
    print(
        json.dumps(
            {
                "flag": details.flag_key,
                "value": details.value,
                "variant": details.variant,
                "reason": plain(details.reason),
                "error_code": plain(details.error_code),
            }
        ),
        flush=True,
    )
