"""``tq top`` in a real terminal: tmux runs it, sends it keys, resizes it, and
the tests read the screen with ``tmux capture-pane``.

The module's broker holds a fixed picture: one worker with both slots running
``block`` tasks, pending tasks of a type no worker runs in each priority
tier, and one dead letter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cli_support import BIN, Terminal, dead_letters
from processes import BrokerProcess, WorkerProcess, wait_until

from tq import Client


@dataclass(frozen=True)
class Scene:
    worker_id: str
    running: tuple[int, ...]
    dead_letter: int


@pytest.fixture(scope="module")
def scene(broker: BrokerProcess, spawn_worker: Callable[..., WorkerProcess]) -> Scene:
    worker = spawn_worker(concurrency=2)
    with Client.connect(broker.address) as client:
        running = tuple(client.submit_task("block", b"120") for _ in range(2))
        for priority, count in ((250, 1), (150, 2), (20, 3)):
            for _ in range(count):
                client.submit_task("waiting", b"", priority)
        (dead,) = dead_letters(broker.address, "doomed", [b"x"], "no such account")
        wait_until(
            lambda: any(len(row["tasks"]) == 2 for row in client.workers()),
            15,
            "the worker to run both block tasks",
        )
        assert worker.proc is not None
        (row,) = (r for r in client.workers() if r["pid"] == worker.proc.pid)
    return Scene(row["worker_id"], running, dead)


def open_top(
    terminal: Terminal, address: str, width: int = 100, height: int = 32
) -> str:
    terminal.start([str(BIN / "tq"), "top", "--broker", address], width, height)
    return terminal.wait_for_text(f"tq top {address}  live")


def worker_row(screen: str, scene: Scene) -> str:
    (row,) = (line for line in screen.splitlines() if scene.worker_id in line)
    return row


def test_top_shows_queue_tiers_busy_workers_and_dead_letters(
    terminal: Terminal, broker: BrokerProcess, scene: Scene
) -> None:
    open_top(terminal, broker.address)
    screen = terminal.wait_for(
        lambda s: scene.worker_id in s and "no such account" in s,
        "the worker and the dead letter",
    )
    for pattern in (
        r"│ depth +6 ",
        r"│ high +1 ",
        r"│ normal +2 ",
        r"│ low +3 ",
        r"│ in progress +2 ",
        r"│ dead letters +1 ",
        r"│ workers +\d+ ",
        r"rates \(last \d+m\d+s\)",
    ):
        assert re.search(pattern, screen), f"{pattern!r} not on screen:\n{screen}"
    row = worker_row(screen, scene)
    assert "2/2" in row
    assert re.search(r"│ +(\d+ms|\d\.\ds) ago │", row), "its heartbeat age"
    assert all(f"{task_id} block" in row for task_id in scene.running), row
    assert re.search(rf"│ +{scene.dead_letter} │ doomed +│ dead letter ", screen)
    assert screen.rstrip().splitlines()[-1].startswith("q quit · tab next view")


def test_top_shows_the_submit_rate_with_a_sparkline(
    terminal: Terminal, broker: BrokerProcess, scene: Scene
) -> None:
    open_top(terminal, broker.address)
    # Cancelled at once, so the picture the other tests see stays the same.
    with Client.connect(broker.address) as client:
        for task_id in client.submit_many([("rate-probe", b"", 100)] * 40):
            client.cancel(task_id)
    rate = re.compile(r"│ submitted +(\d+(\.\d)?)/s ([▁▂▃▄▅▆▇█]+)")

    def rising(screen: str) -> bool:
        found = rate.search(screen)
        return found is not None and float(found[1]) > 0 and "█" in found[3]

    screen = terminal.wait_for(rising, "a submit rate above zero, drawn")
    assert re.search(r"│ completed +0\.0/s", screen), "the worker is busy"


def test_top_keys_switch_views_and_q_quits(
    terminal: Terminal, broker: BrokerProcess, scene: Scene
) -> None:
    open_top(terminal, broker.address)

    terminal.send_keys("2")
    held = terminal.wait_for_text("tasks held by workers", "lease ends")
    for task_id in scene.running:
        assert re.search(rf"{scene.worker_id} .*│ {task_id} +│ block +│ 1 +│ in ", held)

    terminal.send_keys("3")
    failures = terminal.wait_for_text("recent failures", "no such account")
    assert "queue depth" not in failures

    terminal.send_keys("Tab")
    terminal.wait_for_text("queue depth", "in progress")

    terminal.send_keys("q")
    assert terminal.exit_code() == 0
    after = terminal.screen()
    assert "q quit" not in after, f"the dashboard's screen was left behind:\n{after}"


def test_top_quits_on_ctrl_c_and_gives_the_terminal_back(
    terminal: Terminal, broker: BrokerProcess, scene: Scene
) -> None:
    open_top(terminal, broker.address)
    terminal.send_keys("C-c")
    assert terminal.exit_code() == 0
    after = terminal.scrollback()
    assert "q quit" not in after, after
    assert "Traceback" not in after, after


def test_top_redraws_to_fit_a_resized_terminal(
    terminal: Terminal, broker: BrokerProcess, scene: Scene
) -> None:
    open_top(terminal, broker.address, 100, 30)

    def fits(width: int, height: int) -> Callable[[str], bool]:
        """A screen drawn for this size: a terminal that shrinks cuts lines
        and rows off the old one, but does not close the tables' borders."""

        def check(screen: str) -> bool:
            lines = screen.rstrip("\n").split("\n")
            return (
                len(lines) == height
                and lines[0].startswith("tq top ")
                and lines[-1].startswith("q quit")
                and all(len(line) <= width for line in lines)
                and any(len(line) == width and line[-1] == "┓" for line in lines)
                and scene.worker_id in screen
            )

        return check

    terminal.wait_for(fits(100, 30), "a 100x30 screen")
    terminal.resize(72, 20)
    narrow = terminal.wait_for(fits(72, 20), "a screen redrawn to 72x20")
    assert re.search(r"│ in progress +2 ", narrow), narrow
    terminal.resize(130, 40)
    wide = terminal.wait_for(fits(130, 40), "a screen redrawn to 130x40")
    assert "2/2" in worker_row(wide, scene)


def test_top_says_reconnecting_while_the_broker_is_down_and_recovers(
    terminal: Terminal, fresh_broker: BrokerProcess
) -> None:
    open_top(terminal, fresh_broker.address)

    fresh_broker.kill()
    # It says how old the figures it keeps showing are.
    down = terminal.wait_for_text("reconnecting (data ")
    assert "│ depth " in down, down

    fresh_broker.start()
    with Client.connect(fresh_broker.address) as client:
        client.submit_task("after-restart", b"", 250)
    back = terminal.wait_for(
        lambda s: "reconnecting" not in s and re.search(r"│ high +1 ", s) is not None,
        "live figures from the restarted broker",
        timeout_s=20,
    )
    assert f"tq top {fresh_broker.address}  live" in back
    terminal.send_keys("q")
    assert terminal.exit_code() == 0
