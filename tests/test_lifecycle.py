"""
Tests for the turret's state machine.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from octtwisted._firing.lifecycle import (
    ALLOWED,
    FINAL_STATES,
    IllegalTransition,
    Lifecycle,
    State,
)


class LifecycleTests(SynchronousTestCase):
    def test_normal_run(self) -> None:
        """
        ready -> running -> stopping -> ready -> running -> killing -> killed,
        each change reported with the old and new state.
        """
        changes: list[tuple[State, State]] = []
        life = Lifecycle(lambda old, new: changes.append((old, new)))
        path = [State.READY, State.RUNNING, State.STOPPING, State.READY, State.RUNNING, State.KILLING, State.KILLED]
        for state in path:
            life.move(state)
        self.assertEqual([new for _, new in changes], path)
        self.assertEqual(life.status_word, "Killed")

    def test_illegal(self) -> None:
        """
        A transition not in the table raises, and the state is unchanged.
        """
        life = Lifecycle()
        life.move(State.READY)
        with self.assertRaises(IllegalTransition):
            life.move(State.STOPPING)
        self.assertIs(life.state, State.READY)

    def test_final_states_are_final(self) -> None:
        """
        Nothing leaves a final state; every other state can abort.
        """
        for state in State:
            if state in FINAL_STATES:
                self.assertEqual(ALLOWED[state], frozenset())
            else:
                self.assertIn(State.ABORTED, ALLOWED[state])

    def test_status_words(self) -> None:
        """
        The HQ sees the reference turret's words.
        """
        life = Lifecycle()
        self.assertEqual(life.status_word, "Initialized")
        life.move(State.READY)
        self.assertEqual(life.status_word, "ready")
        life.move(State.RUNNING)
        self.assertEqual(life.status_word, "Running")
        life.move(State.ABORTED)
        self.assertEqual(life.status_word, "Aborted")
