"""Write the Gymnasium reference data that sim-gpu's unit tests compare against.

Usage (from the repository root; CI does not run this, the JSON files are committed):

    pip install gymnasium numpy
    python tools/gymnasium/make_fixtures.py

Writes crates/sim-gpu/tests/fixtures/<task>.json for each classic-control task of sim-gpu's
registry: cartpole, cartpole_discrete, pendulum, acrobot and mountain_car_continuous. Each
file holds:

* ``"transitions"``: single-step edge cases (clamped actions, threshold crossings, angle
  wrap-around, velocity clips, the mountain-car left wall, a goal reached). Each holds the
  state before the step (Gymnasium layout), the action our batched environment receives,
  and what Gymnasium's own ``step`` returned: the next state (``env.unwrapped.state``,
  float64), the observation (float32), the reward and the terminated flag. We set
  ``env.unwrapped.state`` and call ``env.unwrapped.step`` (no wrappers, so no time limit or
  order checks); for cart-pole ``steps_beyond_terminated`` is cleared before each step so
  that every transition is a "first" step (reward 1.0 even when it terminates).
* ``"episodes"``: whole episodes played through ``gym.make(<id>)``, whose ``TimeLimit``
  wrapper issues ``truncated`` (500 steps for cart-pole and acrobot, 200 for pendulum, 999
  for mountain car). Each episode holds ``"initial_state"`` and ``"steps"``; each step holds
  the ``"action"``, the unwrapped ``"state"`` after the step (float64), the ``"obs"``, the
  ``"reward"`` and Gymnasium's ``"terminated"`` and ``"truncated"`` flags. The actions mix
  random draws and simple controllers (a PD balance for cart-pole, a swing for pendulum,
  energy pumping for acrobot and mountain car), with continuous actions sometimes outside
  their bounds. Every task that can terminate has at least one terminated and one truncated
  episode; pendulum only truncates.

How the numbers are made comparable with our float32 environments:

* Every input state and action is rounded to float32 before Gymnasium sees it: before every
  step of an episode the unwrapped state is set to the float32 rounding of the state stored
  for the previous step (as written to the file), which is exactly what the Rust test feeds
  our environment with ``set_state``. The mountain-car state is set as a float32 array (the
  dtype Gymnasium itself keeps after a step, so its arithmetic is unchanged); the others as
  float64 arrays holding float32 values.
* Floats are written with 12 significant digits, float32 values (observations, actions,
  rounded states) as the shortest decimal that reads back as the same float32.
* Steps whose result lies within 1e-4 of a discontinuity are skipped (transitions) or make
  the episode be discarded and another drawn (episodes), so that float32 rounding cannot
  flip a flag: the termination thresholds of every task, the acrobot angle wrap at +-pi and
  the mountain-car left wall.
* Discrete tasks: our actions are ``[N, 1]`` floats holding an index, which our environment
  rounds to the nearest integer and clamps into ``0..n``. A few transitions use raw values
  such as 0.4, 1.6, -3 or 7; Gymnasium is called with the index they round to.
* Cart-pole: Gymnasium's CartPole-v1 is discrete (force = +-force_mag). Our ``cartpole``
  task is continuous with ``F = 10 * clamp(a, -1, 1)``. For a = +-1 we call Gymnasium with
  its default ``force_mag = 10`` and action 1 / 0. For any other ``a`` we emulate the
  continuous force with Gymnasium's own code by setting ``env.unwrapped.force_mag = |F|``
  and choosing action 1 when ``F >= 0`` and 0 otherwise, so ``force = +-force_mag = F``.
  Every continuous cart-pole step (transitions and episodes) is also recomputed with an
  independent float64 transcription of the formulas in REFERENCE.md, and the script fails
  unless both agree exactly. ``cartpole_discrete`` is CartPole-v1 unchanged.
* Pendulum: transition actions are drawn from U(-3, 3) so that the +-2 clip is exercised,
  angles from U(-3 pi, 3 pi) so that the angle normalisation in the reward is exercised, and
  a few states near the +-8 speed limit exercise the velocity clip.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

OUT_DIR = Path(__file__).resolve().parents[2] / "crates" / "sim-gpu" / "tests" / "fixtures"
SEED = 20240601
MARGIN = 1e-4
DIGITS = 12
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4
MC_GOAL = 0.45
MC_MIN_POSITION = -1.2

Policy = Callable[[np.ndarray, np.random.Generator], float]


def f32(values) -> np.ndarray:
    """Round to float32, back in float64 (what our float32 environment will see)."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def r12(x: float) -> float:
    """``x`` as written to the file: the shortest decimal that reads back as the same float32
    when ``x`` is a float32 value (observations, actions, rounded states), else ``x`` with
    DIGITS significant digits."""
    x = float(x)
    single = np.float32(x)
    if float(single) == x:
        short = float(str(single))
        if float(np.float32(short)) == x:
            return short
    return float(f"{x:.{DIGITS}g}")


