"""Runs the interop test plans (``interop/plans/*.pysoa``) with PySOA 1.4.9's own test plan system against the
``pyinterop`` server class, in-process.

Usage::

    python plan_cases.py [--fixtures DIR] [--only NAME[,NAME...]] [--verbose]

The plans are PySOA's ``ServicePlanTestCase`` DSL (``pysoa.test.plan``). This file is both the launcher and the
pytest module that declares the plan class: ``main()`` runs pytest on this very file with PySOA's pytest plugin
(``pysoa.test.plugins.pytest.plans``), which collects one test per plan case from every ``*.pysoa`` file under
``--fixtures`` (default: ``interop/plans``; the directory is handed to the pytest run in ``RSOA_PLAN_FIXTURES``).

* Every action case is one job sent by PySOA's test client through the local transport to a ``PyInteropServer``
  built in this process (no Redis). The transport passes every request and response through PySOA's
  ``MsgpackSerializer``, as the Redis transport does, so the plans see the values a Redis client would. (Without it,
  dicts in a response are PySOA's ``UnicodeKeysDict``, and an error that carries ``variables``, like ``fail``'s,
  never matches an ``expect: error`` directive: PySOA compares ``variables`` with "any dict" by type name.)
* The server's ``client_routing`` is empty, so the downstream call of ``call_service`` must be stubbed with a
  ``stub action:`` directive (``pysoa.test.stub_service.stub_action`` patches ``Client.send_request``, which the
  server's chained client uses). An unstubbed one fails with ``SERVER_ERROR``.
* ``test skip:`` cases are reported as skipped.

It prints one line per plan case, ``PASS <fixture>::<case>``, ``FAIL <fixture>::<case>: <reason>`` or
``SKIP <fixture>::<case>: <reason>`` (a fixture file that does not parse is one ``FAIL``), then
``python plans: N passed, M failed, S skipped``. Exit status is 0 only if M == 0 and at least one case passed.
pytest's own (quiet) report comes first, with the full text of every failure. ``--only`` runs just the named cases
(PySOA's own ``--pysoa-test-case`` is not used: in 1.4.9 it deselects a fixture's first case, which is where the
fixture is set up, and the cases left then fail with "Test fixture ... not set up"). ``--verbose`` makes pytest's
report verbose, with long tracebacks.
"""
from __future__ import absolute_import, print_function, unicode_literals

import argparse
from collections import OrderedDict
import os
import sys


HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.join(os.path.dirname(HERE), 'plans')
FIXTURES_ENV = 'RSOA_PLAN_FIXTURES'
ONLY_ENV = 'RSOA_PLAN_ONLY'

if HERE not in sys.path:
    sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout

from pysoa.client.client import Client  # noqa: E402
from pysoa.common.serializer.msgpack_serializer import MsgpackSerializer  # noqa: E402
from pysoa.common.transport.local import LocalClientTransport  # noqa: E402
from pysoa.test.plan import ServicePlanTestCase  # noqa: E402

from service import PyInteropServer  # noqa: E402


class PlanPyInteropServer(PyInteropServer):
    """``pyinterop`` exactly as ``service.py`` serves it, except that it does not print ``READY``: the local transport
    calls ``handle_next_request`` once per job, and ``ReadyServer`` would announce on the first."""

    _ready_announced = True


class WireLocalClientTransport(LocalClientTransport):
    """PySOA's local transport, with every message serialized and deserialized by ``MsgpackSerializer`` on the way."""

    _serializer = MsgpackSerializer()

    def _over_the_wire(self, body):
        return self._serializer.blob_to_dict(self._serializer.dict_to_blob(body))

    def send_request_message(self, request_id, meta, body, message_expiry_in_seconds=None):
        super(WireLocalClientTransport, self).send_request_message(
            request_id, meta, self._over_the_wire(body), message_expiry_in_seconds,
        )

    def send_response_message(self, request_id, meta, body):
        super(WireLocalClientTransport, self).send_response_message(request_id, meta, self._over_the_wire(body))


class TestPyInteropPlans(ServicePlanTestCase):
    """The interop plans, run against ``pyinterop``. Collected by PySOA's pytest plugin."""

    server_class = PlanPyInteropServer
    # No client_routing: downstream calls are stubbed by the plans. The local transport replaces `transport`.
    server_settings = {'client_routing': {}}
    fixture_path = os.path.abspath(os.environ.get(FIXTURES_ENV) or DEFAULT_FIXTURES)

    def setup_pysoa(self):
        """``BaseServerTestCase.setup_pysoa`` with ``WireLocalClientTransport`` for ``LocalClientTransport``."""
        self.service_name = self.server_class.service_name
        self.client = Client({
            self.service_name: {
                'transport': {
                    'path': '{}:{}'.format(__name__, WireLocalClientTransport.__name__),
                    'kwargs': {'server_class': self.server_class, 'server_settings': dict(self.server_settings)},
                },
            },
        })

    @classmethod
    def get_fixture_test_information(cls):
        """PySOA's list of cases, cut down to the names in ``RSOA_PLAN_ONLY`` (if set). A fixture's setup and teardown
        hang on its first and last case, so those marks are moved to the first and last selected cases."""
        cases = list(super(TestPyInteropPlans, cls).get_fixture_test_information())
        only = set(filter(None, os.environ.get(ONLY_ENV, '').split(',')))
        if not only:
            return cases
        selected = [case for case in cases if case.name in only]
        for fixture_name in set(case.fixture_name for case in selected):
            runnable = [case for case in selected if case.fixture_name == fixture_name and not case.skip]
            for case in selected:
                if case.fixture_name == fixture_name:
                    # Like PySOA: every case up to the first runnable one is marked first.
                    case.is_first_fixture_case = not runnable or selected.index(case) <= selected.index(runnable[0])
                    case.is_last_fixture_case = bool(runnable) and case is runnable[-1]
                    setattr(case.callable, '_last_fixture_test', case.is_last_fixture_case)
        return selected


