"""Byte-level differential check: the same raw request frames to the PySOA `pyinterop` and the rsoa `rsinterop`
services, their responses compared byte for byte.

Usage::

    python differential.py --port PORT [--host 127.0.0.1] [--python-service pyinterop] [--rust-service rsinterop]
                           [--only NAME[,NAME...]] [--show]

Every case is one Redis message (a framed envelope, or bytes that are not one) pushed to a service's request
queue with a reply queue of its own. Each service's reply is taken as Redis holds it (every chunk, headers
included) and compared after normalising only what must differ: `__expiry__`, the reply queue name, traceback
text and the version strings of `status`. Besides equality after that, each side's payload must be exactly what
PySOA's own serializer writes for what it decodes to (no other integer width, float width or string type).

Cases that make a PySOA process exit (see the wire spec, section 19) go to rsoa alone: after each, rsoa must
still answer. Differences that are deliberate are listed in DELIBERATE with the reason, and in docs/interop.md.

Prints one line per case (`SAME`, `DIFFER`, `DELIBERATE`, `OPEN` or `RSOA`), then `differential: N same, N differ
(N deliberate, N open), N rsoa only`. Exit status 1 if a difference is neither deliberate nor a known open one, or
a listed difference is gone (take it off the list).
"""
from __future__ import absolute_import, print_function, unicode_literals

import argparse
import datetime
import decimal
import json
import re
import sys
import time

import currint
import redis

from pysoa.common.serializer.json_serializer import JSONSerializer
from pysoa.common.serializer.msgpack_serializer import MsgpackSerializer


MSGPACK = MsgpackSerializer()
JSON = JSONSerializer()
V3 = b'pysoa-redis/3//'
MIME = {'msgpack': b'application/msgpack', 'json': b'application/json'}
HEADER = re.compile(br'\s*(content-type|chunk-count|chunk-id)\s*:\s*([a-zA-Z0-9_/.-]+)\s*;')
WAIT_SECONDS = 30

# Differences kept on purpose: case name -> why.
DELIBERATE = {
    'json_int_beyond_64_bits': 'rsoa values hold 64-bit integers: it answers INVALID naming the number instead of '
                               'echoing it (it used to drop the message, and the caller waited for its timeout)',
}


# Differences not fixed yet: case name -> what is missing. Listed so that a new difference still fails the check.
OPEN = {
}


def envelope(body, request_id=1, client_version=(1, 4, 9), meta_extra=None, expiry_in=60.0):
    meta = {}
    if client_version is not None:
        meta['client_version'] = list(client_version)
    meta['reply_to'] = None  # filled in per service
    if expiry_in is not None:
        meta['__expiry__'] = time.time() + expiry_in
    meta.update(meta_extra or {})
    return {'request_id': request_id, 'meta': meta, 'body': body}


def job(actions, context=None, control=None, **extra):
    body = {
        'control': {'continue_on_error': False} if control is None else control,
        'context': {'switches': [], 'correlation_id': 'corr-1'} if context is None else context,
        'actions': actions,
    }
    body.update(extra)
    return body


def action(name, body=None):
    return {'action': name, 'body': {} if body is None else body}


def frame(env, serializer='msgpack', version=3):
    """A Redis message as PySOA's transport writes it (version 3 by default)."""
    payload = (MSGPACK if serializer == 'msgpack' else JSON).dict_to_blob(env)
    head = b'content-type:' + MIME[serializer] + b';'
    if version == 3:
        return V3 + head + payload
    if version == 2:
        return head + payload
    return payload


class Case(object):
    def __init__(self, name, build, python=True):
        self.name = name
        self.build = build  # reply_to -> bytes
        self.python = python


def simple(name, body, python=True, serializer='msgpack', version=3, **env_kwargs):
    def build(reply_to):
        env = envelope(body, **env_kwargs)
        env['meta']['reply_to'] = reply_to
        return frame(env, serializer, version)
    return Case(name, build, python)


def raw(name, make, python=False):
    """A case whose bytes are written by hand: `make(reply_to)` returns them."""
    return Case(name, make, python)


