# Types of the compiled module (octtwisted/_stats/requestcounts.c).
from typing import Any, Callable

class Counts:
    method: str
    recent: dict[int, int]
    statuses: dict[int, int]
    requests: int
    failures: int
    total_us: int
    min_us: int
    max_us: int
    size: int
    sized: int

class ResponseRecorder:
    def __init__(self, names: dict[str, Any], record: Callable[..., str]) -> None: ...
    def __call__(self, name: str, method: str, seconds: float, status: int, size: int) -> str: ...