class PlanOutcomes(object):
    """A pytest plugin that records one outcome per plan case (and per fixture file that fails to collect)."""

    def __init__(self):
        self.results = OrderedDict()  # case name -> (outcome, reason)

    @staticmethod
    def _name(nodeid):
        # PySOA's plugin names a case `<file>::<class>::<fixture>::<case>`.
        parts = nodeid.split('::')
        return '::'.join(parts[2:]) if len(parts) > 2 else nodeid

    def _record(self, name, outcome, reason):
        if self.results.get(name, ('',))[0] == 'failed':
            return  # a teardown report must not hide a failure of the call itself
        self.results[name] = (outcome, reason)

    def pytest_collectreport(self, report):
        if report.failed:
            self._record(report.nodeid or '<collection>', 'failed', _reason(str(report.longrepr)))

    def pytest_runtest_logreport(self, report):
        name = self._name(report.nodeid)
        if report.failed:
            self._record(name, 'failed', '{} failed: {}'.format(report.when, _reason(str(report.longrepr))))
        elif report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
            if reason.startswith('Skipped: '):
                reason = reason[len('Skipped: '):]
            self._record(name, 'skipped', reason)
        elif report.when == 'call':
            self._record(name, 'passed', '')


def _first_line(text):
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return '(no details)'


def _reason(longrepr, limit=300):
    """The error in a pytest failure report (its lines starting with ``E``), on one line, shortened to `limit`."""
    lines = [line[1:].strip() for line in longrepr.splitlines() if line.startswith('E ')]
    text = ' | '.join(line for line in lines if line and not set(line) <= set('-=')) or _first_line(longrepr)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def main(argv=None):
    parser = argparse.ArgumentParser(description='Runs the interop PySOA test plans against pyinterop, in-process')
    parser.add_argument(
        '--fixtures', default=DEFAULT_FIXTURES,
        help='Directory searched (recursively) for *.pysoa plan files (default: {})'.format(DEFAULT_FIXTURES),
    )
    parser.add_argument('--only', default='', help='Comma-separated plan case names to run (default: all)')
    parser.add_argument('--verbose', action='store_true', help="Show pytest's verbose report and long tracebacks")
    args = parser.parse_args(argv)

    fixtures = os.path.abspath(args.fixtures)
    if not os.path.isdir(fixtures):
        print('plan fixtures directory not found: {}'.format(fixtures), file=sys.stderr)
        return 2

    import pytest

    # The run must not depend on whatever pytest plugins are installed: load PySOA's plan plugin explicitly.
    os.environ['PYTEST_DISABLE_PLUGIN_AUTOLOAD'] = '1'
    os.environ[FIXTURES_ENV] = fixtures
    os.environ[ONLY_ENV] = ','.join(filter(None, (name.strip() for name in args.only.split(','))))

    pytest_args = [
        os.path.abspath(__file__),
        '-p', 'pysoa.test.plugins.pytest.plans',
        '-p', 'no:cacheprovider',
        '-c', os.devnull,  # no ini file from the checkout applies
        '--rootdir', HERE,
        # pytest 5.3's assertion rewriting predates Python 3.10's AST; PySOA's plans raise their own AssertionErrors.
        '--assert=plain',
        '-v' if args.verbose else '-q',
        '--tb=long' if args.verbose else '--tb=short',
    ]

    outcomes = PlanOutcomes()
    exit_code = pytest.main(pytest_args, plugins=[outcomes])

    print('')
    counts = {'passed': 0, 'failed': 0, 'skipped': 0}
    for name, (outcome, reason) in outcomes.results.items():
        counts[outcome] += 1
        if outcome == 'passed':
            print('PASS {}'.format(name))
        elif outcome == 'skipped':
            print('SKIP {}: {}'.format(name, reason))
        else:
            print('FAIL {}: {}'.format(name, reason))
    if exit_code not in (0, 5) and not counts['failed']:
        # pytest failed without any case failing (usage error, internal error, interrupted run): count the run.
        counts['failed'] += 1
        print('FAIL <pytest>: pytest exited with status {}'.format(int(exit_code)))
    sys.stdout.flush()
    sys.stderr.flush()
    print('python plans: {passed} passed, {failed} failed, {skipped} skipped'.format(**counts))
    return 0 if counts['failed'] == 0 and counts['passed'] > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
