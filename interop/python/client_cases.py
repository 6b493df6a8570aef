"""PySOA 1.4.9 client cases for the rsoa <-> PySOA interoperability test.

Usage::

    python client_cases.py --port PORT --service rsinterop [--python-service pyinterop] [--host 127.0.0.1]
                           [--only NAME[,NAME...]]

Uses PySOA's real `pysoa.client.Client` against `--service` (normally the Rust `rsinterop` service) and
prints one line per case, `PASS <name>` or `FAIL <name>: <reason>`, then
`python cases: N passed, M failed`. Exit status is 0 if M == 0, else 1. Every case catches its own
exceptions, so one failure never stops the run.

`--python-service` names a PySOA service (normally `pyinterop`) that is also running on the same Redis.
It is used by `call_jobs_parallel` (one job goes to it) and by `chaining_python_to_rust_to_python`
(which is skipped as a FAIL without it).
"""
from __future__ import absolute_import, print_function, unicode_literals

import argparse
import datetime
import decimal
import logging
import math
import sys
import time
import traceback
import uuid

import currint
import pytz

from pysoa.client.client import Client
from pysoa.common.transport.errors import MessageReceiveTimeout


MAXIMUM_MESSAGE_SIZE_IN_BYTES = 5242880


class CaseFailure(Exception):
    pass


def check(condition, message, *args):
    if not condition:
        raise CaseFailure(message.format(*args) if args else message)


def check_eq(actual, expected, what):
    if actual != expected:
        raise CaseFailure('{}: expected {!r}, got {!r}'.format(what, expected, actual))


def capture_raw_responses(client, service_name):
    """Records the raw bytes of every Redis message (response or response chunk) the client receives from
    `service_name`, before PySOA strips the protocol prefix and headers. Uses PySOA 1.4.9 internals
    (`Client._get_handler`, `RedisTransportCore._receive_message`), which is fine with the pinned version."""
    core = client._get_handler(service_name).transport.core
    raw = []
    original = core._receive_message

    def _receive_message(*args, **kwargs):
        message = original(*args, **kwargs)
        raw.append(bytes(message))
        return message

    core._receive_message = _receive_message
    return raw


def service_config(host, port, **transport_kwargs):
    kwargs = {
        'backend_type': 'redis.standard',
        'backend_layer_kwargs': {'hosts': [(host, port)]},
        'maximum_message_size_in_bytes': MAXIMUM_MESSAGE_SIZE_IN_BYTES,
    }
    kwargs.update(transport_kwargs)
    return {
        'transport': {
            'path': 'pysoa.common.transport.redis_gateway.client:RedisClientTransport',
            'kwargs': kwargs,
        },
    }


# ----------------------------------------------------------------------------------------------------------------------
# Strict, type-aware comparison for the echo case
# ----------------------------------------------------------------------------------------------------------------------

