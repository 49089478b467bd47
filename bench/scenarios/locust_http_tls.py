"""Locust, scenario https: HttpUser (requests) over HTTPS, one GET per task, no wait.

The bench's nginx has a self-signed certificate: requests' check is turned
off (it costs only at the handshake, once per kept-alive connection), as
FastHttpUser's is by default (``insecure = True``).
"""

import urllib3
from locust import HttpUser, constant, task

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


class Get(HttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.client.verify = False

    @task
    def get(self):
        self.client.get("/")
