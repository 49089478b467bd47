"""Locust, scenario http: FastHttpUser, one GET per task, no wait."""

from locust import FastHttpUser, constant, task


class Get(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self):
        self.client.get("/")
