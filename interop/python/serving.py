"""What the project's two PySOA servers (``service.py`` and ``bench_service.py``) share: announcing READY once
the run loop is up, waiting for Redis, and the start-up sequence."""
from __future__ import absolute_import, print_function, unicode_literals

import argparse
import logging
import logging.config
import sys
import time

import redis

from pysoa.common.logging import PySOALogContextFilter
from pysoa.server.server import Server


class ReadyServer(Server):
    """A PySOA server that prints ``READY`` (flushed) on stdout when its run loop has started."""

    _ready_announced = False

    def handle_next_request(self):
        # First called inside Server.run(), after setup() and after the SIGINT/SIGTERM handlers are installed,
        # right before the first blocking receive on the request queue.
        if not self._ready_announced:
            self._ready_announced = True
            self.logger.info('Service "%s" is ready', self.service_name)
            sys.stdout.write('READY\n')
            sys.stdout.flush()
        super(ReadyServer, self).handle_next_request()


def wait_for_redis(host, port, timeout_seconds):
    """Waits until Redis answers PING; raises RuntimeError after `timeout_seconds`."""
    deadline = time.time() + timeout_seconds
    connection = redis.Redis(host=host, port=port, socket_connect_timeout=1.0)
    try:
        while True:
            try:
                connection.ping()
                return
            except redis.exceptions.RedisError as e:
                if time.time() >= deadline:
                    raise RuntimeError('Redis at {}:{} is not reachable: {}'.format(host, port, e))
                time.sleep(0.1)
    finally:
        connection.connection_pool.disconnect()


def argument_parser(description, default_log_level):
    """The options every server takes: ``--port``, ``--host``, ``--log-level`` and ``--redis-wait``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--port', type=int, required=True, help='Redis port')
    parser.add_argument('--host', default='127.0.0.1', help='Redis host (default 127.0.0.1)')
    parser.add_argument(
        '--log-level', default=default_log_level, help='Logging level (default {})'.format(default_log_level),
    )
    parser.add_argument(
        '--redis-wait', type=float, default=10.0,
        help='Seconds to wait for Redis to answer PING before giving up (default 10)',
    )
    return parser


def serve(server_class, settings, args, logger_name, announce=None):
    """Configures logging, waits for Redis (``args.host``, ``args.port``, ``args.redis_wait``) and runs the server
    until SIGTERM/SIGINT. Returns the process exit status: 0, or 2 when Redis cannot be reached."""
    PySOALogContextFilter.set_service_name(server_class.service_name)
    logging.config.dictConfig(settings['logging'])
    logger = logging.getLogger(logger_name)
    if announce is not None:
        announce(logger)
    try:
        wait_for_redis(args.host, args.port, args.redis_wait)
    except RuntimeError as e:
        logger.error('%s', e)
        return 2
    server = server_class.initialize(settings)(settings)
    server.run()  # returns after SIGTERM/SIGINT (graceful shutdown)
    logger.info('%s exiting', logger_name)
    return 0
