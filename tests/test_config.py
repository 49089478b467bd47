"""
Tests for :mod:`octtwisted._core.config`: every problem in a config file is caught
before anything starts, with one line that names it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.config import ConfigError, TLSOptions, load_config, parse_config
from tests.helpers import write_config


class LoadConfigTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.folder = Path(self.mktemp())

    def assertProblem(self, fragment: str, **keys: object) -> str:
        path = write_config(self.folder, **keys)
        with self.assertRaises(ConfigError) as caught:
            load_config(path)
        message = str(caught.exception)
        self.assertIn(fragment, message)
        self.assertNotIn("\n", message)
        self.assertIn(str(path), message)
        return message

    def test_valid(self) -> None:
        """
        A complete config loads; the script path is resolved against the
        config's folder and unknown keys are kept in ``raw``.
        """
        path = write_config(self.folder, cannons=5, rampup=2.5, oct_extra="kept")
        config = load_config(path)
        self.assertEqual(config.cannons, 5)
        self.assertEqual(config.rampup, 2.5)
        self.assertEqual(config.script_path, (self.folder / "plain.py").resolve())
        self.assertEqual(config.raw["oct_extra"], "kept")
        self.assertEqual(config.order_address, "tcp://127.0.0.1:5000")
        self.assertEqual(config.result_address, "tcp://127.0.0.1:5001")
        self.assertEqual(config.stop_timeout, 10.0)
        self.assertEqual(config.warnings, ())

    def test_missing_keys(self) -> None:
        """
        Each of the seven keys is required.
        """
        for key in ("name", "cannons", "rampup", "script", "hq_address", "hq_publisher", "hq_rc"):
            self.assertProblem(f"missing required key {key!r}", **{key: None})

    def test_wrong_types(self) -> None:
        """
        Wrong types and out-of-range values are named with the value given.
        """
        self.assertProblem("'cannons' must be an integer >= 1, got 0", cannons=0)
        self.assertProblem("'cannons' must be an integer >= 1, got 'ten'", cannons="ten")
        self.assertProblem("'cannons' must be an integer >= 1, got True", cannons=True)
        self.assertProblem("'cannons' must be an integer >= 1, got 2.5", cannons=2.5)
        self.assertProblem("'rampup' must be a number >= 0, got -1", rampup=-1)
        self.assertProblem("'rampup' must be a number >= 0, got '3'", rampup="3")
        self.assertProblem("'hq_publisher' must be an integer from 1 to 65535, got 70000", hq_publisher=70000)
        self.assertProblem("'hq_rc' must be an integer from 1 to 65535, got 0", hq_rc=0)
        self.assertProblem("'hq_address' must be a host name, an IPv4 address or an IPv6 address", hq_address="")
        self.assertProblem("'name' must be a non-empty string, got 3", name=3)
        self.assertProblem("'stop_timeout' must be a number > 0, got 0", stop_timeout=0)
        self.assertProblem("'transaction_timeout' must be a number > 0 or null", transaction_timeout=-2)
        self.assertProblem("'pacing' must be a number >= 0", pacing=-0.5)

    def test_missing_script(self) -> None:
        """
        A script that is not there is named with the path looked at.
        """
        self.assertProblem("script 'nowhere.py' not found", script="nowhere.py")

    def test_unreadable_and_invalid(self) -> None:
        """
        A missing file, invalid JSON and a JSON value that is not an object
        each give one line.
        """
        self.folder.mkdir()
        missing = self.folder / "missing.json"
        with self.assertRaises(ConfigError) as caught:
            load_config(missing)
        self.assertIn("cannot read config file", str(caught.exception))
        broken = self.folder / "broken.json"
        broken.write_text('{"name": ')
        with self.assertRaises(ConfigError) as caught:
            load_config(broken)
        self.assertIn("invalid JSON at line 1", str(caught.exception))
        listed = self.folder / "list.json"
        listed.write_text(json.dumps([1, 2]))
        with self.assertRaises(ConfigError) as caught:
            load_config(listed)
        self.assertIn("must be a JSON object, got list", str(caught.exception))

    def test_canons_spelling(self) -> None:
        """
        The early docs' spelling ``canons`` is accepted, with a warning.
        """
        path = write_config(self.folder, cannons=None, canons=4)
        config = load_config(path)
        self.assertEqual(config.cannons, 4)
        self.assertEqual(len(config.warnings), 1)
        self.assertIn("canons", config.warnings[0])

    def test_standalone_needs_no_hq(self) -> None:
        """
        A standalone run needs no ``hq_*`` keys.
        """
        path = write_config(self.folder, hq_address=None, hq_publisher=None, hq_rc=None)
        config = load_config(path, standalone=True)
        self.assertIsNone(config.hq_address)

    def test_hq_addresses(self) -> None:
        """
        ``hq_address`` is a host name or an IP address alone: what ZeroMQ
        would refuse at connect (a scheme, a port, spaces, junk) is a config
        error, and an IPv6 address goes in brackets in the ZeroMQ addresses.
        """
        for bad in ("tcp://1.2.3.4", "127.0.0.1 ", " 127.0.0.1", "1.2.3.4:5000", "host name",
                    "a/b", "[::1", "::1]", "999.1.1.1", "a..b", "-a", "h\n", "x" * 300, 5):
            self.assertProblem("'hq_address' must be a host name", hq_address=bad)
        for good, zmq_host, ipv6 in [
            ("127.0.0.1", "127.0.0.1", False),
            ("hq.example.com", "hq.example.com", False),
            ("my_hq", "my_hq", False),
            ("::1", "[::1]", True),
            ("[::1]", "[::1]", True),
            ("fd00::2", "[fd00::2]", True),
        ]:
            config = load_config(write_config(self.folder, hq_address=good))
            self.assertEqual(config.order_address, f"tcp://{zmq_host}:5000")
            self.assertEqual(config.result_address, f"tcp://{zmq_host}:5001")
            self.assertEqual(config.hq_ipv6, ipv6)

    def test_huge_numbers(self) -> None:
        """
        Integers with hundreds of digits, in number and integer keys, are a
        one-line config error that names the key and says how many digits,
        never an OverflowError; so is one past the int64 range.
        """
        huge = 10**400
        for key in ("rampup", "stop_timeout", "pacing", "linger", "heartbeat_interval",
                    "progress_interval", "hq_lost_timeout", "hq_silence_timeout", "transaction_timeout"):
            for value in (huge, -huge):
                message = self.assertProblem(f"{key!r} must be", **{key: value})
                self.assertIn("an integer of 401 digits", message)
        for key in ("cannons", "max_pending_results", "hq_publisher", "hq_rc"):
            message = self.assertProblem(f"{key!r} must be an integer", **{key: huge})
            self.assertLess(len(message), 300)
        self.assertProblem("'cannons' must be an integer >= 1", cannons=2**63)
        # ZeroMQ takes the linger in milliseconds, as a C int.
        self.assertProblem("'linger' must be a number from 0 to 86400, got 1e+300", linger=1e300)
        self.assertProblem("'linger' must be a number from 0 to 86400, got an integer of 301 digits", linger=10**300)
        self.assertEqual(load_config(write_config(self.folder, linger=86400)).linger, 86400.0)
        self.assertEqual(load_config(write_config(self.folder, max_pending_results=2**63 - 1)).max_pending_results, 2**63 - 1)

    def test_json_past_limits(self) -> None:
        """
        A config file with a 5,000-digit integer (past Python's conversion
        limit) or JSON nested 100,000 deep gives one line, not a ValueError
        or RecursionError.
        """
        self.folder.mkdir()
        for name, text, fragment in [
            ("digits.json", '{"cannons": ' + "9" * 5000 + "}", "cannot be read"),
            ("deep.json", '{"name": ' + "[" * 100_000, "nested too deeply"),
        ]:
            path = self.folder / name
            path.write_text(text)
            with self.assertRaises(ConfigError) as caught:
                load_config(path)
            self.assertIn(fragment, str(caught.exception))
            self.assertNotIn("\n", str(caught.exception))
            self.assertLess(len(str(caught.exception)), 400)

    def test_hq_silence_timeout(self) -> None:
        """
        ``hq_silence_timeout`` defaults to 20 s, may be 0 (off), and must be
        a number from 0 to 3600.
        """
        self.assertEqual(load_config(write_config(self.folder)).hq_silence_timeout, 20.0)
        self.assertEqual(load_config(write_config(self.folder, hq_silence_timeout=0)).hq_silence_timeout, 0.0)
        self.assertEqual(load_config(write_config(self.folder, hq_silence_timeout=1.5)).hq_silence_timeout, 1.5)
        for bad in (-1, 3601, "5", True):
            self.assertProblem("'hq_silence_timeout' must be a number from 0 to 3600", hq_silence_timeout=bad)


_KEYS = ["name", "cannons", "rampup", "script", "hq_address", "hq_publisher", "hq_rc", "canons",
         "stop_timeout", "transaction_timeout", "pacing", "heartbeat_interval", "linger",
         "max_pending_results", "progress_interval", "hq_lost_timeout", "hq_silence_timeout", "blocking"]
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**500), 10**500) | st.floats() | st.text(max_size=30)
    | st.sampled_from(["tcp://1.2.3.4", "127.0.0.1 ", "::1", "[::1]", "1.2.3.4:5", "\x00"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=5,
)


class TLSConfigTests(SynchronousTestCase):
    """
    The ``tls_*`` keys: checked, files read, when the config is loaded.
    """

    def setUp(self) -> None:
        import trustme

        self.folder = Path(self.mktemp())
        self.folder.mkdir(parents=True)
        self.ca = trustme.CA()
        client = self.ca.issue_cert("cannon.example")
        other = self.ca.issue_cert("other.example")
        self.ca.cert_pem.write_to_path(str(self.folder / "ca.pem"))
        client.cert_chain_pems[0].write_to_path(str(self.folder / "client.pem"))
        client.private_key_pem.write_to_path(str(self.folder / "client.key"))
        other.private_key_pem.write_to_path(str(self.folder / "other.key"))
        client.private_key_and_cert_chain_pem.write_to_path(str(self.folder / "both.pem"))
        (self.folder / "junk.pem").write_text("not a certificate\n")
        (self.folder / "fake.pem").write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")

    def load(self, **keys: object) -> Any:
        return load_config(write_config(self.folder, **keys))

    def assertProblem(self, fragment: str, **keys: object) -> str:
        with self.assertRaises(ConfigError) as caught:
            self.load(**keys)
        message = str(caught.exception)
        self.assertIn(fragment, message)
        self.assertNotIn("\n", message)
        return message

    def test_defaults(self) -> None:
        """
        Without tls_* keys: verify against the system store, no client
        certificate, no warning.
        """
        config = self.load()
        self.assertEqual(config.tls, TLSOptions(verify=True, ca=None, client_cert=None, client_key=None))
        self.assertEqual(config.warnings, ())

    def test_valid_files(self) -> None:
        """
        tls_ca and a client certificate with its key, relative to the
        config's folder, are resolved and kept; a file holding both the
        certificate and the key needs no tls_client_key.
        """
        config = self.load(tls_ca="ca.pem", tls_client_cert="client.pem", tls_client_key="client.key")
        self.assertEqual(config.tls.ca, (self.folder / "ca.pem").resolve())
        self.assertEqual(config.tls.client_cert, (self.folder / "client.pem").resolve())
        self.assertEqual(config.tls.client_key, (self.folder / "client.key").resolve())
        self.assertEqual(self.load(tls_client_cert="both.pem").tls.client_key, None)

    def test_verify_false_warns(self) -> None:
        """
        tls_verify: false is taken, with one warning that says the
        certificates are not checked.
        """
        config = self.load(tls_verify=False)
        self.assertFalse(config.tls.verify)
        self.assertEqual(len(config.warnings), 1)
        self.assertIn("NOT checked", config.warnings[0])

    def test_bad_values(self) -> None:
        """
        A tls_verify that is not a boolean, a missing file, a file that is
        not PEM, PEM that holds no certificate, a key without its
        certificate, and a key that does not match the certificate are
        each a one-line config error.
        """
        self.assertProblem("'tls_verify' must be true or false, got 'no'", tls_verify="no")
        self.assertProblem("'tls_ca': no such file", tls_ca="missing.pem")
        self.assertProblem("is not a PEM file", tls_ca="junk.pem")
        self.assertProblem("holds no usable CA certificate", tls_ca="fake.pem")
        self.assertProblem("'tls_client_key' is set but 'tls_client_cert' is not", tls_client_key="client.key")
        self.assertProblem("'tls_client_cert' is set but 'tls_client_key' is not", tls_client_cert="client.pem")
        self.assertProblem(
            "the key does not match the certificate", tls_client_cert="client.pem", tls_client_key="other.key"
        )
        self.assertProblem("'tls_ca' must be a file name or null, got 3", tls_ca=3)
class FuzzConfigTests(SynchronousTestCase):
    def test_nul_in_script(self) -> None:
        """
        A script name holding a NUL character (found by the fuzz test
        below: pathlib raised ValueError) is a one-line ConfigError.
        """
        here = Path(__file__).absolute()
        with self.assertRaises(ConfigError) as caught:
            parse_config({"name": "t", "cannons": 1, "rampup": 0, "script": "a\0b"}, here,
                         standalone=True)
        self.assertIn("NUL character", str(caught.exception))

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=4))
    def test_any_values(self, keys: dict[str, object]) -> None:
        """
        Any JSON values (huge integers, NaN, junk addresses, nesting) in any
        of the keys give a config or a one-line ConfigError, nothing else.
        """
        here = Path(__file__).absolute()
        raw = {"name": "t", "cannons": 1, "rampup": 0, "script": here.name,
               "hq_address": "127.0.0.1", "hq_publisher": 5000, "hq_rc": 5001, **keys}
        try:
            parse_config(raw, here)
        except ConfigError as e:
            self.assertNotIn("\n", str(e))
            self.assertLess(len(str(e)), 1000)
