"""The `pyinterop` service: a real PySOA 1.4.9 server for the rsoa <-> PySOA interoperability test.

Usage::

    python service.py --port PORT [--host 127.0.0.1] [--log-level INFO]

It serves the service named ``pyinterop`` on the Redis server at HOST:PORT (standard Redis backend).
It implements the same actions as the Rust ``rsinterop`` service (see README.md for the contract).

* Logs go to stderr (PySOA's default console logging config).
* ``READY`` is printed (and flushed) on stdout once the server's run loop has started, its signal
  handlers are installed and it is about to block on its request queue for the first time.
* SIGTERM / SIGINT trigger PySOA's graceful shutdown; the process then exits with status 0. The
  server's Redis receive timeout is 1 second, so shutdown takes at most ~1 second when idle (or the
  remainder of an in-flight request, e.g. a `sleep`).
"""
from __future__ import absolute_import, print_function, unicode_literals

import sys
import time

from conformity import fields

from pysoa.common.errors import Error
from pysoa.server.action.base import Action
from pysoa.server.errors import ActionError

from serving import ReadyServer, argument_parser, serve


# Reported by PySOA's built-in `status` action (make_default_status_action_class reads `__version__`
# from the top-level module of the server class, which is this module, or `__main__` when run as a script).
__version__ = '1.0.0'

SERVICE_NAME = 'pyinterop'
RUST_SERVICE_NAME = 'rsinterop'
# Served by `interop-trace` while it checks that a trace crosses this service.
TRACE_SERVICE_NAME = 'rstrace'

CHUNK_MESSAGES_LARGER_THAN_BYTES = 102400
MAXIMUM_MESSAGE_SIZE_IN_BYTES = 5242880


class SquareAction(Action):
    """Returns the square of `number`."""

    request_schema = fields.Dictionary({'number': fields.Integer(description='The number to square')})
    response_schema = fields.Dictionary({'square': fields.Integer()})

    def run(self, request):
        number = request.body['number']
        return {'square': number * number}


class EchoAction(Action):
    """Returns the request body unchanged (no request schema; any body)."""

    def run(self, request):
        return request.body


class FailAction(Action):
    """Always fails with one action error carrying every optional `Error` field."""

    request_schema = fields.Dictionary({})

    def run(self, request):
        raise ActionError(errors=[Error(
            code='FAIL_CODE',
            message='It failed',
            field='some.field',
            variables={'a': 1},
            denied_permissions=['perm.x'],
        )])  # set_is_caller_error_to defaults to True


class BoomAction(Action):
    """Raises an unhandled exception (which PySOA turns into a SERVER_ERROR)."""

    request_schema = fields.Dictionary({})

    def run(self, request):
        raise ValueError('boom')


class TypedAction(Action):
    """Validates its body: `n` (int, required) and `s` (unicode, optional)."""

    request_schema = fields.Dictionary(
        {'n': fields.Integer(), 's': fields.UnicodeString()},
        optional_keys=['s'],
    )

    def run(self, request):
        return {'n': request.body['n'], 's': request.body.get('s')}


class BigAction(Action):
    """Returns a string of `size` letters `a` (used to exercise chunked responses)."""

    request_schema = fields.Dictionary({'size': fields.Integer(gte=0)})

    def run(self, request):
        return {'data': 'a' * request.body['size']}


class ContextAction(Action):
    """Returns selected values from the job request context."""

    request_schema = fields.Dictionary({})

    def run(self, request):
        context = request.context
        return {
            'correlation_id': context.get('correlation_id'),
            'switches': sorted(int(s) for s in (context.get('switches') or [])),
            'calling_service': context.get('calling_service'),
            'caller': context.get('caller'),
            'custom': context.get('custom'),
        }


class CallServiceAction(Action):
    """Calls action `context` on `service` with the request's chained client and returns its body."""

    request_schema = fields.Dictionary({'service': fields.UnicodeString()})

    def run(self, request):
        response = request.client.call_action(request.body['service'], 'context')
        return {'downstream': response.body}


class SleepAction(Action):
    """Sleeps for `seconds` seconds, then returns an empty body."""

    request_schema = fields.Dictionary({'seconds': fields.Float(gte=0)})

    def run(self, request):
        time.sleep(request.body['seconds'])
        return {}


class PyInteropServer(ReadyServer):
    """The interoperability service: one contract, served by PySOA and by rsoa."""

    service_name = SERVICE_NAME
    action_class_map = {
        'square': SquareAction,
        'echo': EchoAction,
        'fail': FailAction,
        'boom': BoomAction,
        'typed': TypedAction,
        'big': BigAction,
        'context': ContextAction,
        'call_service': CallServiceAction,
        'sleep': SleepAction,
        # `status` and `introspect` are PySOA's built-ins (added automatically when not in this map).
    }


def _client_routing_entry(host, port):
    return {
        'transport': {
            'path': 'pysoa.common.transport.redis_gateway.client:RedisClientTransport',
            'kwargs': {
                'backend_type': 'redis.standard',
                'backend_layer_kwargs': {'hosts': [(host, port)]},
                'maximum_message_size_in_bytes': MAXIMUM_MESSAGE_SIZE_IN_BYTES,
            },
        },
    }


def make_settings_dict(host, port, log_level='INFO'):
    logging_config = {
        'version': 1,
        'formatters': {
            'console': {
                'format': '%(asctime)s %(levelname)7s pyinterop %(correlation_id)s %(request_id)s: %(message)s',
            },
        },
        'filters': {
            'pysoa_logging_context_filter': {'()': 'pysoa.common.logging.PySOALogContextFilter'},
        },
        'handlers': {
            'console': {
                'level': log_level,
                'class': 'logging.StreamHandler',
                'stream': 'ext://sys.stderr',
                'formatter': 'console',
                'filters': ['pysoa_logging_context_filter'],
            },
        },
        'loggers': {},
        'root': {'handlers': ['console'], 'level': log_level},
        'disable_existing_loggers': False,
    }
    return {
        'transport': {
            'path': 'pysoa.common.transport.redis_gateway.server:RedisServerTransport',
            'kwargs': {
                'backend_type': 'redis.standard',
                'backend_layer_kwargs': {'hosts': [(host, port)]},
                'chunk_messages_larger_than_bytes': CHUNK_MESSAGES_LARGER_THAN_BYTES,
                'maximum_message_size_in_bytes': MAXIMUM_MESSAGE_SIZE_IN_BYTES,
                # Only affects how long the idle server blocks on its request queue, i.e. how quickly it
                # notices a shutdown signal. Nothing on the wire depends on it.
                'receive_timeout_in_seconds': 1,
            },
        },
        'client_routing': {
            RUST_SERVICE_NAME: _client_routing_entry(host, port),
            SERVICE_NAME: _client_routing_entry(host, port),
            TRACE_SERVICE_NAME: _client_routing_entry(host, port),
        },
        'harakiri': {'timeout': 0, 'shutdown_grace': 30},
        'logging': logging_config,
        # Full request/response bodies (up to 3 MB in the `big` case) are logged only at DEBUG; a job
        # with errors is logged at INFO.
        'request_log_success_level': 'DEBUG',
        'request_log_error_level': 'INFO',
    }


def main(argv=None):
    parser = argument_parser('PySOA `pyinterop` service for the rsoa interop test', 'INFO')
    args = parser.parse_args(argv)

    settings = PyInteropServer.settings_class(make_settings_dict(args.host, args.port, args.log_level.upper()))

    return serve(PyInteropServer, settings, args, 'pyinterop')


if __name__ == '__main__':
    sys.exit(main())
