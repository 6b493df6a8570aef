#!/usr/bin/env python3
"""
Golden-data generator for rsoa's PySOA test-plan (``*.pysoa``) parser.

Runs the REAL PySOA 1.4.9 parser (``pysoa.test.plan.parser.ServiceTestPlanFixtureParser``) on fixture files and
writes a normalized JSON rendering of the parsed test cases, so a Rust test can check that rsoa parses every fixture
identically. Requires a Python environment with pysoa==1.4.9, pyparsing==2.4.7, freezegun==0.3.15 and pytest<8
(``pysoa.test.plan`` imports ``_pytest.python_api.RaisesContext``, which pytest 8 removed).

Usage:
    python dump_plans.py FILE.pysoa [FILE.pysoa ...]      # writes FILE.parsed.json next to each FILE.pysoa
    python dump_plans.py --print FILE.pysoa [...]          # prints the JSON instead
    python dump_plans.py --extract-unit PATH/TO/tests/unit/test/plan/test_parser.py OUT_DIR
                                                           # writes OUT_DIR/<test_function_name>.pysoa
    python dump_plans.py --vectors OUT.json                # data-type / path tool vectors (see README.md)
    --pysoa-source DIR   put a PySOA source checkout (holding tests/integration/...) on sys.path; see below

mocking_and_stubbing/mocking_test.pysoa has a `mock: ...: side_effect: exception
tests.integration.test.plan.test_001_fixtures_work:ExpectedException` directive, which PySOA resolves (imports) while
parsing. In PySOA's own test run that module is importable. Pass --pysoa-source (or set PYSOA_SOURCE) to import the
real one; otherwise a stand-in module defining only `ExpectedException` is registered (with a warning). The output is
the same either way, since every `mock_patches` value is rendered as "$mock".

Everything is evaluated under freezegun frozen at 2026-01-02T03:04:05 (naive, i.e. UTC) for the whole parse of each
file; a ``freeze time:`` directive in a fixture starts its own (nested) freeze during parsing, as PySOA does.

Output format (json.dumps(..., sort_keys=True, indent=1, ensure_ascii=False) plus a trailing newline):
  * a JSON list of the parsed test cases, or
  * {"$syntax_error": {"line": <lineno>, "message_contains": <first line of the message, file path prefix removed>}}
  * {"$load_error": true}
Value normalization:
  dict -> object (str key as is, int key -> str(k), (service, action) tuple key -> "service:action");
  list/tuple -> array; pysoa Error -> {"$error": {"code", "field", "message"}};
  AnyValue -> {"$any": data_type, "permit_none": bool}; RegexValue -> {"$regex": pattern, "negate": bool};
  bytes -> {"$bytes": base64}; datetime -> {"$datetime": isoformat}; date -> {"$date": isoformat};
  time -> {"$time": isoformat}; Decimal -> {"$decimal": str}; float -> {"$float": repr};
  int outside signed 64-bit -> {"$bigint": str}; bool/None/str/other ints as is.
Test-case level: keys fixture_source, source, fixture_file_name dropped; `description` cut at its first "\n"
(PySOA appends "\n<file name>"). At any level: keys starting with "_freezegun_context" dropped, any `mock_patches`
value replaced by the string "$mock".
"""
from __future__ import absolute_import, print_function, unicode_literals

import argparse
import ast
import base64
import datetime
import decimal
import io
import json
import os
import re
import sys

import freezegun
import freezegun.api

import pysoa.test.plan  # noqa: F401  (registers all directives)
from pysoa.common.errors import Error
from pysoa.test.plan.errors import FixtureLoadError, FixtureSyntaxError
from pysoa.test.plan.grammar import data_types
from pysoa.test.plan.grammar.data_types import AnyValue, RegexValue
from pysoa.test.plan.grammar.tools import get_all_paths, path_get, path_put, substitute_variables
from pysoa.test.plan.parser import ServiceTestPlanFixtureParser


FROZEN_AT = datetime.datetime(2026, 1, 2, 3, 4, 5)
INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1
TEST_CASE_DROPPED_KEYS = ('fixture_source', 'source', 'fixture_file_name')


class NormalizationError(Exception):
    pass