def strict_diff(expected, actual, path='body'):
    """Returns a description of the first difference, or None if `actual` is strictly equal to `expected`.

    Stricter than `==`: bool vs int, int vs float, str vs bytes, Decimal text (`12.3400` vs `12.34`), naive vs
    aware datetimes and currency codes all count as differences; NaN equals NaN.
    """
    if type(expected) is not type(actual):
        return '{}: expected type {} ({!r}), got type {} ({!r})'.format(
            path, type(expected).__name__, expected, type(actual).__name__, actual,
        )
    if isinstance(expected, dict):
        if set(expected.keys()) != set(actual.keys()):
            return '{}: expected keys {!r}, got keys {!r}'.format(path, sorted(expected), sorted(actual))
        for k in expected:
            d = strict_diff(expected[k], actual[k], '{}[{!r}]'.format(path, k))
            if d:
                return d
        return None
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return '{}: expected list of length {}, got {}: {!r}'.format(path, len(expected), len(actual), actual)
        for i, (e, a) in enumerate(zip(expected, actual)):
            d = strict_diff(e, a, '{}[{}]'.format(path, i))
            if d:
                return d
        return None
    if isinstance(expected, float):
        if math.isnan(expected):
            return None if math.isnan(actual) else '{}: expected nan, got {!r}'.format(path, actual)
        if expected != actual or math.copysign(1.0, expected) != math.copysign(1.0, actual):
            return '{}: expected {!r}, got {!r}'.format(path, expected, actual)
        return None
    if isinstance(expected, decimal.Decimal):
        if str(expected) != str(actual):
            return '{}: expected Decimal({!r}), got Decimal({!r})'.format(path, str(expected), str(actual))
        return None
    if isinstance(expected, datetime.datetime):
        if expected.tzinfo is not actual.tzinfo:
            return '{}: expected tzinfo {!r}, got {!r}'.format(path, expected.tzinfo, actual.tzinfo)
        if expected != actual:
            return '{}: expected {}, got {}'.format(path, expected.isoformat(), actual.isoformat())
        return None
    if isinstance(expected, currint.Amount):
        if expected.currency.code != actual.currency.code or expected.value != actual.value:
            return '{}: expected Amount {} {}, got Amount {} {}'.format(
                path, expected.currency.code, expected.value, actual.currency.code, actual.value,
            )
        return None
    if expected != actual:
        return '{}: expected {!r}, got {!r}'.format(path, expected, actual)
    return None


# ----------------------------------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------------------------------

