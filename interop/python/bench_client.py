"""Load generator for the rsoa vs. PySOA benchmark, using the real PySOA 1.4.9 client over Redis.

Usage::

    python bench_client.py --port PORT --service NAME --body-size N --callers C --calls TOTAL
                           [--host 127.0.0.1] [--warmup 20] [--action echo] [--timeout 30]

Each of the C caller processes (multiprocessing, one PySOA ``Client`` each) does ``--warmup`` unmeasured
calls (the first response body is checked against the request), waits on a shared Barrier, then makes
``TOTAL // C`` sequential calls ``client.call_action(NAME, 'echo', body={'data': 'x' * N})``, timing each one
with ``time.perf_counter``.

Exactly one JSON line is printed on stdout::

    {"calls": n, "seconds": wall, "calls_per_sec": n / wall, "p50_us": ..., "p99_us": ...}

* ``calls`` = C * (TOTAL // C) measured calls (warm-up excluded).
* ``seconds`` = wall time from the earliest caller's start (right after the barrier releases all of them)
  to the latest caller's end, from CLOCK_MONOTONIC (system-wide, so comparable across processes).
* ``p50_us`` / ``p99_us`` = per-call latency quantiles in microseconds over all measured calls of all
  callers (nearest-rank: the value at sorted index ceil(q * n) - 1).

Diagnostics (msgpack implementation in use, per-caller counts) go to stderr. Exit status is 0 on success,
1 if any call failed (the error is printed on stderr and no JSON is printed), 2 on bad arguments.
"""
from __future__ import absolute_import, division, print_function, unicode_literals

import argparse
import json
import math
import multiprocessing
import os
import sys
import time
import traceback


DEFAULT_MAXIMUM_MESSAGE_SIZE_IN_BYTES = 5 * 1024 * 1024


def _monotonic():
    # CLOCK_MONOTONIC is system-wide on Linux, so start/end stamps from different processes can be compared.
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def _make_client(host, port, service, maximum_message_size_in_bytes, receive_timeout):
    from pysoa.client.client import Client

    return Client({
        service: {
            'transport': {
                'path': 'pysoa.common.transport.redis_gateway.client:RedisClientTransport',
                'kwargs': {
                    'backend_type': 'redis.standard',
                    'backend_layer_kwargs': {'hosts': [(host, port)]},
                    'maximum_message_size_in_bytes': maximum_message_size_in_bytes,
                    'receive_timeout_in_seconds': receive_timeout,
                },
            },
        },
    })


def _caller(index, args, calls, barrier, results):
    """Runs in a child process. Puts exactly one ('ok'|'error', index, payload) tuple on `results`."""
    try:
        client = _make_client(args.host, args.port, args.service, args.max_message_bytes, args.timeout)
        body = {'data': 'x' * args.body_size}
        call_action = client.call_action
        service, action = args.service, args.action

        for i in range(args.warmup):
            response = call_action(service, action, body=body)
            if i == 0 and response.body != body:
                raise AssertionError('echo returned a different body ({!r:.200})'.format(response.body))

        barrier.wait(timeout=args.barrier_timeout)

        latencies = [0.0] * calls
        perf_counter = time.perf_counter
        start = _monotonic()
        for i in range(calls):
            t0 = perf_counter()
            call_action(service, action, body=body)
            latencies[i] = perf_counter() - t0
        end = _monotonic()

        results.put(('ok', index, (start, end, latencies)))
    except BaseException:
        try:
            barrier.abort()  # release the other callers instead of letting them wait for the timeout
        except Exception:
            pass
        results.put(('error', index, traceback.format_exc()))


def _quantile(sorted_values, q):
    n = len(sorted_values)
    return sorted_values[min(n - 1, max(0, int(math.ceil(q * n)) - 1))]