def _norm_key(k):
    if isinstance(k, str):
        return k
    if isinstance(k, bool):
        raise NormalizationError('bool dict key {!r}'.format(k))
    if isinstance(k, int):
        return str(k)
    if isinstance(k, tuple) and len(k) == 2 and all(isinstance(x, str) for x in k):
        return '{}:{}'.format(*k)
    raise NormalizationError('unsupported dict key {!r}'.format(k))


def norm(value):
    """Normalize a value PySOA built into the JSON form described in the module docstring."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return value
        return {'$bigint': str(value)}
    if isinstance(value, float):
        return {'$float': repr(value)}
    if isinstance(value, decimal.Decimal):
        return {'$decimal': str(value)}
    if isinstance(value, bytes):
        return {'$bytes': base64.b64encode(value).decode('ascii')}
    # datetime before date: datetime is a subclass of date (freezegun's Fake* classes subclass the real ones)
    if isinstance(value, datetime.datetime):
        return {'$datetime': value.isoformat()}
    if isinstance(value, datetime.date):
        return {'$date': value.isoformat()}
    if isinstance(value, datetime.time):
        return {'$time': value.isoformat()}
    if isinstance(value, AnyValue):
        return {'$any': value.data_type, 'permit_none': bool(value.permit_none)}
    if isinstance(value, RegexValue):
        return {'$regex': value.pattern, 'negate': bool(value.negate)}
    if isinstance(value, Error):
        return {'$error': {'code': norm(value.code), 'field': norm(value.field), 'message': norm(value.message)}}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and k.startswith('_freezegun_context'):
                continue
            nk = _norm_key(k)
            if nk in out:
                raise NormalizationError('dict keys collide after normalization: {!r}'.format(nk))
            out[nk] = '$mock' if k == 'mock_patches' else norm(v)
        return out
    if isinstance(value, (list, tuple)):
        return [norm(v) for v in value]
    raise NormalizationError('cannot normalize {!r} of type {}'.format(value, type(value)))


def norm_test_case(test_case):
    tc = dict(test_case)
    for key in TEST_CASE_DROPPED_KEYS:
        tc.pop(key, None)
    if isinstance(tc.get('description'), str):
        tc['description'] = tc['description'].split('\n', 1)[0]
    return norm(tc)


def _syntax_error_result(e, file_name):
    msg = e.msg if isinstance(e.msg, str) else str(e.msg)
    first = msg.split('\n', 1)[0]
    # Messages like "<file>:<line>: Test case without name" start with the (machine-specific) file path
    first = re.sub('^' + re.escape(file_name) + r':\d+: ', '', first)
    first = first.replace(file_name, os.path.basename(file_name))
    return {'$syntax_error': {'line': e.lineno, 'message_contains': first}}


class _Frozen(object):
    """Outer freeze for a whole parse; afterwards unwinds any nested freeze a failed parse left running."""

    def __enter__(self):
        self._freezer = freezegun.freeze_time(FROZEN_AT)
        self._freezer.start()
        self._depth = len(freezegun.api.freeze_factories)
        return self

    def __exit__(self, *exc):
        # A parse that raised mid-test-case can leave a fixture's `freeze time:` running. Pop the extra levels with a
        # never-started freezer (its stop() only pops freezegun's stacks while they stay non-empty), then stop ours,
        # which restores the real datetime module.
        while len(freezegun.api.freeze_factories) > self._depth:
            freezegun.freeze_time(FROZEN_AT).stop()
        self._freezer.stop()
        return False


def parse_fixture(path):
    path = os.path.abspath(path)
    fixture_name = os.path.splitext(os.path.basename(path))[0]  # as ServicePlanTestCase does
    with _Frozen():
        parser = ServiceTestPlanFixtureParser(path, fixture_name)
        try:
            test_cases = parser.parse_test_fixture()
        except FixtureSyntaxError as e:
            return _syntax_error_result(e, path)
        except FixtureLoadError:
            return {'$load_error': True}
    return [norm_test_case(tc) for tc in test_cases]


def dumps(obj):
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False) + '\n'


def output_path_for(path):
    root, _ = os.path.splitext(path)
    return root + '.parsed.json'


# ----------------------------------------------------------------------------------------------------------------------
# --extract-unit: pull the fixture texts out of PySOA's tests/unit/test/plan/test_parser.py

def extract_unit_fixtures(test_parser_py, out_dir):
    with io.open(test_parser_py, 'r', encoding='utf-8') as f:
        tree = ast.parse(f.read(), test_parser_py)
    written = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith('test_'):
            continue
        text = None
        for sub in ast.walk(node):
            if (
                isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name) and
                sub.targets[0].id == 'fixture' and isinstance(sub.value, ast.Constant) and
                isinstance(sub.value.value, str)
            ):
                text = sub.value.value
            elif (
                isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and
                sub.func.id == '_temp_fixture_file_name_context' and sub.args and
                isinstance(sub.args[0], ast.Constant) and isinstance(sub.args[0].value, str)
            ):
                text = sub.args[0].value
        if text is None:
            print('skipping {} (no fixture text)'.format(node.name), file=sys.stderr)
            continue
        target = os.path.join(out_dir, node.name + '.pysoa')
        with open(target, 'wb') as f:
            f.write(text.encode('utf-8'))  # the test writes the text through a strict utf-8 StreamWriter
        written.append(target)
    return written


# ----------------------------------------------------------------------------------------------------------------------
# --vectors: data-type and path-tool vectors from tests/unit/test/plan/grammar/test_{data_types,tools}.py

def _as_json_input(data):
    """
    The exact value a JSON reader of vectors.json sees: normalized, with dict keys in sorted order (so PySOA's dict
    iteration order matches the key order in the file) and int keys turned into str keys.
    """
    return json.loads(json.dumps(norm(data), sort_keys=True))


def _err(e):
    return {'$error': True}, type(e).__name__


def _path_put_vectors():
    single = [
        ('test_001_simple_put', 'foo', 'bar'),
        ('test_002_nested_put', 'foo.bar', 'baz'),
        ('test_003_bracket_name_put', 'foo.{bar.baz}', 'moo'),
        ('test_004_bracket_name_then_more_depth', 'foo.{bar.baz}.gar', 'moo'),
        ('test_005_simple_array_put', 'foo.bar.0', 'thing'),
        ('test_005_02_bracket_name_then_list', 'foo.bar.{thing.in.bracket}.0', 'la la la'),
        ('test_006_array_with_nested_dict', 'foo.bar.0.baz', 'thing'),
        ('test_007_array_with_nested_array', 'foo.bar.0.0.baz', 'thing'),
        ('test_008_array_with_missing_index', 'foo.bar.2.baz', 'thing'),
        ('test_009_numeric_dictionary_keys', 'foo.bar.{2}.baz', 'thing'),
        ('test_016_escaped_array_index_key', '{record_transaction.0}.inputs.foo', 'bar'),
        # test_019_nested_brackets puts a set, which is not JSON-representable; same path with a str value:
        ('extra: test_019_nested_brackets path with a str value', 'charge.cost_components.{{item.gross}}', 'MISSING'),
        ('extra: list index beyond the end pads with empty dicts', 'foo.3', 'x'),
        ('extra: nested braces keep inner braces', 'a.{{b}.c}.d', 1),
        ('extra: escaped digit then index', 'a.{0}.0', True),
        ('extra: empty path is a no-op', '', 'x'),
    ]
    sequences = [
        ('test_017_escaped_array_of_dict', [
            ('transaction.metadata.references.0.reference_type', 'FOO'),
            ('transaction.metadata.references.0.reference_ids.0', '1234'),
        ]),
        ('test_018_complex_path_list', [(p, 'blah_blah') for p in [
            'foo.bar',
            'foo.{bar.baz}',
            'foo.{yea_bar.baz}.gar',
            'foo.aba_bar.0',
            'foo.sba_bar.0.baz',
            'foo.nu_bar.0.0.baz',
            'foo.ba_bar.0.baz',
            'foo.ba_bar.1.baz',
            'foo.ba_bar.2.baz',
            'foo.re_bar.{2}.baz',
            '{record_transaction.0}.inputs.foo',
            'transaction.metadata.references.0.reference_type',
            'transaction.metadata.references.0.reference_ids.0',
        ]]),
        ('extra: numeric segment into an existing dict makes an int key (normalized to "0")', [
            ('foo.bar', 'x'),
            ('foo.0', 'y'),
        ]),
        ('extra: overwrite a list element, then a later index', [
            ('a.0', 'first'),
            ('a.0', 'second'),
            ('a.2', 'third'),
        ]),
        ('extra: put below an existing (empty) dict value', [
            ('a.b', {}),
            ('a.b.c', 1),
        ]),
    ]
    cases = []
    for name, path, value in single:
        out = {}
        case = {'name': name, 'path': path, 'value': norm(value)}
        try:
            path_put(out, path, value)
            case['result'] = norm(out)
        except Exception as e:
            case['result'], case['error'] = _err(e)
        cases.append(case)
    for name, puts in sequences:
        out = {}
        case = {'name': name, 'puts': [[p, norm(v)] for p, v in puts]}
        try:
            for p, v in puts:
                path_put(out, p, v)
            case['result'] = norm(out)
        except Exception as e:
            case['result'], case['error'] = _err(e)
        cases.append(case)
    return cases, single, sequences


def _path_get_vectors(single, sequences):
    cases = []

    def add(name, data, path):
        data = _as_json_input(data)
        case = {'name': name, 'data': norm(data), 'path': path}
        try:
            case['result'] = norm(path_get(data, path))
        except Exception as e:
            case['result'], case['error'] = _err(e)
        cases.append(case)

    # round trips asserted by the put tests
    for name, path, value in single:
        if not path:
            continue
        out = {}
        path_put(out, path, value)
        add(name, out, path)
    for name, puts in sequences:
        out = {}
        for p, v in puts:
            path_put(out, p, v)
        for p, _ in puts:
            add(name, out, p)
    add('test_010_path_get_missing_key', {}, 'foo')
    add('test_011_path_get_missing_nested_key', {'foo': {'bar': 'baz'}}, 'foo.blah')
    add('test_012_path_get_missing_array', {'foo': {'bar': 'baz'}}, 'foo.0')
    add('test_013_path_get_missing_array_further_index', {'foo': [{}, {}]}, 'foo.2')
    add('test_014_path_get_missing_nested_array', {'foo': [[]]}, 'foo.0.0')
    add('test_015_path_get_missing_nested_array_further_index', {'foo': [[{}, {}]]}, 'foo.0.4')
    add('extra: string key on a list', {'foo': [1]}, 'foo.bar')
    add('extra: index into a string', {'foo': 'abc'}, 'foo.1')
    add('extra: escaped digit key', {'foo': {'2': 'two'}}, 'foo.{2}')
    return cases


def _get_all_paths_vectors():
    complex_dict = {
        'foo': {
            'aba_bar': ['test'],
            'ba_bar': [{}, {'baz': 'test'}, {}],
            'bar': 'test',
            'bar.baz': 'test',
            'nu_bar': [[{'baz': 'test'}]],
            're_bar': {'2': {'baz': 'test'}},
            'sba_bar': [{'baz': 'test'}, [], {}],
            'yea_bar.baz': {'gar': 'test'},
        },
        'record_transaction.0': {
            'inputs': {
                'bar': [],
                'foo': 'test',
                're_bar': {},
            },
        },
        'transaction': {
            'metadata': {
                'references': [
                    {'reference_ids': ['blah_blah'], 'reference_type': 'blah_blah'},
                    {},
                ],
            },
        },
    }
    out18 = {}
    for p in [
        'foo.bar', 'foo.{bar.baz}', 'foo.{yea_bar.baz}.gar', 'foo.aba_bar.0', 'foo.sba_bar.0.baz',
        'foo.nu_bar.0.0.baz', 'foo.ba_bar.0.baz', 'foo.ba_bar.1.baz', 'foo.ba_bar.2.baz', 'foo.re_bar.{2}.baz',
        '{record_transaction.0}.inputs.foo', 'transaction.metadata.references.0.reference_type',
        'transaction.metadata.references.0.reference_ids.0',
    ]:
        path_put(out18, p, 'blah_blah')
    inputs = [
        ('test_018_complex_path_list', out18, False),
        ('test_020_path_listing_for_complex_dict', complex_dict, True),
        ('test_020_path_listing_for_complex_dict (allow_blank=False)', complex_dict, False),
        ('test_021_path_listing_for_empty_structures', {}, False),
        ('test_021_path_listing_for_empty_structures', [], False),
        ('extra: falsy leaves', {'a': 0, 'b': '', 'c': None, 'd': False, 'e': [], 'f': {}}, False),
        ('extra: falsy leaves (allow_blank=True)', {'a': 0, 'b': '', 'c': None, 'd': False, 'e': [], 'f': {}}, True),
        ('extra: top-level list', [{'a': 1}, [2, 3]], False),
    ]
    cases = []
    for name, data, allow_blank in inputs:
        data = _as_json_input(data)
        cases.append({
            'name': name,
            'data': norm(data),
            'allow_blank': allow_blank,
            'result': get_all_paths(data, allow_blank=allow_blank),
        })
    return cases


def _typed_value_vectors():
    # (type, text, origin)
    t = 'test_data_types.py'
    inputs = [
        # TestGetTypedValue.test_special_cases (string inputs only)
        ('None', 'does not matter', t), ('none', 'does not matter', t), ('null', 'does not matter', t),
        (None, '[[some.substitution]]', t), ('does not matter', '[[another.1.substitution]]', t),
        (None, '[[ACTION_NAME.response.body.path]]', t), (None, '[[ANOTHER.2.response.body.path]]', t),
        (None, '[[{ESCAPED}.response.body.path]]', t),
        (None, 'complex [[some.substitution]] expression [[another.1.substitution]] with '
               '[[ACTION_NAME.response.body.path]] many [[ANOTHER.2.response.body.path]] substitutions '
               '[[{ESCAPED}.response.body.path]]', t),
        # test_int
        ('int', '827', t), ('int', '827284953472372388372372384573592394184838723482384', t), ('int', '', t),
        ('int', None, t), ('int', '1.23', t),
        # test_float
        ('float', '827.15', t), ('float', '', t), ('float', None, t), ('float', 'abc123', t),
        # test_decimal
        ('decimal', '827.15', t), ('decimal', '', t), ('decimal', None, t), ('decimal', 'abc123', t),
        # test_bool
    ] + [('bool', v, t) for v in [
        'TRUE', 'TRUe', 'TRue', 'True', 'TrUE', 'TrUe', 'TruE', 'tRUE', 'trUE', 'truE', None, '', 'NaN', 'false', 'FALSE',
        'Anything, really',
    ]] + [
        # test_bytes
        ('bytes', 'Hello', t), ('bytes', b'Goodbye', t), ('bytes', 'Cool! \U0001f61c', t),
        ('base64_bytes', base64.b64encode(b'It works!'), t),
        ('base64_bytes', base64.b64encode(b'It still works!').decode('utf-8'), t),
        ('bytes', '', t), ('bytes', None, t), ('base64_bytes', '', t), ('base64_bytes', None, t),
        # test_string
        ('str', 'Hello', t), ('str', 'Cool! \U0001f61c', t), ('encoded_ascii', 'Still works \\x0b yo', t),
        ('encoded_unicode', 'And another one works \\U0001f61c', t), ('str', b'Yes, it works \x0b yo', t),
        ('str', b'', t), ('str', '', t), ('str', None, t),
        # test_empty_types
        ('emptylist', 'does not matter', t), ('emptydict', 'does not matter', t), ('emptystr', 'does not matter', t),
        # test_datetime
        ('datetime', '', t), ('datetime', 123, t), ('datetime', '2014,11,6,5,37,51,172938', t),
        ('datetime', '2019,6,6,17', t), ('datetime', 'now', t), ('datetime', 'now +30', t),
        ('datetime', 'now 0,6,30,10,150', t), ('datetime', 'midnight', t), ('datetime', 'midnight +30', t),
        ('datetime', 'midnight 0,6,30,10,150', t), ('datetime', 'utc_now', t), ('datetime', 'utc_midnight', t),
        # test_date
        ('date', '', t), ('date', 123, t), ('date', '1986,11,5', t), ('date', '2000,1,1', t), ('date', 'today', t),
        ('date', 'utc_today', t),
        # test_time
        ('time', '', t), ('time', 123, t), ('time', '13,11,5', t), ('time', '3,14,16', t), ('time', 'midnight', t),
        ('time', 'midnight +0,26,32,47', t), ('time', 'midnight 0,0,30', t), ('time', 'now', t),
        ('time', 'now +0,6', t), ('time', 'utc_now', t),
        # test_unknown
        ('unknown type', 'does not matter', t),
    ]
    x = 'extra'
    inputs += [
        # every data type name (regex / not regex are handled by get_parsed_data_type_value, not get_typed_value)
        ('regex', '^a.*$', x), ('not regex', '^a.*$', x), ('str', 'x [[A.b]] y', x), ('int', '[[A.b]]', x),
        ('base64_bytes', 'SGVsbG8sIHdvcmxk', x), ('base64_bytes', 'SGVsbG8', x), ('base64_bytes', 'not base64!', x),
        ('encoded_ascii', 'item\\x0b name', x), ('encoded_unicode', 'weird\\u000B thing', x),
        ('encoded_ascii', 'caf\u00e9', x), ('encoded_unicode', 'caf\u00e9 \\t', x),
        ('emptylist', '', x), ('emptydict', None, x), ('emptystr', '', x), ('None', '', x),
        # Python int()/float()/Decimal() leniency
        ('int', '  42 ', x), ('int', '+7', x), ('int', '-0', x), ('int', '1_000', x), ('int', '0x10', x),
        ('int', '007', x), ('int', '-9223372036854775809', x), ('int', '9223372036854775807', x),
        ('float', ' 1.5 ', x), ('float', '1e3', x), ('float', 'inf', x), ('float', '-Infinity', x), ('float', 'nan', x),
        ('float', '1_0.5', x), ('float', '57', x), ('float', '0.1', x), ('float', '22.5', x),
        ('decimal', '1E+2', x), ('decimal', '  3.10 ', x), ('decimal', 'NaN', x), ('decimal', '-0.00', x),
        ('decimal', '1_000.5', x),
        ('bool', ' true', x), ('bool', 'true ', x), ('bool', 'yes', x), ('bool', '1', x),
        ('str', '  padded  ', x),
        # date/time expressions
        ('datetime', 'now -1', x), ('datetime', 'now +1,2', x), ('datetime', 'now 1,2,3,4,5,6', x),
        ('datetime', 'now 0,0,0,0,1500000', x), ('datetime', 'now 3', x), ('datetime', 'utc_now +0,6,15', x),
        ('datetime', 'midnight +0,3', x), ('datetime', 'utc_midnight 0,0,0,30', x), ('datetime', 'utc_now -0,4', x),
        ('datetime', 'nowish', x), ('datetime', 'midnightly', x), ('datetime', 'now 1.5', x), ('datetime', 'now ', x),
        ('datetime', 'now  +1', x), ('datetime', 'tomorrow', x), ('datetime', '2018,4,1,12,31,57', x),
        ('datetime', '2018,04,20,18,19,20', x), ('datetime', '2018', x), ('datetime', '2018,2,30', x),
        ('datetime', '2018-04-01T12:31:57Z', x),
        ('date', '2017,1,17', x), ('date', '2020,2,30', x), ('date', '2020,1,1,5', x), ('date', 'TODAY', x),
        ('date', 'now', x),
        ('time', '11,31,52', x), ('time', '0,0,0', x), ('time', 'now 0,6,15', x), ('time', 'utc_now 0,3', x),
        ('time', 'midnight 0,0,0,30', x), ('time', 'now -1', x), ('time', 'midnight 1', x), ('time', 'nowadays', x),
        ('time', '25,0,0', x), ('time', '12', x), ('time', 'utc_midnight', x),
    ]
    cases = []
    with _Frozen():
        for type_name, text, origin in inputs:
            case = {'type': type_name, 'text': norm(text), 'origin': origin}
            try:
                case['result'] = norm(data_types.get_typed_value(type_name, text))
            except Exception as e:
                case['result'], case['error'] = _err(e)
            cases.append(case)
    return cases


def _substitute_vectors():
    sources = [
        {
            'users': [{'id': 5, 'username': 'beamer'}, {'id': 12, 'username': 'pumpkin'}],
            'runners': ['John', 'Rebecca'],
            'integers': {'one': 1, 'seventeen': 17}
        },
        {
            'get_doctor.0': {'doctor': {'id': 1827, 'name': 'Jamie Rolling', 'specialty': 'endocrinologist'}},
        },
    ]
    inputs = [
        ('test_substitute_variables_no_variables', {
            'foo': 'bar',
            'baz': ['qux', 'flem'],
            'flub': {'flux': 'flare', 'flex': 'flue'},
        }, sources),
        ('test_substitute_variables_no_sources', {
            'foo': '[[users.0.username]]',
            'baz': ['qux', 'flem'],
            'flub': {'flux': 'flare', 'flex': 'flue'},
        }, []),
        ('test_substitute_variables_with_variables', {
            'foo': '[[users.0.username]]',
            'baz': ['qux', '[[runners.1]]', None, 12, '[[integers.seventeen]]'],
            'flub': {
                'flux': 'flare [[GET_DOCTOR.0.doctor.specialty]] [[{get_doctor.0}.doctor.name]] '
                        '[[not.a.sub] [also.not.a.sub]] [[users.1.username]] with [[runners.0]]',
            },
        }, sources),
        ('extra: action name without index gets .0 via the lower-cased fallback', {
            'a': '[[GET_DOCTOR.doctor.id]]',
            'b': 'id=[[get_doctor.doctor.id]]',
        }, sources),
        ('extra: missing value in a source', {'a': '[[users.7.username]]'}, sources),
        ('extra: upper-case non-action path falls back to lower case', {'a': '[[RUNNERS.0]]'}, sources),
        ('extra: whole-token substitution keeps non-string types, embedded ones are str()-ed', {
            'a': '[[users.0]]',
            'b': 'user: [[users.0.id]]',
        }, sources),
    ]
    cases = []
    for name, data, srcs in inputs:
        data = _as_json_input(data)
        case = {'name': name, 'data': norm(data), 'sources': norm(srcs)}
        try:
            substitute_variables(data, *srcs)
            case['result'] = norm(data)
        except Exception as e:
            case['result'], case['error'] = _err(e)
        cases.append(case)
    return cases


def build_vectors():
    put_cases, single, sequences = _path_put_vectors()
    return {
        '$comment': (
            'Generated by dump_plans.py --vectors with the real PySOA 1.4.9 functions in '
            'pysoa.test.plan.grammar.{tools,data_types}; values normalized as in the .parsed.json files. '
            '"result" {"$error": true} means the call raised ("error" names the Python exception). '
            'get_typed_value ran under freezegun frozen at 2026-01-02T03:04:05 (naive, UTC). get_all_paths results '
            'are in PySOA order for data whose dict keys were inserted in sorted order. The functions were run on the '
            '"data" exactly as it reads from this file (str keys only).'
        ),
        'path_put': put_cases,
        'path_get': _path_get_vectors(single, sequences),
        'get_all_paths': _get_all_paths_vectors(),
        'get_typed_value': _typed_value_vectors(),
        'substitute_variables': _substitute_vectors(),
    }


def _ensure_mocking_test_module(pysoa_source):
    if pysoa_source:
        sys.path.insert(0, os.path.abspath(pysoa_source))
    name = 'tests.integration.test.plan.test_001_fixtures_work'
    try:
        __import__(name)
        return
    except ImportError:
        pass
    import types
    print('warning: {} not importable; registering a stand-in with ExpectedException'.format(name), file=sys.stderr)
    parts = name.split('.')
    for i in range(1, len(parts) + 1):
        mod_name = '.'.join(parts[:i])
        if mod_name not in sys.modules:
            mod = types.ModuleType(mod_name)
            mod.__path__ = []
            sys.modules[mod_name] = mod
            if i > 1:
                setattr(sys.modules['.'.join(parts[:i - 1])], parts[i - 1], mod)
    sys.modules[name].ExpectedException = type('ExpectedException', (Exception,), {'__module__': name})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--print', action='store_true', help='print the JSON instead of writing <stem>.parsed.json')
    ap.add_argument('--extract-unit', nargs=2, metavar=('TEST_PARSER_PY', 'OUT_DIR'))
    ap.add_argument('--vectors', metavar='OUT_JSON')
    ap.add_argument('--pysoa-source', metavar='DIR', default=os.environ.get('PYSOA_SOURCE'))
    ap.add_argument('files', nargs='*')
    args = ap.parse_args(argv)
    if args.files:
        _ensure_mocking_test_module(args.pysoa_source)

    if args.extract_unit:
        for p in extract_unit_fixtures(*args.extract_unit):
            print('wrote {}'.format(p), file=sys.stderr)
    if args.vectors:
        with io.open(args.vectors, 'w', encoding='utf-8', newline='\n') as f:
            f.write(dumps(build_vectors()))
        print('wrote {}'.format(args.vectors), file=sys.stderr)
    for path in args.files:
        text = dumps(parse_fixture(path))
        if args.print:
            sys.stdout.write(text)
        else:
            out = output_path_for(path)
            with io.open(out, 'w', encoding='utf-8', newline='\n') as f:
                f.write(text)
            print('wrote {}'.format(out), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
