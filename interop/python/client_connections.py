"""How many Redis connections PySOA 1.4.9's own client holds with N requests in flight.

Usage::

    python client_connections.py --port PORT --service SERVICE [--host 127.0.0.1] [--counts 1,16,128,2000]

For each count N, one fresh `pysoa.client.Client` sends N `echo` requests with `send_request` (PySOA's client is
single-threaded: this is how it keeps N calls in flight), then collects them with `get_all_responses`. The peak
number of connections Redis reports in `CLIENT LIST` beyond those open before this process made its first client is
printed as one JSON line per count: `{"calls": N, "answered": A, "connections": C}`. `cargo xtask bench redis` prints these beside
rsoa's figures.
"""
from __future__ import absolute_import, print_function, unicode_literals

import argparse
import json
import sys

import redis

from bench_client import _make_client


MAXIMUM_MESSAGE_SIZE_IN_BYTES = 102400


def connections(admin):
    return len(admin.client_list())


def measure(admin, before, host, port, service, calls):
    client = _make_client(host, port, service, MAXIMUM_MESSAGE_SIZE_IN_BYTES, receive_timeout=60)
    most = before
    for n in range(calls):
        client.send_request(service, [{'action': 'echo', 'body': {'n': n}}])
        if n % 64 == 0:
            most = max(most, connections(admin))
    answered = 0
    for _, response in client.get_all_responses(service, receive_timeout_in_seconds=60):
        answered += int(not response.errors)
    most = max(most, connections(admin))
    return {'calls': calls, 'answered': answered, 'connections': most - before}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--service', required=True)
    parser.add_argument('--counts', default='1,16,128,2000')
    args = parser.parse_args()
    admin = redis.StrictRedis(host=args.host, port=args.port)
    # PySOA keeps one Redis backend per process for the same settings, so each count's fresh client may reuse the
    # connections of the one before: what is counted is what the process holds beyond what Redis had before it.
    before = connections(admin)
    for calls in (int(c) for c in args.counts.split(',')):
        print(json.dumps(measure(admin, before, args.host, args.port, args.service, calls)), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