def main(argv=None):
    parser = argparse.ArgumentParser(description='PySOA client load generator (echo) for the rsoa benchmark')
    parser.add_argument('--port', type=int, required=True, help='Redis port')
    parser.add_argument('--host', default='127.0.0.1', help='Redis host (default 127.0.0.1)')
    parser.add_argument('--service', required=True, help='Service to call (e.g. pybench or the Rust one)')
    parser.add_argument('--action', default='echo', help='Action to call (default echo)')
    parser.add_argument('--body-size', type=int, required=True, help='Length N of the string in {"data": "x"*N}')
    parser.add_argument('--callers', type=int, required=True, help='Concurrent caller processes C')
    parser.add_argument('--calls', type=int, required=True, help='Total measured calls (each caller does TOTAL//C)')
    parser.add_argument('--warmup', type=int, default=20, help='Unmeasured warm-up calls per caller (default 20)')
    parser.add_argument(
        '--timeout', type=int, default=30,
        help='Per-call response timeout in seconds (PySOA receive_timeout_in_seconds, default 30)',
    )
    parser.add_argument(
        '--max-message-bytes', type=int, default=DEFAULT_MAXIMUM_MESSAGE_SIZE_IN_BYTES,
        help='maximum_message_size_in_bytes of the client transport (default 5 MiB)',
    )
    parser.add_argument(
        '--barrier-timeout', type=float, default=120.0,
        help='Seconds the callers wait for each other after warm-up (default 120)',
    )
    args = parser.parse_args(argv)

    if args.callers < 1 or args.calls < args.callers or args.body_size < 0 or args.warmup < 0:
        parser.error('need --callers >= 1, --calls >= --callers, --body-size >= 0, --warmup >= 0')

    import msgpack
    import pysoa.client.client  # noqa: F401  (imported once here so forked callers start fast; no connections yet)
    print(
        'bench_client: msgpack {} using {}; pid {}; {} callers x {} calls, body {} chars, service {!r}'.format(
            '.'.join(map(str, msgpack.version)), msgpack.Packer.__module__, os.getpid(),
            args.callers, args.calls // args.callers, args.body_size, args.service,
        ),
        file=sys.stderr,
    )

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context('fork' if 'fork' in methods else 'spawn')
    calls_per_caller = args.calls // args.callers
    barrier = context.Barrier(args.callers)
    results = context.Queue()
    processes = [
        context.Process(target=_caller, args=(i, args, calls_per_caller, barrier, results), name='caller-%d' % i)
        for i in range(args.callers)
    ]
    for p in processes:
        p.start()

    outcomes = {}
    errors = []
    deadline = time.time() + args.barrier_timeout + args.timeout * (args.warmup + calls_per_caller) + 60
    try:
        while len(outcomes) < args.callers:
            remaining = deadline - time.time()
            if remaining <= 0:
                errors.append('timed out waiting for the callers')
                break
            try:
                status, index, payload = results.get(timeout=min(remaining, 1.0))
            except Exception:  # queue.Empty
                dead = [p for p in processes if p.exitcode not in (None, 0)]
                if dead and results.empty():
                    errors.append('caller process(es) died: {}'.format(
                        ', '.join('{} (exit {})'.format(p.name, p.exitcode) for p in dead)))
                    break
                continue
            outcomes[index] = (status, payload)
            if status != 'ok':
                errors.append('caller {} failed:\n{}'.format(index, payload))
    finally:
        for p in processes:
            p.join(timeout=5)
        for p in processes:
            if p.is_alive():
                p.terminate()
                p.join()

    if errors:
        for e in errors:
            print('bench_client: ERROR: {}'.format(e), file=sys.stderr)
        return 1

    starts, ends, latencies = [], [], []
    for status, (start, end, caller_latencies) in outcomes.values():
        starts.append(start)
        ends.append(end)
        latencies.extend(caller_latencies)
    latencies.sort()
    wall = max(ends) - min(starts)
    n = len(latencies)

    print(json.dumps({
        'calls': n,
        'seconds': round(wall, 6),
        'calls_per_sec': round(n / wall, 1) if wall > 0 else None,
        'p50_us': round(_quantile(latencies, 0.50) * 1e6, 1),
        'p99_us': round(_quantile(latencies, 0.99) * 1e6, 1),
    }))
    sys.stdout.flush()
    return 0


if __name__ == '__main__':
    sys.exit(main())
