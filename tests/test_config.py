"""
Tests for :mod:`octtwisted._core.config`: every problem in a config file is caught
before anything starts, with one line that names it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from octtwisted._core.config import ConfigError, TLSOptions, load_config
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
        self.assertProblem("'hq_address' must be a non-empty string, got ''", hq_address="")
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
