"""PySOA 1.4.9's in-process (local) transport doing what `cargo xtask bench local` measures for rsoa: sequential
`call_action` of a `square` action. Prints one JSON line: {"calls", "seconds", "calls_per_sec", "p50_us", "p99_us"}.

Usage: python bench_local.py [--calls N]
"""
import argparse
import json
import time

from conformity import fields
from pysoa.client.client import Client
from pysoa.server.action import Action
from pysoa.server.server import Server


class Square(Action):
    request_schema = fields.Dictionary({'number': fields.Integer()})

    def run(self, request):
        return {'square': request.body['number'] ** 2}


class BenchServer(Server):
    service_name = 'bench'
    action_class_map = {'square': Square}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--calls', type=int, default=20000)
    args = parser.parse_args()
    client = Client({
        'bench': {
            'transport': {
                'path': 'pysoa.common.transport.local:LocalClientTransport',
                'kwargs': {'server_class': BenchServer, 'server_settings': {}},
            },
        },
    })
    for _ in range(500):
        client.call_action('bench', 'square', body={'number': 7})
    latencies = []
    start = time.perf_counter()
    for _ in range(args.calls):
        t = time.perf_counter()
        client.call_action('bench', 'square', body={'number': 7})
        latencies.append(time.perf_counter() - t)
    seconds = time.perf_counter() - start
    latencies.sort()
    quantile = lambda q: latencies[min(int(len(latencies) * q), len(latencies) - 1)] * 1e6
    print(json.dumps({
        'calls': len(latencies),
        'seconds': seconds,
        'calls_per_sec': len(latencies) / seconds,
        'p50_us': quantile(0.5),
        'p99_us': quantile(0.99),
    }))


if __name__ == '__main__':
    main()