def echo_values():
    yield 'nil', None
    yield 'true', True
    yield 'false', False
    for n in (0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 63 - 1, 2 ** 64 - 1,
              -1, -32, -33, -128, -129, -32768, -32769, -2 ** 31, -2 ** 31 - 1, -2 ** 63):
        yield 'int_{}'.format(n).replace('-', 'minus_'), n
    for name, f in (('zero', 0.0), ('half', 1.5), ('negative', -2.25), ('huge', 1e300), ('tiny', 5e-324),
                    ('inf', float('inf'))):
        yield 'float_' + name, f
    for n in (0, 1, 31, 32, 255, 256, 65535, 65536):
        yield 'str_{}'.format(n), 'x' * n
    yield 'str_unicode', 'h\u00e9llo \u2603 \U0001F600'
    for n in (0, 2, 255, 256):
        yield 'bytes_{}'.format(n), bytes(bytearray(i % 256 for i in range(n)))
    for n in (0, 15, 16):
        yield 'list_{}'.format(n), list(range(n))
    for n in (0, 15, 16):
        yield 'map_{}'.format(n), {'k{:02}'.format(i): i for i in range(n)}
    yield 'nested', {'a': [1, {'b': [None, True, 'c', 1.5]}], 'd': {}}
    yield 'datetime', datetime.datetime(2026, 12, 4, 19, 30, 5, 123456)
    yield 'date', datetime.date(2026, 12, 4)
    yield 'time', datetime.time(19, 30, 5, 123456)
    yield 'decimal', decimal.Decimal('-12345.678900')
    yield 'currint', currint.Amount.from_code_and_minor('USD', 12345)


