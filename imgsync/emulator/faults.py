"""Scripted and seeded-random faults: what a flaky network and a busy service do to a client.

A fault plan is set through ``POST /_emulator/faults`` and replaces the previous one. Rules pick
requests by path substring, method and call number (``nth``/``times``), so a test can say "the
second upload_complete answers 20103" or "the first PUT loses its connection after the bytes are
stored". A seeded random part sprinkles faults reproducibly over a whole run.

Actions:

- ``http:NNN``         answer HTTP status NNN (with an envelope whose code is NNN), do no work
- ``code:NNN``         answer HTTP 200 with body code NNN, do no work
- ``reset``            close the connection without an answer, do no work
- ``apply-then-reset`` do the work, then close the connection without an answer
- ``delay:SECONDS``    wait, then handle the request normally
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KIND_HTTP = "http"
KIND_CODE = "code"
KIND_RESET = "reset"
KIND_APPLY_THEN_RESET = "apply-then-reset"
KIND_DELAY = "delay"
# A rule's "times" of -1 hits every matching request from the nth on.
TIMES_FOREVER = -1
# Delays beyond this are surely a typo (milliseconds given as seconds) and would hang a test run.
MAX_DELAY_S = 300.0

_ACTION_PATTERN = re.compile(r"^(http|code):(\d{1,6})$|^delay:(\d+(?:\.\d+)?)$")


class FaultPlanError(ValueError):
    """A fault plan that cannot be used; the message says which part."""


@dataclass(frozen=True)
class FaultAction:
    """One parsed action; ``text`` is how the plan spelled it (and how the request log names it)."""

    kind: str
    text: str
    number: float = 0.0  # the status, code or delay

    @property
    def status(self) -> int:
        return int(self.number)

    @property
    def delay_s(self) -> float:
        return self.number


def parse_action(text: Any) -> FaultAction:
    if not isinstance(text, str):
        raise FaultPlanError(f"action must be a string, got {text!r}")
    if text in (KIND_RESET, KIND_APPLY_THEN_RESET):
        return FaultAction(text, text)
    found = _ACTION_PATTERN.match(text)
    if not found:
        raise FaultPlanError(
            f"unknown action {text!r}; use http:NNN, code:NNN, reset, apply-then-reset, delay:S"
        )
    if found.group(3) is not None:
        delay = float(found.group(3))
        if delay > MAX_DELAY_S:
            raise FaultPlanError(f"delay {delay} s is longer than {MAX_DELAY_S} s")
        return FaultAction(KIND_DELAY, text, delay)
    number = int(found.group(2))
    if found.group(1) == KIND_HTTP and not 100 <= number <= 599:
        raise FaultPlanError(f"{text!r}: HTTP status must be 100..599")
    return FaultAction(found.group(1), text, number)


@dataclass
class FaultRule:
    match: str
    method: str | None
    nth: int
    times: int
    action: FaultAction
    seen: int = 0  # matching requests so far

    def matches(self, method: str, path: str) -> bool:
        return self.match in path and (self.method is None or self.method == method)

    def hits_next(self) -> bool:
        """Count one more matching request; True when it falls in [nth, nth + times)."""
        self.seen += 1
        if self.seen < self.nth:
            return False
        return self.times == TIMES_FOREVER or self.seen < self.nth + self.times


def _int_field(spec: Mapping[str, Any], name: str, default: int, low: int) -> int:
    value = spec.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise FaultPlanError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def parse_rule(spec: Any) -> FaultRule:
    if not isinstance(spec, Mapping):
        raise FaultPlanError(f"each rule must be an object, got {spec!r}")
    match = spec.get("match", "")
    method = spec.get("method")
    if not isinstance(match, str):
        raise FaultPlanError(f"match must be a string, got {match!r}")
    if method is not None and not isinstance(method, str):
        raise FaultPlanError(f"method must be a string, got {method!r}")
    times = spec.get("times", 1)
    if times != TIMES_FOREVER:
        times = _int_field(spec, "times", 1, 1)
    return FaultRule(
        match=match,
        method=method.upper() if method else None,
        nth=_int_field(spec, "nth", 1, 1),
        times=times,
        action=parse_action(spec.get("action")),
    )


@dataclass
class RandomFaults:
    """With probability ``rate`` a matching request gets one of ``actions``, drawn from ``seed``."""

    seed: int
    rate: float
    actions: list[FaultAction]
    match: str = ""
    method: str | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def draw(self, method: str, path: str) -> FaultAction | None:
        if self.match not in path or (self.method is not None and self.method != method):
            return None
        if self._rng.random() >= self.rate:
            return None
        return self._rng.choice(self.actions)


def parse_random(spec: Any) -> RandomFaults | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise FaultPlanError("random must be an object {seed, rate, actions}")
    seed = spec.get("seed", 0)
    rate = spec.get("rate", 0)
    actions = spec.get("actions", [])
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise FaultPlanError(f"random.seed must be an integer, got {seed!r}")
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
        raise FaultPlanError(f"random.rate must be a number in 0..1, got {rate!r}")
    if not isinstance(actions, list) or (rate > 0 and not actions):
        raise FaultPlanError("random.actions must be a non-empty array of actions")
    match = spec.get("match", "")
    method = spec.get("method")
    if not isinstance(match, str) or (method is not None and not isinstance(method, str)):
        raise FaultPlanError("random.match and random.method must be strings")
    parsed = [parse_action(a) for a in actions]
    return RandomFaults(seed, float(rate), parsed, match, method.upper() if method else None)


class FaultPlan:
    """The current plan; :meth:`decide` is called once per API, PUT and download request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._random: RandomFaults | None = None
        self._spec: dict[str, Any] = {"rules": [], "random": None}

    def replace(self, spec: Any) -> None:
        """Validate ``spec`` completely, then make it the plan (counters start again from 0)."""
        if not isinstance(spec, Mapping):
            raise FaultPlanError(
                'the fault plan must be an object {"rules": [...], "random": {...}}'
            )
        unknown = set(spec) - {"rules", "random"}
        if unknown:
            raise FaultPlanError(f"unknown keys in fault plan: {sorted(unknown)}")
        raw_rules = spec.get("rules", [])
        if not isinstance(raw_rules, list):
            raise FaultPlanError("rules must be an array")
        rules = [parse_rule(r) for r in raw_rules]
        random_part = parse_random(spec.get("random"))
        with self._lock:
            self._rules = rules
            self._random = random_part
            self._spec = {"rules": list(raw_rules), "random": spec.get("random")}

    def clear(self) -> None:
        self.replace({})

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rules": [
                    {"match": r.match, "method": r.method, "nth": r.nth, "times": r.times,
                     "action": r.action.text, "seen": r.seen}
                    for r in self._rules
                ],
                "random": self._spec["random"],
            }  # fmt: skip

    def decide(self, method: str, path: str) -> FaultAction | None:
        """The fault for this request, if any. Every matching rule counts it, the first hit wins."""
        with self._lock:
            chosen: FaultAction | None = None
            for rule in self._rules:
                if rule.matches(method, path) and rule.hits_next() and chosen is None:
                    chosen = rule.action
            if chosen is None and self._random is not None:
                chosen = self._random.draw(method, path)
            return chosen
