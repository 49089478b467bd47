"""Locust, scenario http: HttpUser (requests), one GET per task, no wait."""

from locust import HttpUser, constant, task


class Get(HttpUser):
    wait_time = constant(0)

    @task
    def get(self):
        self.client.get("/")