def cases():
    out = []
    add = out.append
    # Valid jobs, each action of the contract.
    for n in (0, 1, -1, 7, 127, 128, 65536, -2 ** 31 - 1, 2 ** 31, 3037000499):
        add(simple('square_{}'.format(n).replace('-', 'minus_'), job([action('square', {'number': n})])))
    for name, value in echo_values():
        add(simple('echo_' + name, job([action('echo', {'v': value})])))
    add(simple('echo_empty_body', job([action('echo')])))
    add(simple('fail', job([action('fail')])))
    add(simple('boom', job([action('boom')])))
    for name, body in (('typed_n', {'n': 1}), ('typed_n_s', {'n': 1, 's': 'x'}), ('typed_s_null', {'n': 1, 's': None}),
                       ('typed_wrong_type', {'n': 'x'}), ('typed_missing', {}), ('typed_bool', {'n': True}),
                       ('typed_float', {'n': 1.5}), ('typed_extra', {'n': 1, 'zz': 1, 'aa': 2}),
                       ('typed_many_errors', {'s': 5, 'zz': 1})):
        add(simple(name, job([action('typed', body)])))
    for size in (0, 10, 102300, 250000):
        add(simple('big_{}'.format(size), job([action('big', {'size': size})])))
    add(simple('big_negative', job([action('big', {'size': -1})])))
    add(simple('context', job([action('context')], context={
        'switches': [5, 1], 'correlation_id': 'corr-ctx', 'caller': 'diff', 'calling_service': 'differential',
        'custom': {'x': [1, 2]}})))
    add(simple('status', job([action('status')])))
    add(simple('status_verbose_false', job([action('status', {'verbose': False})])))
    add(simple('introspect_all', job([action('introspect')])))
    add(simple('introspect_whitespace', job([action('introspect', {'action_name': ' '})])))
    add(simple('introspect_action', job([action('introspect', {'action_name': 'square'})])))
    add(simple('introspect_unknown', job([action('introspect', {'action_name': 'nope'})])))
    add(simple('introspect_blank', job([action('introspect', {'action_name': ''})])))
    add(simple('introspect_builtin', job([action('introspect', {'action_name': 'status'})])))
    add(simple('introspect_extra_key', job([action('introspect', {'bogus': 1})])))
    add(simple('unknown_action', job([action('nope')])))
    add(simple('two_actions', job([action('square', {'number': 3}), action('echo', {'a': 1})])))
    add(simple('stop_on_error', job([action('fail'), action('square', {'number': 3})])))
    add(simple('continue_on_error', job([action('fail'), action('square', {'number': 3})],
                                        control={'continue_on_error': True})))
    add(simple('suppress_response', job([action('square', {'number': 3})],
                                        control={'continue_on_error': False, 'suppress_response': True})))
    add(simple('suppress_response_false', job([action('square', {'number': 3})],
                                              control={'continue_on_error': False, 'suppress_response': False})))
    # Invalid jobs.
    add(simple('actions_empty', job([])))
    add(simple('actions_not_list', job({'action': 'square'})))
    add(simple('actions_missing', {'control': {'continue_on_error': False},
                                   'context': {'switches': [], 'correlation_id': 'c'}}))
    add(simple('action_not_map', job(['square'])))
    add(simple('action_name_missing', job([{'body': {}}])))
    add(simple('action_name_int', job([{'action': 5, 'body': {}}])))
    add(simple('action_name_blank', job([action('')])))
    add(simple('action_body_list', job([{'action': 'echo', 'body': [1]}])))
    add(simple('action_extra_key', job([{'action': 'echo', 'body': {}, 'zz': 1}])))
    add(simple('context_missing', {'control': {'continue_on_error': False}, 'actions': [action('echo')]}))
    add(simple('switches_missing', job([action('echo')], context={'correlation_id': 'c'})))
    add(simple('switches_not_int', job([action('echo')], context={'switches': ['a'], 'correlation_id': 'c'})))
    add(simple('switch_2_63', job([action('context')], context={'switches': [2 ** 63], 'correlation_id': 'c'})))
    add(simple('switch_2_64_minus_1', job([action('context')],
                                          context={'switches': [2 ** 64 - 1], 'correlation_id': 'c'})))
    add(simple('switch_negative', job([action('context')], context={'switches': [-1], 'correlation_id': 'c'})))
    add(simple('correlation_id_missing', job([action('echo')], context={'switches': []})))
    add(simple('correlation_id_int', job([action('echo')], context={'switches': [], 'correlation_id': 5})))
    add(simple('caller_int', job([action('echo')], context={'switches': [], 'correlation_id': 'c', 'caller': 5})))
    add(simple('control_missing', {'context': {'switches': [], 'correlation_id': 'c'}, 'actions': [action('echo')]}))
    add(simple('continue_on_error_str', job([action('echo')], control={'continue_on_error': 'yes'})))
    add(simple('suppress_response_str', job([action('echo')],
                                            control={'continue_on_error': False, 'suppress_response': 'yes'})))
    add(simple('suppress_response_invalid_job', job([], control={'continue_on_error': False,
                                                                 'suppress_response': True})))
    add(simple('suppress_response_no_switches', job([action('echo')], context={'correlation_id': 'c'},
                                                    control={'continue_on_error': False, 'suppress_response': True})))
    add(simple('suppress_response_truthy_int', job([], control={'continue_on_error': False, 'suppress_response': 1})))
    add(simple('job_extra_key', job([action('echo')], zz=1)))
    add(simple('many_job_errors', {'control': {'continue_on_error': 'x', 'zz': 1},
                                   'context': {'switches': 'a', 'correlation_id': 5}, 'actions': [{'body': 5}],
                                   'zz': 1}))
    # The envelope and its framing.
    body = job([action('square', {'number': 4})])
    add(simple('framing_v2', body, version=2))
    add(simple('framing_v1', body, version=1))
    add(simple('json_v3', body, serializer='json'))
    add(simple('json_v2', body, serializer='json', version=2))
    add(simple('json_echo', job([action('echo', {'v': [None, True, 1, -1, 1.5, 'x', {'a': []}]})]), serializer='json'))
    add(simple('client_version_absent', job([action('fail')]), client_version=None))
    add(simple('client_version_old', job([action('fail')]), client_version=(0, 60, 0)))
    add(simple('client_version_0_70', job([action('fail')]), client_version=(0, 70, 0)))
    add(simple('meta_extra_keys', body, meta_extra={'zz': 1, 'aa': [1, 'x']}))
    add(simple('meta_serializer_keys', body, meta_extra={'serializer': 'x', 'protocol_version': 9}))
    add(simple('expired', body, expiry_in=-10.0))
    add(simple('no_expiry', body, expiry_in=None))
    add(simple('request_id_string', body, request_id='abc'))
    add(simple('request_id_big', body, request_id=2 ** 62))

    def unknown_content_type(reply_to):
        env = envelope(body)
        env['meta']['reply_to'] = reply_to
        return V3 + b'content-type:application/x-unknown;' + MSGPACK.dict_to_blob(env)
    add(raw('content_type_unknown', unknown_content_type, python=True))

    def header_spaces(reply_to):
        env = envelope(body)
        env['meta']['reply_to'] = reply_to
        return V3 + b' content-type : application/msgpack ;' + MSGPACK.dict_to_blob(env)
    add(raw('header_spaces', header_spaces, python=True))

    def json_big_int(reply_to):
        env = envelope(job([action('echo', {'v': 0})]))
        env['meta']['reply_to'] = reply_to
        text = JSON.dict_to_blob(env).replace(b'{"v": 0}', b'{"v": 123456789012345678901234567890}')
        return V3 + b'content-type:application/json;' + text
    add(raw('json_int_beyond_64_bits', json_big_int, python=True))

    # What makes a PySOA process exit: to rsoa alone.
    def without(key):
        def build(reply_to):
            env = envelope(body)
            env['meta']['reply_to'] = reply_to
            del env[key]
            return V3 + b'content-type:application/msgpack;' + MSGPACK.dict_to_blob(env)
        return build
    add(raw('request_id_missing', without('request_id')))
    add(raw('meta_missing', without('meta')))
    add(raw('body_missing', without('body')))
    add(raw('request_id_null', lambda rt: frame({'request_id': None, 'meta': {'reply_to': rt}, 'body': body})))
    add(raw('meta_null', lambda rt: frame({'request_id': 1, 'meta': None, 'body': body})))
    add(raw('reply_to_missing', lambda rt: frame({'request_id': 1, 'meta': {'client_version': [1, 4, 9]},
                                                  'body': body})))
    add(raw('client_version_int', lambda rt: frame({'request_id': 1, 'meta': {'client_version': 5, 'reply_to': rt},
                                                    'body': body})))
    add(raw('client_version_str', lambda rt: frame({'request_id': 1, 'meta': {'client_version': '1.4.9',
                                                                              'reply_to': rt},
                                                    'body': job([action('fail')])})))
    add(raw('undecodable', lambda rt: V3 + b'content-type:application/msgpack;' + b'\xc1\xc1\xc1'))
    add(raw('version_9', lambda rt: b'pysoa-redis/9//' + frame({'request_id': 1, 'meta': {'reply_to': rt},
                                                                 'body': body}, version=2)))
    add(raw('chunked_request', lambda rt: V3 + b'content-type:application/msgpack;chunk-count:1;chunk-id:1;' +
            MSGPACK.dict_to_blob({'request_id': 1, 'meta': {'reply_to': rt}, 'body': body})))
    add(raw('body_not_map', lambda rt: frame({'request_id': 1, 'meta': {'reply_to': rt}, 'body': [1]})))
    add(raw('context_request_id', lambda rt: frame({'request_id': 1, 'meta': {'reply_to': rt}, 'body': job(
        [action('echo')], context={'switches': [], 'correlation_id': 'c', 'request_id': 5})})))
    add(raw('reply_to_service_queue', lambda rt: frame({'request_id': 1, 'meta': {'reply_to': 'service.rsinterop'},
                                                        'body': body})))
    return out


