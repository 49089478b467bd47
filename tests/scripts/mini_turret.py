"""
A small OCT turret in plain pyzmq and threads, for the conformance kit's
tests: correct by default, and broken on purpose by ``--break FLAW``.

    python mini_turret.py CONFIG UUID [--break FLAW]...

Flaws: seventh-key (a seventh status key), no-turret-name (results lack
turret_name), ignore-addressed (drops every order with a topic),
never-exit-on-kill (says Killed, goes on), status-in-results (does not
escape "status" in result frames), storm (answers every status_request),
no-rampup (starts every cannon at once), hang-at-start (sends nothing,
ignores SIGTERM), die-at-start (exits 3 at once).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import queue
import signal
import sys
import threading
import time
from typing import Any

import zmq

FLAWS = (
    "seventh-key", "no-turret-name", "ignore-addressed", "never-exit-on-kill",
    "status-in-results", "storm", "no-rampup", "hang-at-start", "die-at-start",
)


class MiniTurret:
    def __init__(self, config_path: str, uuid: str, flaws: set[str]) -> None:
        with open(config_path) as f:
            self.config: dict[str, Any] = json.load(f)
        folder = os.path.dirname(os.path.abspath(config_path))
        spec = importlib.util.spec_from_file_location("script", os.path.join(folder, self.config["script"]))
        assert spec is not None and spec.loader is not None
        self.script = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.script)
        self.uuid = uuid
        self.flaws = flaws
        self.status = "ready"
        self.context_data: dict[str, Any] = {}
        self.results: queue.Queue[dict[str, Any]] = queue.Queue()
        self.firing = threading.Event()
        self.cannons: list[threading.Thread] = []
        self.last_answer = 0.0
        self.answer_due = False
        self.zmq_context = zmq_context = zmq.Context()
        address = self.config["hq_address"]
        self.orders = zmq_context.socket(zmq.SUB)
        self.orders.connect(f"tcp://{address}:{self.config['hq_publisher']}")
        self.orders.setsockopt_string(zmq.SUBSCRIBE, "")
        self.orders.setsockopt_string(zmq.SUBSCRIBE, uuid)
        self.push = zmq_context.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 2000)
        self.push.connect(f"tcp://{address}:{self.config['hq_rc']}")

    # -- sending -----------------------------------------------------------

    def send_status(self) -> None:
        message = {
            "turret": self.config["name"], "status": self.status, "uuid": self.uuid,
            "rampup": self.config["rampup"], "script": self.config["script"],
            "cannons": self.config["cannons"],
        }
        if "seventh-key" in self.flaws:
            message["dropped"] = 0
        self.push.send(json.dumps(message).encode())
        self.last_answer = time.monotonic()
        self.answer_due = False

    def answer_request(self) -> None:
        if "storm" in self.flaws or time.monotonic() - self.last_answer >= 0.5:
            self.send_status()
        else:
            self.answer_due = True

    def send_results(self) -> None:
        while True:
            try:
                result = self.results.get_nowait()
            except queue.Empty:
                return
            frame = json.dumps(result).encode()
            if "status-in-results" not in self.flaws:
                frame = frame.replace(b"status", b"\\u0073tatus")
            self.push.send(frame)

    # -- firing -----------------------------------------------------------

    def cannon(self, delay: float, started: float) -> None:
        if self.firing.wait(0) and delay:
            time.sleep(delay)
        transaction = self.script.Transaction(self.config, dict(self.context_data))
        while self.firing.is_set():
            transaction.custom_timers = {}
            error = ""
            transaction.setup()
            begin = time.time()
            try:
                transaction.run()
            except Exception as e:
                error = f"{type(e).__name__}: {e}"
            run_time = time.time() - begin
            transaction.tear_down()
            result = {
                "turret_name": self.config["name"], "elapsed": time.time() - started,
                "epoch": time.time(), "scriptrun_time": run_time, "error": error,
                "custom_timers": dict(transaction.custom_timers),
            }
            if "no-turret-name" in self.flaws:
                del result["turret_name"]
            if self.firing.is_set():
                self.results.put(result)

    def start(self) -> None:
        if self.firing.is_set():
            return
        self.firing.set()
        started = time.time()
        cannons = int(self.config["cannons"])
        step = 0 if "no-rampup" in self.flaws else float(self.config["rampup"]) / cannons
        self.cannons = [threading.Thread(target=self.cannon, args=(i * step, started), daemon=True) for i in range(cannons)]
        for thread in self.cannons:
            thread.start()
        self.status = "Running"
        self.send_status()

    def stop(self) -> None:
        self.firing.clear()
        for thread in self.cannons:
            thread.join()
        self.cannons = []
        self.send_results()
        while not self.results.empty():
            self.results.get_nowait()

    # -- the loop ---------------------------------------------------------

    def obey(self, frame: bytes) -> bool:
        """
        :return: False when the turret must exit.
        """
        try:
            topic, _, body = frame.decode("utf-8").partition(" ")
            order = json.loads(body)
            command, msg = order["command"], order["msg"]
        except Exception:
            return True  # not an order: ignored
        if topic not in ("", self.uuid):
            return True  # addressed to another turret
        if topic and "ignore-addressed" in self.flaws:
            return True
        if command == "status_request":
            self.answer_request()
        elif command == "set_transaction_context" and isinstance(msg, dict):
            self.context_data.update(msg)
        elif command == "start":
            self.start()
        elif command == "stop":
            self.stop()
            self.status = "ready"
            self.send_status()
        elif command == "kill":
            self.stop()
            self.status = "Killed"
            self.send_status()
            return "never-exit-on-kill" in self.flaws
        return True

    def run(self) -> None:
        self.send_status()
        while True:
            if self.orders.poll(10):
                parts = self.orders.recv_multipart()
                if len(parts) == 1 and not self.obey(parts[0]):
                    return
            if self.answer_due and time.monotonic() - self.last_answer >= 0.5:
                self.send_status()
            self.send_results()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("uuid")
    parser.add_argument("--break", dest="flaws", action="append", default=[], choices=FLAWS)
    args = parser.parse_args()
    flaws = set(args.flaws)
    if "die-at-start" in flaws:
        sys.exit(3)
    if "hang-at-start" in flaws:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(1)
    turret = MiniTurret(args.config, args.uuid, flaws)
    turret.run()
    turret.orders.close(0)
    turret.push.close(2000)
    turret.zmq_context.term()  # waits (up to the linger) until 'Killed' is sent
    os._exit(0)  # the cannon threads are daemons


if __name__ == "__main__":
    main()