class Cases(object):
    def __init__(self, host, port, service, python_service):
        self.host = host
        self.port = port
        self.service = service
        self.python_service = python_service
        self.client = self.make_client()

    def make_client(self, **transport_kwargs):
        config = {self.service: service_config(self.host, self.port, **transport_kwargs)}
        if self.python_service and self.python_service != self.service:
            config[self.python_service] = service_config(self.host, self.port, **transport_kwargs)
        return Client(config)

    # -- basic calls ---------------------------------------------------------------------------------------------------

    def case_call_action_square(self):
        response = self.client.call_action(self.service, 'square', {'number': 7})
        check_eq(response.action, 'square', 'action name')
        check_eq(response.errors, [], 'errors')
        check_eq(response.body, {'square': 49}, 'body')
        response = self.client.call_action(self.service, 'square', {'number': -3000000000})
        check_eq(response.body, {'square': 9000000000000000000}, 'body (large)')

    def case_call_actions_stop_on_error(self):
        job = self.client.call_actions(
            self.service,
            [
                {'action': 'square', 'body': {'number': 2}},
                {'action': 'fail', 'body': {}},
                {'action': 'square', 'body': {'number': 3}},
            ],
            raise_action_errors=False,
        )
        check_eq(job.errors, [], 'job errors')
        check_eq(len(job.actions), 2, 'number of action responses')
        check_eq(job.actions[0].action, 'square', 'action[0] name')
        check_eq(job.actions[0].body, {'square': 4}, 'action[0] body')
        check_eq(job.actions[1].action, 'fail', 'action[1] name')
        check_eq([e.code for e in job.actions[1].errors], ['FAIL_CODE'], 'action[1] error codes')

    def case_call_actions_continue_on_error(self):
        job = self.client.call_actions(
            self.service,
            [
                {'action': 'square', 'body': {'number': 2}},
                {'action': 'fail', 'body': {}},
                {'action': 'square', 'body': {'number': 3}},
            ],
            raise_action_errors=False,
            continue_on_error=True,
        )
        check_eq(job.errors, [], 'job errors')
        check_eq(len(job.actions), 3, 'number of action responses')
        check_eq(job.actions[0].body, {'square': 4}, 'action[0] body')
        check_eq([e.code for e in job.actions[1].errors], ['FAIL_CODE'], 'action[1] error codes')
        check_eq(job.actions[2].action, 'square', 'action[2] name')
        check_eq(job.actions[2].errors, [], 'action[2] errors')
        check_eq(job.actions[2].body, {'square': 9}, 'action[2] body')
        # And with raising enabled (the default), the same job raises CallActionError naming only `fail`.
        try:
            self.client.call_actions(
                self.service,
                [{'action': 'square', 'body': {'number': 2}}, {'action': 'fail', 'body': {}}],
                continue_on_error=True,
            )
        except Client.CallActionError as e:
            check_eq([a.action for a in e.actions], ['fail'], 'CallActionError actions')
        else:
            raise CaseFailure('expected CallActionError')

    def case_call_actions_parallel(self):
        responses = list(self.client.call_actions_parallel(
            self.service,
            [{'action': 'square', 'body': {'number': i}} for i in range(10)],
        ))
        check_eq(len(responses), 10, 'number of responses')
        check_eq([r.action for r in responses], ['square'] * 10, 'action names')
        check_eq([r.body for r in responses], [{'square': i * i} for i in range(10)], 'bodies (in order)')

    def case_call_jobs_parallel(self):
        jobs = [
            {'service_name': self.service, 'actions': [{'action': 'square', 'body': {'number': 2}}]},
            {'service_name': self.service, 'actions': [
                {'action': 'square', 'body': {'number': 3}},
                {'action': 'echo', 'body': {'x': [1, 'y']}},
            ]},
            {'service_name': self.service, 'actions': [{'action': 'square', 'body': {'number': 4}}]},
        ]
        expected = [
            [{'square': 4}],
            [{'square': 9}, {'x': [1, 'y']}],
            [{'square': 16}],
        ]
        if self.python_service:
            jobs.insert(1, {'service_name': self.python_service, 'actions': [
                {'action': 'square', 'body': {'number': 5}},
            ]})
            expected.insert(1, [{'square': 25}])
        responses = self.client.call_jobs_parallel(jobs, correlation_id='corr-jobs-parallel')
        check_eq(len(responses), len(jobs), 'number of job responses')
        for i, (job_response, bodies) in enumerate(zip(responses, expected)):
            check_eq(job_response.errors, [], 'job[{}] errors'.format(i))
            check_eq([a.body for a in job_response.actions], bodies, 'job[{}] bodies'.format(i))
            check_eq(job_response.context.get('correlation_id'), 'corr-jobs-parallel', 'job[{}] correlation_id'.format(i))

    # -- serialization -------------------------------------------------------------------------------------------------

    def case_echo_types_msgpack(self):
        # PySOA's msgpack datetime ext is computed with float arithmetic (int((dt - epoch).total_seconds() * 1e6) to
        # encode, utcfromtimestamp(us / 1e6) to decode), which shifts ~1% of datetimes by 1 microsecond on encode
        # (e.g. 2005-08-17T01:51:41.571688 is sent as ...571687). The datetimes below were checked not to hit that
        # quirk in either direction, so an exact round trip is expected through any correct implementation.
        body = {
            'datetime_naive': datetime.datetime(2020, 2, 29, 13, 14, 15, 123456),
            'datetime_naive_no_micro': datetime.datetime(1999, 12, 31, 23, 59, 59),
            'datetime_utc': datetime.datetime(2021, 6, 1, 1, 2, 3, 654321, tzinfo=pytz.UTC),
            'date': datetime.date(2020, 2, 29),
            'time': datetime.time(13, 14, 15, 123456),
            'time_midnight': datetime.time(0, 0),
            'decimal': decimal.Decimal('12.3400'),
            'decimal_exp': decimal.Decimal('1E+3'),
            'decimal_neg': decimal.Decimal('-0.000001'),
            'amount_usd': currint.Amount.from_code_and_minor('USD', 12345),
            'amount_jpy': currint.Amount.from_code_and_minor('JPY', -500),
            'bytes': b'\x00\xff',
            'bytes_empty': b'',
            'int_min': -2 ** 63,
            'uint_max': 2 ** 64 - 1,
            'int_zero': 0,
            'int_small_neg': -1,
            'float': 0.1,
            'float_neg_zero': -0.0,
            'float_inf': float('inf'),
            'float_ninf': float('-inf'),
            'float_nan': float('nan'),
            'true': True,
            'false': False,
            'none': None,
            'unicode': 'h\u00e9llo \u65e5\u672c \U0001d11e',
            'empty_string': '',
            '\u043a\u043b\u044e\u0447': 'unicode key',
            'nested': {
                'list': [1, 'two', [3.5, None, True, {'deep': [decimal.Decimal('0.5')]}], {'k': 'v'}],
                'empty_list': [],
                'empty_dict': {},
                'dates': [datetime.date(1, 1, 1), datetime.date(9999, 12, 31)],
            },
        }
        response = self.client.call_action(self.service, 'echo', body)
        check_eq(response.errors, [], 'errors')
        diff = strict_diff(body, response.body)
        check(diff is None, 'echo mismatch: {}', diff)

    def case_json_serializer(self):
        client = self.make_client(default_serializer_config={
            'path': 'pysoa.common.serializer.json_serializer:JSONSerializer',
        })
        raw = capture_raw_responses(client, self.service)
        response = client.call_action(self.service, 'square', {'number': 12})
        check_eq(response.body, {'square': 144}, 'body')
        # The server must answer in the serializer the request used.
        check(raw and raw[0].startswith(b'pysoa-redis/3//content-type:application/json;'),
              'response is not a v3 JSON message: {!r}', raw[0][:80] if raw else None)
        body = {'s': 'h\u00e9llo \U0001d11e', 'l': [1, 2.5, None, True], 'd': {'x': -1}}
        response = client.call_action(self.service, 'echo', body)
        diff = strict_diff(body, response.body)
        check(diff is None, 'JSON echo mismatch: {}', diff)

    def _protocol(self, version):
        client = self.make_client(protocol_version=version)
        raw = capture_raw_responses(client, self.service)
        response = client.call_action(self.service, 'square', {'number': 10 + version})
        check_eq(response.body, {'square': (10 + version) ** 2}, 'body')
        # PySOA's client accepts any protocol version in a response, so check the raw bytes: the server must answer
        # in the protocol version the request used (v1: bare msgpack; v2: content-type header; v3: version prefix).
        check(len(raw) == 1, 'expected 1 raw response message, got {}', len(raw))
        head = raw[0][:60]
        if version == 1:
            check(not head.startswith(b'pysoa-redis/') and not head.startswith(b'content-type'),
                  'v1 response has a protocol prefix/header: {!r}', head)
        elif version == 2:
            check(head.startswith(b'content-type:application/msgpack;'), 'bad v2 response start: {!r}', head)
        else:
            check(head.startswith(b'pysoa-redis/3//content-type:application/msgpack;'),
                  'bad v3 response start: {!r}', head)
        response = client.call_action(self.service, 'echo', {'d': decimal.Decimal('1.50'), 'b': b'\x01'})
        check(strict_diff({'d': decimal.Decimal('1.50'), 'b': b'\x01'}, response.body) is None,
              'echo mismatch: {!r}', response.body)

    def case_protocol_v1(self):
        self._protocol(1)

    def case_protocol_v2(self):
        self._protocol(2)

    def case_protocol_v3(self):
        self._protocol(3)

    # -- errors --------------------------------------------------------------------------------------------------------

    def case_action_error_fields(self):
        response = self.client.call_action(self.service, 'fail', {}, raise_action_errors=False)
        check_eq(response.action, 'fail', 'action name')
        check_eq(len(response.errors), 1, 'number of errors')
        error = response.errors[0]
        check_eq(error.code, 'FAIL_CODE', 'code')
        check_eq(error.message, 'It failed', 'message')
        check_eq(error.field, 'some.field', 'field')
        check_eq(error.variables, {'a': 1}, 'variables')
        check_eq(error.denied_permissions, ['perm.x'], 'denied_permissions')
        check_eq(error.is_caller_error, True, 'is_caller_error')
        check_eq(error.traceback, None, 'traceback')
        try:
            self.client.call_action(self.service, 'fail')
        except Client.CallActionError as e:
            check_eq(len(e.actions), 1, 'CallActionError actions')
            check_eq(e.actions[0].errors[0].code, 'FAIL_CODE', 'CallActionError code')
        else:
            raise CaseFailure('expected CallActionError')

    def case_server_error(self):
        response = self.client.call_action(self.service, 'boom', {}, raise_action_errors=False)
        check_eq(len(response.errors), 1, 'number of errors')
        error = response.errors[0]
        check_eq(error.code, 'SERVER_ERROR', 'code')
        check(
            error.message == 'Internal server error: boom' or error.message.startswith('Internal server error'),
            'unexpected message {!r}', error.message,
        )
        check_eq(error.is_caller_error, False, 'is_caller_error')

    def _typed_error(self, body):
        response = self.client.call_action(self.service, 'typed', body, raise_action_errors=False)
        check_eq(response.body, {}, 'body')
        check_eq(len(response.errors), 1, 'number of errors ({!r})'.format(response.errors))
        error = response.errors[0]
        check_eq(error.is_caller_error, True, 'is_caller_error')
        return error

    def case_validation_error_missing(self):
        error = self._typed_error({})
        check_eq(error.code, 'MISSING', 'code')
        check_eq(error.field, 'n', 'field')

    def case_validation_error_invalid(self):
        error = self._typed_error({'n': 'x'})
        check_eq(error.code, 'INVALID', 'code')
        check_eq(error.field, 'n', 'field')

    def case_validation_error_extra(self):
        error = self._typed_error({'n': 1, 'zz': 2})
        check_eq(error.code, 'UNKNOWN', 'code')
        # PySOA (conformity 1.28.2): message "Extra keys present: zz", no pointer, so field is None.
        check_eq(error.field, None, 'field')

    def case_typed_ok(self):
        response = self.client.call_action(self.service, 'typed', {'n': 5})
        check_eq(response.body, {'n': 5, 's': None}, 'body without s')
        response = self.client.call_action(self.service, 'typed', {'n': -1, 's': 'x\u00e9'})
        check_eq(response.body, {'n': -1, 's': 'x\u00e9'}, 'body with s')

    def case_unknown_action(self):
        response = self.client.call_action(self.service, 'no_such_action', {}, raise_action_errors=False)
        check_eq(response.action, 'no_such_action', 'action name')
        check_eq(len(response.errors), 1, 'number of errors')
        error = response.errors[0]
        check_eq(error.code, 'UNKNOWN', 'code')
        check_eq(error.field, 'action', 'field')
        check_eq(error.message, 'The action "no_such_action" was not found on this server.', 'message')
        check_eq(error.is_caller_error, True, 'is_caller_error')

    # -- transport -----------------------------------------------------------------------------------------------------

    def case_chunked_response_3mb(self):
        size = 3000000
        client = self.make_client(maximum_message_size_in_bytes=MAXIMUM_MESSAGE_SIZE_IN_BYTES)
        raw = capture_raw_responses(client, self.service)
        response = client.call_action(self.service, 'big', {'size': size}, timeout=30)
        data = response.body.get('data')
        check(isinstance(data, str), 'data is not a str: {!r}', type(data))
        check_eq(len(data), size, 'length')
        check(data == 'a' * size, 'data is not all "a"')
        # It really was chunked: N >= 2 messages, each `pysoa-redis/3//content-type:application/msgpack;
        # chunk-count:N;chunk-id:i;` with i = 1..N.
        check(len(raw) >= 2, 'response was not chunked ({} message(s))', len(raw))
        for i, chunk in enumerate(raw, 1):
            prefix = 'pysoa-redis/3//content-type:application/msgpack;chunk-count:{};chunk-id:{};'.format(len(raw), i)
            check(chunk.startswith(prefix.encode('ascii')), 'chunk {} starts with {!r}', i, chunk[:90])
        # The client still works afterwards (all chunks consumed).
        check_eq(client.call_action(self.service, 'square', {'number': 3}).body, {'square': 9}, 'follow-up body')

    def case_context_and_switches(self):
        correlation_id = 'corr-py-{}'.format(uuid.uuid4().hex)
        job = self.client.call_actions(
            self.service,
            [{'action': 'context', 'body': {}}],
            correlation_id=correlation_id,
            switches=[3, 7],
            context={'custom': 'v', 'caller': 'py-client'},
        )
        check_eq(job.context.get('correlation_id'), correlation_id, 'job response context correlation_id')
        check_eq(job.actions[0].body, {
            'correlation_id': correlation_id,
            'switches': [3, 7],
            'calling_service': None,
            'caller': 'py-client',
            'custom': 'v',
        }, 'body')

    def case_chaining_python_to_rust_to_python(self):
        check(self.python_service is not None, 'needs --python-service')
        correlation_id = 'corr-chain-{}'.format(uuid.uuid4().hex)
        response = self.client.call_action(
            self.service,
            'call_service',
            {'service': self.python_service},
            correlation_id=correlation_id,
            switches=[5, 11],
            context={'custom': 'chained', 'caller': 'py-client'},
            timeout=10,
        )
        downstream = response.body.get('downstream')
        check(isinstance(downstream, dict), 'no downstream body: {!r}', response.body)
        check_eq(downstream.get('correlation_id'), correlation_id, 'downstream correlation_id')
        check_eq(downstream.get('switches'), [5, 11], 'downstream switches')
        check_eq(downstream.get('calling_service'), self.service, 'downstream calling_service')
        check_eq(downstream.get('custom'), 'chained', 'downstream custom context')
        check_eq(downstream.get('caller'), 'py-client', 'downstream caller')

    def case_suppress_response(self):
        # In PySOA, a suppressed request still counts as outstanding on the sending client's transport
        # (RedisClientTransport._requests_outstanding), so a later blocking call on *that* client would wait for a
        # response that never comes. So: send the suppressed request with client A, make a normal call with client
        # B, then check that nothing at all arrives on client A's reply queue.
        client_a = self.make_client()
        client_b = self.make_client()
        client_a.send_request(
            self.service,
            [{'action': 'square', 'body': {'number': 6}}],
            suppress_response=True,
        )
        check_eq(client_b.call_action(self.service, 'square', {'number': 8}).body, {'square': 64}, 'normal call')
        try:
            stale = list(client_a.get_all_responses(self.service, receive_timeout_in_seconds=2))
        except MessageReceiveTimeout:
            pass
        else:
            raise CaseFailure('suppressed request produced a response: {!r}'.format(stale))

    def case_expiry(self):
        client = self.make_client()
        start = time.time()
        try:
            client.call_action(self.service, 'sleep', {'seconds': 2.0}, timeout=1)
        except MessageReceiveTimeout:
            elapsed = time.time() - start
            check(elapsed < 1.9, 'timeout took too long: {:.2f}s', elapsed)
        else:
            raise CaseFailure('expected MessageReceiveTimeout')
        # The late `sleep` response still arrives on this client's reply queue; PySOA's client skips it by
        # request ID, so the next call on the same client returns the right response.
        response = client.call_action(self.service, 'square', {'number': 5}, timeout=10)
        check_eq(response.body, {'square': 25}, 'follow-up body')

    # -- built-ins -----------------------------------------------------------------------------------------------------

    def case_status(self):
        body = self.client.call_action(self.service, 'status').body
        for key in ('conformity', 'pysoa', 'python', 'version'):
            check(isinstance(body.get(key), str), 'verbose status: {} missing or not a str in {!r}', key, body)
        healthcheck = body.get('healthcheck')
        check(isinstance(healthcheck, dict), 'verbose status: no healthcheck dict in {!r}', body)
        check_eq(sorted(healthcheck), ['diagnostics', 'errors', 'warnings'], 'healthcheck keys')
        check_eq(healthcheck['errors'], [], 'healthcheck errors')
        body = self.client.call_action(self.service, 'status', {'verbose': False}).body
        for key in ('conformity', 'pysoa', 'python', 'version'):
            check(isinstance(body.get(key), str), 'non-verbose status: {} missing in {!r}', key, body)
        check('healthcheck' not in body, 'non-verbose status has a healthcheck: {!r}', body)

    def case_introspect(self):
        expected_actions = [
            'big', 'boom', 'call_service', 'context', 'echo', 'fail', 'introspect', 'sleep', 'square', 'status',
            'typed',
        ]
        body = self.client.call_action(self.service, 'introspect').body
        check_eq(body.get('action_names'), expected_actions, 'action_names')
        check('documentation' in body, 'no documentation key in {!r}', sorted(body))
        check_eq(sorted(body.get('actions', {})), expected_actions, 'actions keys')
        for name, info in body['actions'].items():
            check_eq(sorted(info), ['documentation', 'request_schema', 'response_schema'], 'keys of ' + name)
        check_eq(body['actions']['echo']['request_schema'], None, 'echo request_schema')

        body = self.client.call_action(self.service, 'introspect', {'action_name': 'square'}).body
        check_eq(body.get('action_names'), ['square'], 'single action_names')
        check_eq(sorted(body.get('actions', {})), ['square'], 'single actions keys')
        square = body['actions']['square']
        schema = square.get('request_schema')
        check(isinstance(schema, dict), 'square request_schema is not a dict: {!r}', schema)
        check_eq(schema.get('type'), 'dictionary', 'square request_schema type')
        check_eq(schema.get('contents', {}).get('number', {}).get('type'), 'integer', 'square number type')

        response = self.client.call_action(
            self.service, 'introspect', {'action_name': 'nope'}, raise_action_errors=False,
        )
        check_eq([(e.code, e.field) for e in response.errors], [('INVALID', 'action_name')], 'unknown action errors')