def split(message):
    """A Redis message's version, headers and payload, as PySOA's transport parses them."""
    version = 1
    match = re.match(br'pysoa-redis/([0-9]+)//', message)
    if match:
        version, message = int(match.group(1)), message[match.end():]
    elif message.startswith(b'content-type'):
        version = 2
    headers = []
    while True:
        match = HEADER.match(message)
        if not match:
            break
        headers.append((match.group(1), match.group(2)))
        message = message[match.end():]
    return version, headers, message


def normalise(value, key=None):
    """What must differ between two servers, made the same."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == '__expiry__':
                v = '<expiry>'
            elif k == 'reply_to':
                v = '<reply_to>'
            elif k == 'traceback' and isinstance(v, str):
                v = '<traceback>'
            elif k in ('pysoa', 'python', 'version', 'conformity') and key == 'body':
                v = '<version>'
            out[k] = normalise(v, k)
        return out
    if isinstance(value, list):
        return [normalise(v, key) for v in value]
    return value


def describe(messages):
    """One service's reply, normalised, as bytes to compare; and what is wrong with its encoding, if anything."""
    if not messages:
        return b'<no response>', None
    framing = []
    payload = b''
    for message in messages:
        version, headers, body = split(message)
        framing.append((version, headers))
        payload += body
    content_type = dict(framing[0][1]).get(b'content-type', b'application/msgpack')
    serializer = JSON if content_type == MIME['json'] else MSGPACK
    try:
        decoded = serializer.blob_to_dict(payload)
    except Exception as e:
        return repr(framing).encode() + b' undecodable: ' + repr(e).encode(), None
    problem = None
    if serializer.dict_to_blob(decoded) != payload:
        problem = 'the payload is not what PySOA writes for the same value'
    return repr(framing).encode() + b' ' + serializer.dict_to_blob(normalise(decoded)), problem


def summary(messages):
    """A reply in a line: its job errors, or its actions' names and errors."""
    if not messages:
        return 'no response'
    _, headers, payload = split(b''.join(messages))
    serializer = JSON if dict(headers).get(b'content-type') == MIME['json'] else MSGPACK
    body = serializer.blob_to_dict(payload)['body']
    if body['errors']:
        return 'job errors {}'.format([(e['code'], e['message']) for e in body['errors']])
    return 'actions {}'.format([(a['action'], [e['code'] for e in a['errors']]) for a in body['actions']])


