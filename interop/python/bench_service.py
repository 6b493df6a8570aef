"""The `pybench` service: a minimal real PySOA 1.4.9 server for the rsoa vs. PySOA benchmark.

Usage::

    python bench_service.py --port PORT [--host 127.0.0.1] [--service pybench] [--log-level WARNING]

* One action, ``echo``, which returns the request body unchanged (no request schema, so no validation cost).
* Standard Redis backend at HOST:PORT; harakiri disabled; per-request logging off (the job request/response
  log lines go to DEBUG, and the root log level defaults to WARNING), so the numbers measure PySOA's request
  handling rather than log formatting. No metrics (PySOA's default no-op recorder).
* Run several copies at once to get several server processes: they all pop from the same Redis request
  queue (``pysoa:pybench``), each is a single-threaded PySOA worker.
* ``READY`` is printed (and flushed) on stdout once the run loop has started, the signal handlers are
  installed and the server is about to block on the request queue for the first time.
* SIGTERM / SIGINT trigger PySOA's graceful shutdown; the process exits with status 0 within about
  1 second (the Redis receive timeout) when idle.
* The msgpack implementation in use (C extension or pure-Python fallback) is logged to stderr at startup.
"""
from __future__ import absolute_import, print_function, unicode_literals

import sys

import msgpack

from pysoa.server.action.base import Action

from serving import ReadyServer, argument_parser, serve


__version__ = '1.0.0'

DEFAULT_SERVICE_NAME = 'pybench'
DEFAULT_MAXIMUM_MESSAGE_SIZE_IN_BYTES = 5 * 1024 * 1024


class EchoAction(Action):
    """Returns the request body unchanged."""

    def run(self, request):
        return request.body


class BenchServer(ReadyServer):
    service_name = DEFAULT_SERVICE_NAME
    action_class_map = {
        'echo': EchoAction,
    }


def make_settings_dict(host, port, service_name, log_level, maximum_message_size_in_bytes):
    return {
        'transport': {
            'path': 'pysoa.common.transport.redis_gateway.server:RedisServerTransport',
            'kwargs': {
                'backend_type': 'redis.standard',
                'backend_layer_kwargs': {'hosts': [(host, port)]},
                'maximum_message_size_in_bytes': maximum_message_size_in_bytes,
                # How long an idle server blocks on its queue, i.e. how quickly it notices SIGTERM. A busy server
                # never waits, so this does not affect throughput.
                'receive_timeout_in_seconds': 1,
            },
        },
        'harakiri': {'timeout': 0, 'shutdown_grace': 30},
        'logging': {
            'version': 1,
            'formatters': {
                'console': {
                    'format': '%(asctime)s %(levelname)7s ' + service_name + '[%(process)d]: %(message)s',
                },
            },
            'handlers': {
                'console': {
                    'level': log_level,
                    'class': 'logging.StreamHandler',
                    'stream': 'ext://sys.stderr',
                    'formatter': 'console',
                },
            },
            'loggers': {},
            'root': {'handlers': ['console'], 'level': log_level},
            'disable_existing_loggers': False,
        },
        'request_log_success_level': 'DEBUG',
        'request_log_error_level': 'WARNING',
    }


def main(argv=None):
    parser = argument_parser('PySOA `pybench` echo service for the rsoa vs. PySOA benchmark', 'WARNING')
    parser.add_argument('--service', default=DEFAULT_SERVICE_NAME, help='Service name (default pybench)')
    parser.add_argument(
        '--max-message-bytes', type=int, default=DEFAULT_MAXIMUM_MESSAGE_SIZE_IN_BYTES,
        help='maximum_message_size_in_bytes of the transport (default 5 MiB)',
    )
    args = parser.parse_args(argv)

    server_class = type(str('BenchServer'), (BenchServer, ), {'service_name': args.service})
    settings = server_class.settings_class(make_settings_dict(
        args.host, args.port, args.service, args.log_level.upper(), args.max_message_bytes,
    ))

    def announce(logger):
        logger.warning(
            'service %s on redis %s:%d, msgpack %s using %s',
            args.service, args.host, args.port, '.'.join(map(str, msgpack.version)), msgpack.Packer.__module__,
        )

    return serve(server_class, settings, args, 'pybench', announce)


if __name__ == '__main__':
    sys.exit(main())