def rounded(values) -> list[float]:
    return [r12(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def to_index(action: float, n: int) -> int:
    """The index our discrete environments take a raw action for."""
    return int(min(max(np.rint(action), 0), n - 1))


# --- cart-pole ---------------------------------------------------------------------------


def cartpole_reference(state: np.ndarray, action: float):
    """Float64 transcription of the cart-pole formulas, independent of Gymnasium's code."""
    g, m_cart, m_pole, half_len, tau = 9.8, 1.0, 0.1, 0.5, 0.02
    total = m_cart + m_pole
    pml = m_pole * half_len
    x, x_dot, th, th_dot = state
    force = 10.0 * min(max(action, -1.0), 1.0)
    temp = (force + pml * th_dot**2 * math.sin(th)) / total
    th_acc = (g * math.sin(th) - math.cos(th) * temp) / (
        half_len * (4.0 / 3.0 - m_pole * math.cos(th) ** 2 / total)
    )
    x_acc = temp - pml * th_acc * math.cos(th) / total
    nxt = np.array([x + tau * x_dot, x_dot + tau * x_acc, th + tau * th_dot, th_dot + tau * th_acc])
    terminated = abs(nxt[0]) > X_THRESHOLD or abs(nxt[2]) > THETA_THRESHOLD
    return nxt, terminated


def cartpole_continuous_step(env, action: float):
    """One step of ``env`` (CartPole-v1, wrapped or not) with the force 10 * clamp(a, -1, 1),
    checked against the independent transcription."""
    u = env.unwrapped
    state = np.asarray(u.state, dtype=np.float64).copy()
    force = 10.0 * min(max(action, -1.0), 1.0)
    u.force_mag = abs(force)
    obs, reward, terminated, truncated, _ = env.step(1 if force >= 0 else 0)
    u.force_mag = 10.0
    ref, ref_term = cartpole_reference(state, action)
    nxt = np.asarray(u.state, dtype=np.float64)
    assert np.array_equal(nxt, ref) and terminated == ref_term, (state, action, nxt, ref)
    return obs, float(reward), bool(terminated), bool(truncated)


def near_cartpole_threshold(nxt: np.ndarray) -> bool:
    return abs(abs(nxt[0]) - X_THRESHOLD) < MARGIN or abs(abs(nxt[2]) - THETA_THRESHOLD) < MARGIN


def cartpole_cases(rng: np.random.Generator, discrete: bool) -> list[tuple[np.ndarray, float]]:
    cases: list[tuple[np.ndarray, float]] = []
    # Random states over the whole valid box (and a little beyond it), random actions.
    for i in range(30):
        state = rng.uniform([-2.5, -3.0, -0.25, -3.0], [2.5, 3.0, 0.25, 3.0])
        if discrete:
            action = float(rng.integers(2))
        elif i % 3 == 0:
            action = float(rng.choice([-1.0, 1.0]))
        else:
            action = float(rng.uniform(-2.0, 2.0))
        cases.append((state, action))
    # Hand-picked: equilibrium, clamped actions, and crossings of each threshold.
    lo, hi = (0.0, 1.0) if discrete else (-1.0, 1.0)
    cases += [
        (np.zeros(4), hi),
        (np.zeros(4), lo),
        (np.array([2.39, 1.5, 0.0, 0.0]), hi),
        (np.array([-2.39, -1.5, 0.0, 0.0]), lo),
        (np.array([0.0, 0.0, 0.205, 1.0]), lo),
        (np.array([0.0, 0.0, -0.205, -1.0]), hi),
        (np.array([0.0, 0.0, 0.2, 0.0]), hi),
    ]
    if discrete:
        # Raw actions that our environment rounds and clamps to an index.
        cases += [(np.array([0.01, -0.02, 0.03, 0.04]), a) for a in (0.4, 1.6, -3.0, 7.0, 0.6)]
    else:
        cases += [
            (np.zeros(4), 0.0),
            (np.array([0.01, -0.02, 0.03, 0.04]), 5.0),
            (np.array([0.01, -0.02, 0.03, 0.04]), -7.5),
            (np.array([2.39, 1.5, 0.0, 0.0]), 0.5),
            (np.array([0.0, 0.0, 0.2, 0.0]), 0.25),
        ]
    return cases


def cartpole_transitions(rng: np.random.Generator, discrete: bool) -> list[dict]:
    env = gym.make("CartPole-v1", disable_env_checker=True)
    env.reset(seed=0)
    u = env.unwrapped
    out = []
    for state, action in cartpole_cases(rng, discrete):
        state, action = f32(state), float(f32(action))
        u.state = state.copy()
        u.steps_beyond_terminated = None
        if discrete:
            obs, reward, terminated, _, _ = u.step(to_index(action, 2))
        else:
            obs, reward, terminated, _ = cartpole_continuous_step(u, action)
        nxt = np.asarray(u.state, dtype=np.float64)
        if near_cartpole_threshold(nxt):
            continue
        out.append(transition(state, action, nxt, obs, reward, terminated))
    env.close()
    return out


def cartpole_pd(state: np.ndarray, rng: np.random.Generator) -> float:
    """A PD balance on the pole angle (with a weak pull back to the centre), plus noise; the
    output leaves [-1, 1] now and then."""
    x, x_dot, th, th_dot = state
    return 3.0 * th + 0.8 * th_dot + 0.1 * x + 0.3 * x_dot + float(rng.uniform(-0.3, 0.3))


# --- pendulum ----------------------------------------------------------------------------


def pendulum_transitions(rng: np.random.Generator) -> list[dict]:
    env = gym.make("Pendulum-v1", disable_env_checker=True)
    env.reset(seed=0)
    u = env.unwrapped
    cases: list[tuple[np.ndarray, float]] = []
    for _ in range(30):
        state = rng.uniform([-3 * math.pi, -8.0], [3 * math.pi, 8.0])
        cases.append((state, float(rng.uniform(-3.0, 3.0))))
    cases += [
        (np.array([0.0, 0.0]), 0.0),
        (np.array([math.pi / 2, 7.9]), 2.0),  # clipped at +8
        (np.array([-math.pi / 2, -7.9]), -2.5),  # clipped at -8 (and the torque at -2)
        (np.array([0.5, 2.0]), 1.0),
        (np.array([7.0, -1.0]), 0.3),  # angle beyond 2 pi
    ]
    out = []
    for state, action in cases:
        state, action = f32(state), float(f32(action))
        u.state = state.copy()
        obs, reward, terminated, _, _ = u.step(np.array([action], dtype=np.float32))
        nxt = np.asarray(u.state, dtype=np.float64)
        out.append(transition(state, action, nxt, obs, reward, terminated))
    env.close()
    return out


def pendulum_swing(state: np.ndarray, rng: np.random.Generator) -> float:
    """Pump energy with the velocity's sign, sometimes beyond the +-2 torque bound."""
    return float(np.sign(state[1]) * rng.uniform(1.0, 3.0))


# --- acrobot -----------------------------------------------------------------------------


def acrobot_height(s: np.ndarray) -> float:
    return -math.cos(s[0]) - math.cos(s[0] + s[1])


def near_acrobot_threshold(nxt: np.ndarray) -> bool:
    near_wrap = any(abs(abs(nxt[j]) - math.pi) < MARGIN for j in (0, 1))
    return near_wrap or abs(acrobot_height(nxt) - 1.0) < MARGIN


def acrobot_transitions(rng: np.random.Generator) -> list[dict]:
    env = gym.make("Acrobot-v1", disable_env_checker=True)
    env.reset(seed=0)
    u = env.unwrapped
    v1, v2 = 4 * math.pi, 9 * math.pi
    cases: list[tuple[np.ndarray, float]] = []
    for _ in range(30):
        state = rng.uniform([-math.pi, -math.pi, -v1, -v2], [math.pi, math.pi, v1, v2])
        cases.append((state, float(rng.integers(3))))
    cases += [
        (np.zeros(4), 1.0),  # at rest, no torque
        (np.zeros(4), 2.0),
        (np.array([0.05, -0.05, 0.1, -0.1]), 0.4),  # raw actions: rounded, clamped
        (np.array([0.05, -0.05, 0.1, -0.1]), 1.6),
        (np.array([0.05, -0.05, 0.1, -0.1]), -3.0),
        (np.array([0.05, -0.05, 0.1, -0.1]), 7.0),
        (np.array([3.0, 0.0, 3.0, 0.0]), 1.0),  # theta1 wraps past +pi
        (np.array([-3.0, 0.2, -3.0, 0.0]), 1.0),  # theta1 wraps past -pi
        (np.array([0.0, 3.0, 0.0, 8.0]), 2.0),  # theta2 wraps past +pi
        (np.array([0.0, -3.0, 0.0, -8.0]), 0.0),  # theta2 wraps past -pi
        (np.array([0.0, 0.0, 12.5, 0.0]), 2.0),  # theta1_dot clipped at 4 pi
        (np.array([0.0, 0.0, -12.5, 0.0]), 0.0),  # theta1_dot clipped at -4 pi
        (np.array([0.0, 1.0, 0.0, 28.2]), 2.0),  # theta2_dot clipped at 9 pi
        (np.array([0.0, -1.0, 0.0, -28.2]), 0.0),  # theta2_dot clipped at -9 pi
        (np.array([2.0, 0.5, 0.0, 0.0]), 1.0),  # above the line: terminated
        (np.array([1.8, 0.3, 1.0, 0.5]), 2.0),  # swings across the line
        (np.array([1.5, 0.2, 0.0, 0.0]), 1.0),  # below the line
    ]
    out = []
    for state, action in cases:
        state, action = f32(state), float(f32(action))
        u.state = state.copy()
        obs, reward, terminated, _, _ = u.step(to_index(action, 3))
        nxt = np.asarray(u.state, dtype=np.float64)
        if near_acrobot_threshold(nxt):
            continue
        out.append(transition(state, action, nxt, obs, reward, terminated))
    env.close()
    return out


def acrobot_pump(state: np.ndarray, rng: np.random.Generator) -> float:
    """Torque with the second joint's velocity (pumps energy), a random action 1 in 10."""
    if rng.random() < 0.1:
        return float(rng.integers(3))
    return 2.0 if state[3] > 0 else 0.0


# --- mountain car ------------------------------------------------------------------------


def near_mountain_car_threshold(nxt: np.ndarray) -> bool:
    x, v = nxt
    near_goal = (abs(x - MC_GOAL) < MARGIN and v > -MARGIN) or (
        abs(v) < MARGIN and x > MC_GOAL - MARGIN
    )
    # Just off the left wall (where the wall rule would have stopped the car).
    near_wall = MC_MIN_POSITION < x < MC_MIN_POSITION + MARGIN
    return near_goal or near_wall


def mountain_car_transitions(rng: np.random.Generator) -> list[dict]:
    env = gym.make("MountainCarContinuous-v0", disable_env_checker=True)
    env.reset(seed=0)
    u = env.unwrapped
    cases: list[tuple[np.ndarray, float]] = []
    for _ in range(30):
        state = rng.uniform([-1.2, -0.07], [0.6, 0.07])
        cases.append((state, float(rng.uniform(-2.0, 2.0))))
    cases += [
        (np.array([-0.5, 0.0]), 0.0),
        (np.array([-0.5, 0.01]), 3.0),  # clamped action; the reward uses the raw action
        (np.array([-0.5, -0.01]), -2.5),
        (np.array([-1.19, -0.05]), -1.0),  # hits the left wall: stopped
        (np.array([-1.2, 0.0]), -1.0),  # at the wall, pushed left
        (np.array([-1.15, -0.03]), 0.5),  # does not reach the wall
        (np.array([-0.5, 0.0699]), 1.0),  # speed clipped at +0.07
        (np.array([0.5, -0.0699]), -1.0),  # speed clipped at -0.07
        (np.array([0.44, 0.03]), 1.0),  # goal reached
        (np.array([0.44, 0.03]), 3.0),  # goal reached with a clamped action
        (np.array([0.59, 0.07]), 1.0),  # right edge: position clipped, goal
        (np.array([0.5, -0.01]), 0.0),  # past the goal, moving back: not terminated
        (np.array([0.4, 0.02]), 0.2),  # short of the goal
    ]
    out = []
    for state, action in cases:
        state, action = f32(state), float(f32(action))
        u.state = state.astype(np.float32)
        obs, reward, terminated, _, _ = u.step(np.array([action], dtype=np.float32))
        nxt = np.asarray(u.state, dtype=np.float64)
        if near_mountain_car_threshold(nxt):
            continue
        out.append(transition(state, action, nxt, obs, reward, terminated))
    env.close()
    return out


def mountain_car_pump(state: np.ndarray, rng: np.random.Generator) -> float:
    """Push with the velocity (pumps energy), with a noisy strength that leaves [-1, 1]."""
    direction = np.sign(state[1]) if state[1] != 0 else 1.0
    return float(direction * rng.uniform(0.6, 1.6))


def mountain_car_weak(state: np.ndarray, rng: np.random.Generator) -> float:
    """Weak random pushes: never enough to reach the goal."""
    return float(rng.uniform(-0.3, 0.3))


# --- shared ------------------------------------------------------------------------------


def transition(state, action, nxt, obs, reward, terminated) -> dict:
    return {
        "state": rounded(state),
        "action": rounded([action]),
        "next_state": rounded(nxt),
        "obs": rounded(obs),
        "reward": r12(reward),
        "terminated": bool(terminated),
    }


def random_uniform(low: float, high: float) -> Policy:
    return lambda state, rng: float(rng.uniform(low, high))


def random_index(n: int) -> Policy:
    return lambda state, rng: float(rng.integers(n))


def threshold(policy: Policy) -> Policy:
    """A cart-pole policy as a discrete one: push right (1) when it asks for a positive
    force, left (0) otherwise; one action in 10 is flipped."""

    def act(state: np.ndarray, rng: np.random.Generator) -> float:
        index = 1.0 if policy(state, rng) > 0 else 0.0
        return 1.0 - index if rng.random() < 0.1 else index

    return act


@dataclass
class Task:
    """How to play one task's episodes through ``gym.make``."""

    gym_id: str
    # (wrapped env, action) -> (obs, reward, terminated, truncated)
    step: Callable
    # Whether a state after a step lies too near a discontinuity.
    near: Callable[[np.ndarray], bool]
    # The dtype of the unwrapped state Gymnasium is given.
    state_dtype: type = np.float64


def continuous_step(env, action: float):
    obs, reward, terminated, truncated, _ = env.step(np.array([action], dtype=np.float32))
    return obs, float(reward), bool(terminated), bool(truncated)


def discrete_step(n: int):
    def step(env, action: float):
        obs, reward, terminated, truncated, _ = env.step(to_index(action, n))
        return obs, float(reward), bool(terminated), bool(truncated)

    return step


def play(task: Task, policy: Policy, seed: int) -> dict | None:
    """One whole episode, or None when a step lands too near a discontinuity."""
    env = gym.make(task.gym_id, disable_env_checker=True)
    env.reset(seed=seed)
    rng = np.random.default_rng([SEED, seed])
    u = env.unwrapped
    initial = rounded(f32(u.state))
    state = f32(initial)
    steps = []
    while True:
        u.state = state.astype(task.state_dtype)
        action = float(f32(policy(state, rng)))
        obs, reward, terminated, truncated = task.step(env, action)
        nxt = np.asarray(u.state, dtype=np.float64)
        if task.near(nxt):
            env.close()
            return None
        steps.append(
            {
                "action": rounded([action]),
                "state": rounded(nxt),
                "obs": rounded(obs),
                "reward": r12(reward),
                "terminated": terminated,
                "truncated": truncated,
            }
        )
        if terminated or truncated:
            env.close()
            return {"initial_state": initial, "steps": steps}
        state = f32(steps[-1]["state"])


DISCARDED: dict[str, int] = {}


def episodes(task: Task, wanted: list[tuple[Policy, str]], first_seed: int) -> list[dict]:
    """One episode per (policy, outcome) pair, drawing seeds until the episode ends the way
    that is wanted ("terminated" or "truncated") and stays clear of the discontinuities."""
    out = []
    seed = first_seed
    for policy, outcome in wanted:
        for _ in range(100):
            seed += 1
            ep = play(task, policy, seed)
            if ep is None:
                DISCARDED[task.gym_id] = DISCARDED.get(task.gym_id, 0) + 1
                continue
            last = ep["steps"][-1]
            if (outcome == "terminated") == last["terminated"]:
                out.append(ep)
                break
        else:
            raise RuntimeError(f"{task.gym_id}: no {outcome} episode in 100 seeds")
    return out


CARTPOLE = Task("CartPole-v1", cartpole_continuous_step, near_cartpole_threshold)
CARTPOLE_DISCRETE = Task("CartPole-v1", discrete_step(2), near_cartpole_threshold)
PENDULUM = Task("Pendulum-v1", continuous_step, lambda nxt: False)
ACROBOT = Task("Acrobot-v1", discrete_step(3), near_acrobot_threshold)
MOUNTAIN_CAR = Task(
    "MountainCarContinuous-v0", continuous_step, near_mountain_car_threshold, np.float32
)


def make_cartpole(rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    wanted = [
        (random_uniform(-1.5, 1.5), "terminated"),
        (random_uniform(-1.5, 1.5), "terminated"),
        (cartpole_pd, "truncated"),
    ]
    return cartpole_transitions(rng, False), episodes(CARTPOLE, wanted, 100)


def make_cartpole_discrete(rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    wanted = [
        (random_index(2), "terminated"),
        (random_index(2), "terminated"),
        (threshold(cartpole_pd), "truncated"),
    ]
    return cartpole_transitions(rng, True), episodes(CARTPOLE_DISCRETE, wanted, 200)


def make_pendulum(rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    wanted = [(random_uniform(-3.0, 3.0), "truncated"), (pendulum_swing, "truncated")]
    return pendulum_transitions(rng), episodes(PENDULUM, wanted, 300)


def make_acrobot(rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    wanted = [(random_index(3), "truncated"), (acrobot_pump, "terminated")]
    return acrobot_transitions(rng), episodes(ACROBOT, wanted, 400)


def make_mountain_car(rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    wanted = [(mountain_car_pump, "terminated"), (mountain_car_weak, "truncated")]
    return mountain_car_transitions(rng), episodes(MOUNTAIN_CAR, wanted, 500)


TASKS = {
    "cartpole": ("CartPole-v1 (continuous force)", make_cartpole),
    "cartpole_discrete": ("CartPole-v1", make_cartpole_discrete),
    "pendulum": ("Pendulum-v1", make_pendulum),
    "acrobot": ("Acrobot-v1", make_acrobot),
    "mountain_car_continuous": ("MountainCarContinuous-v0", make_mountain_car),
}


def dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def render(env_name: str, transitions: list[dict], eps: list[dict]) -> str:
    """Compact JSON with one transition or episode step per line."""
    lines = [
        "{",
        f'"source":{dumps(f"tools/gymnasium/make_fixtures.py, gymnasium {gym.__version__}")},',
        f'"env":{dumps(env_name)},',
        '"transitions":[',
    ]
    lines += [
        dumps(t) + ("," if i + 1 < len(transitions) else "") for i, t in enumerate(transitions)
    ]
    lines.append("],")
    lines.append('"episodes":[')
    for i, ep in enumerate(eps):
        lines.append(f'{{"initial_state":{dumps(ep["initial_state"])},"steps":[')
        steps = ep["steps"]
        lines += [dumps(s) + ("," if j + 1 < len(steps) else "") for j, s in enumerate(steps)]
        lines.append("]}" + ("," if i + 1 < len(eps) else ""))
    lines.append("]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    total = 0
    for i, (name, (env_name, make)) in enumerate(TASKS.items()):
        transitions, eps = make(np.random.default_rng([SEED, i]))
        # A document that does not parse back would fail every test: check it here.
        text = render(env_name, transitions, eps)
        assert json.loads(text)["episodes"] == eps
        path = OUT_DIR / f"{name}.json"
        path.write_text(text)
        total += len(text)
        n_term = sum(t["terminated"] for t in transitions)
        ends = [
            "terminated" if ep["steps"][-1]["terminated"] else "truncated" for ep in eps
        ]
        n_steps = sum(len(ep["steps"]) for ep in eps)
        print(
            f"wrote {path.name}: {len(text) / 1000:.1f} kB, {len(transitions)} transitions "
            f"({n_term} terminated), {len(eps)} episodes of {[len(ep['steps']) for ep in eps]} "
            f"steps ({n_steps} in all; {', '.join(ends)})"
        )
    print(f"total {total / 1000:.1f} kB")
    for gym_id, count in DISCARDED.items():
        print(f"{gym_id}: {count} episodes discarded near a discontinuity")


if __name__ == "__main__":
    main()