class Differential(object):
    def __init__(self, host, port, python_service, rust_service):
        self.redis = redis.StrictRedis(host=host, port=port)
        self.services = {'python': python_service, 'rust': rust_service}
        self.counter = 0

    def reply_queue(self, side):
        self.counter += 1
        return 'service.differential.{}!{}'.format(side, self.counter)

    def settle(self, side):
        """Waits until the service has taken everything sent before: a sentinel job's answer. PySOA runs one job at
        a time, in order; rsoa may run them side by side, which `send` allows for."""
        reply_to = self.reply_queue(side)
        env = envelope(job([action('echo', {'sentinel': True})]))
        env['meta']['reply_to'] = reply_to
        self.redis.rpush('pysoa:service.' + self.services[side], frame(env))
        if self.redis.blpop(['pysoa:' + reply_to], timeout=WAIT_SECONDS) is None:
            raise RuntimeError('{} service did not answer within {} s'.format(side, WAIT_SECONDS))

    def send(self, case, side, expect_response):
        reply_to = self.reply_queue(side)
        self.redis.rpush('pysoa:service.' + self.services[side], case.build(reply_to))
        key = 'pysoa:' + reply_to
        if expect_response:
            first = self.redis.blpop([key], timeout=WAIT_SECONDS)
            messages = [first[1]] if first else []
            # A chunked response: the remaining chunks follow the first at once.
            while messages:
                _, headers, _ = split(messages[0])
                count = int(dict(headers).get(b'chunk-count', b'1'))
                if len(messages) >= count:
                    break
                nxt = self.redis.blpop([key], timeout=WAIT_SECONDS)
                if nxt is None:
                    break
                messages.append(nxt[1])
            return key, messages
        self.settle(side)
        return key, self.redis.lrange(key, 0, -1)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Byte-level differential check, PySOA against rsoa')
    parser.add_argument('--port', type=int, required=True, help='Redis port')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--python-service', default='pyinterop')
    parser.add_argument('--rust-service', default='rsinterop')
    parser.add_argument('--only', default=None, help='Comma-separated case names (default: all)')
    parser.add_argument('--show', action='store_true', help='Print both replies of every differing case')
    args = parser.parse_args(argv)

    diff = Differential(args.host, args.port, args.python_service, args.rust_service)
    diff.settle('python')
    diff.settle('rust')
    all_cases = cases()
    names = [c.name for c in all_cases]
    assert len(set(names)) == len(names), 'case names must be unique'
    if args.only:
        wanted = set(n.strip() for n in args.only.split(','))
        all_cases = [c for c in all_cases if c.name in wanted]
    same = differ = deliberate = still_open = rsoa_only = 0
    unexpected = []
    silent = []  # rsoa cases with no reply yet, checked again at the end for a late one
    for case in all_cases:
        if not case.python:
            key, messages = diff.send(case, 'rust', expect_response=False)
            rsoa_only += 1
            print('RSOA {}: {}'.format(case.name, summary(messages)))
            continue
        # PySOA first, without waiting on a reply that may never come: the sentinel says when it is done.
        _, py_messages = diff.send(case, 'python', expect_response=False)
        key, rs_messages = diff.send(case, 'rust', expect_response=bool(py_messages))
        if not rs_messages:
            silent.append((case, key))
        py, py_problem = describe(py_messages)
        rs, rs_problem = describe(rs_messages)
        problem = rs_problem if rs_problem and not py_problem else None
        if py == rs and problem is None:
            same += 1
            print('SAME {}'.format(case.name))
            if case.name in DELIBERATE or case.name in OPEN:
                unexpected.append('{} is listed as a difference but is now the same'.format(case.name))
            continue
        differ += 1
        if case.name in DELIBERATE:
            deliberate += 1
            print('DELIBERATE {}: {}'.format(case.name, DELIBERATE[case.name]))
        elif case.name in OPEN:
            still_open += 1
            print('OPEN {}: {}'.format(case.name, OPEN[case.name]))
        else:
            unexpected.append(case.name)
            print('DIFFER {}{}'.format(case.name, ': ' + problem if problem else ''))
        if args.show or (case.name not in DELIBERATE and case.name not in OPEN):
            print('  pysoa: {}'.format(py if args.show else py[:600]))
            print('  rsoa:  {}'.format(rs if args.show else rs[:600]))
    for case, key in silent:
        late = diff.redis.lrange(key, 0, -1)
        if late:
            unexpected.append('{}: rsoa answered late, PySOA never did: {}'.format(case.name, late[0][:200]))
    print('differential: {} same, {} differ ({} deliberate, {} open), {} rsoa only'.format(
        same, differ, deliberate, still_open, rsoa_only))
    for line in unexpected:
        print('UNEXPECTED {}'.format(line))
    return 1 if unexpected else 0


if __name__ == '__main__':
    sys.exit(main())