CASE_NAMES = [
    'call_action_square',
    'call_actions_stop_on_error',
    'call_actions_continue_on_error',
    'call_actions_parallel',
    'call_jobs_parallel',
    'echo_types_msgpack',
    'action_error_fields',
    'server_error',
    'validation_error_missing',
    'validation_error_invalid',
    'validation_error_extra',
    'typed_ok',
    'unknown_action',
    'chunked_response_3mb',
    'context_and_switches',
    'chaining_python_to_rust_to_python',
    'suppress_response',
    'expiry',
    'status',
    'introspect',
    'json_serializer',
    'protocol_v1',
    'protocol_v2',
    'protocol_v3',
]


def main(argv=None):
    parser = argparse.ArgumentParser(description='PySOA client cases for the rsoa interop test')
    parser.add_argument('--port', type=int, required=True, help='Redis port')
    parser.add_argument('--host', default='127.0.0.1', help='Redis host (default 127.0.0.1)')
    parser.add_argument('--service', required=True, help='Service under test (normally rsinterop)')
    parser.add_argument('--python-service', default=None, help='A PySOA service on the same Redis (pyinterop)')
    parser.add_argument('--only', default=None, help='Comma-separated case names to run (default: all)')
    parser.add_argument('--verbose', action='store_true', help='Print tracebacks of failures to stderr')
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    names = CASE_NAMES
    if args.only:
        names = [n.strip() for n in args.only.split(',') if n.strip()]
        unknown = [n for n in names if n not in CASE_NAMES]
        if unknown:
            parser.error('unknown case(s): {}'.format(', '.join(unknown)))

    passed = failed = 0
    cases = None
    try:
        cases = Cases(args.host, args.port, args.service, args.python_service)
    except Exception as e:
        setup_error = '{}: {}'.format(type(e).__name__, e)
    for name in names:
        try:
            if cases is None:
                raise CaseFailure('client setup failed: ' + setup_error)
            getattr(cases, 'case_' + name)()
        except Exception as e:
            failed += 1
            reason = str(e) if isinstance(e, CaseFailure) else '{}: {}'.format(type(e).__name__, e)
            reason = ' '.join(reason.split())  # keep it on one line
            if len(reason) > 1000:
                reason = reason[:1000] + '...'
            print('FAIL {}: {}'.format(name, reason), flush=True)
            if args.verbose:
                traceback.print_exc(file=sys.stderr)
        else:
            passed += 1
            print('PASS {}'.format(name), flush=True)

    print('python cases: {} passed, {} failed'.format(passed, failed), flush=True)
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
