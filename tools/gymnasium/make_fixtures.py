"""Write the Gymnasium reference transitions that sim-gpu's unit tests compare against.

Usage (from the repository root; CI does not run this, the JSON files are committed):

    pip install gymnasium numpy
    python tools/gymnasium/make_fixtures.py

Writes crates/sim-gpu/tests/fixtures/{cartpole,pendulum}.json. Each transition holds the
state before the step (Gymnasium layout), the action our batched environment receives, and
what Gymnasium's own ``step`` returned: the next state (``env.unwrapped.state``, float64),
the observation (float32), the reward and the terminated flag.

How the transitions are made:

* Every input state and action is first rounded to float32, so that Gymnasium (float64)
  and our float32 environments start from the same numbers.
* We set ``env.unwrapped.state`` and call ``env.unwrapped.step`` (no wrappers, so no time
  limit or order checks); for cart-pole ``steps_beyond_terminated`` is cleared before each
  step so that every transition is a "first" step (reward 1.0 even when it terminates).
* Cart-pole: Gymnasium's CartPole-v1 is discrete (force = +-force_mag). Our environment is
  continuous with ``F = 10 * clamp(a, -1, 1)``. For a = +-1 we call Gymnasium with its
  default ``force_mag = 10`` and action 1 / 0. For any other ``a`` we emulate the continuous
  force with Gymnasium's own code by setting ``env.unwrapped.force_mag = |F|`` and choosing
  action 1 when ``F >= 0`` and 0 otherwise, so ``force = +-force_mag = F``. Every
  transition is also recomputed with an independent float64 transcription of the formulas
  in REFERENCE.md, and the script fails unless both agree exactly.
* Pendulum: actions are drawn from U(-3, 3) so that the +-2 clip is exercised, angles from
  U(-3 pi, 3 pi) so that the angle normalisation in the reward is exercised, and a few
  states near the +-8 speed limit exercise the velocity clip.
* Transitions whose next state lies within 1e-4 of a termination threshold are skipped, so
  that float32 rounding cannot flip a terminated flag.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np

OUT_DIR = Path(__file__).resolve().parents[2] / "crates" / "sim-gpu" / "tests" / "fixtures"
MARGIN = 1e-4
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4


def f32(values) -> np.ndarray:
    """Round to float32, back in float64 (what our float32 environment will see)."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


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


def cartpole_step(env, state: np.ndarray, action: float):
    """One step of Gymnasium's CartPole-v1 with the continuous force 10 * clamp(a, -1, 1)."""
    u = env.unwrapped
    force = 10.0 * min(max(action, -1.0), 1.0)
    u.force_mag = abs(force)
    u.state = state.copy()
    u.steps_beyond_terminated = None
    obs, reward, terminated, _, _ = u.step(1 if force >= 0 else 0)
    u.force_mag = 10.0
    return np.asarray(u.state, dtype=np.float64), obs, float(reward), bool(terminated)


def near_cartpole_threshold(nxt: np.ndarray) -> bool:
    return abs(abs(nxt[0]) - X_THRESHOLD) < MARGIN or abs(abs(nxt[2]) - THETA_THRESHOLD) < MARGIN


def make_cartpole(rng: np.random.Generator) -> list[dict]:
    env = gym.make("CartPole-v1", disable_env_checker=True)
    env.reset(seed=0)
    cases: list[tuple[np.ndarray, float]] = []
    # Random states over the whole valid box (and a little beyond it), random actions.
    for i in range(30):
        state = rng.uniform([-2.5, -3.0, -0.25, -3.0], [2.5, 3.0, 0.25, 3.0])
        action = float(rng.choice([-1.0, 1.0])) if i % 3 == 0 else float(rng.uniform(-2.0, 2.0))
        cases.append((state, action))
    # Hand-picked: equilibrium, clamped actions, and crossings of each threshold.
    cases += [
        (np.zeros(4), 0.0),
        (np.zeros(4), 1.0),
        (np.zeros(4), -1.0),
        (np.array([0.01, -0.02, 0.03, 0.04]), 5.0),
        (np.array([0.01, -0.02, 0.03, 0.04]), -7.5),
        (np.array([2.39, 1.5, 0.0, 0.0]), 0.5),
        (np.array([-2.39, -1.5, 0.0, 0.0]), -0.5),
        (np.array([0.0, 0.0, 0.205, 1.0]), 0.0),
        (np.array([0.0, 0.0, -0.205, -1.0]), 0.0),
        (np.array([0.0, 0.0, 0.2, 0.0]), 0.25),
    ]
    out = []
    for state, action in cases:
        state, action = f32(state), float(f32(action))
        nxt, obs, reward, terminated = cartpole_step(env, state, action)
        ref, ref_term = cartpole_reference(state, action)
        assert np.array_equal(nxt, ref) and terminated == ref_term, (state, action, nxt, ref)
        if near_cartpole_threshold(nxt):
            continue
        out.append(
            {
                "state": state.tolist(),
                "action": [action],
                "next_state": nxt.tolist(),
                "obs": np.asarray(obs, dtype=np.float64).tolist(),
                "reward": reward,
                "terminated": terminated,
            }
        )
    env.close()
    return out


def make_pendulum(rng: np.random.Generator) -> list[dict]:
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
        obs, reward, terminated, _, _ = u.step(np.array([action], dtype=np.float64))
        out.append(
            {
                "state": state.tolist(),
                "action": [action],
                "next_state": np.asarray(u.state, dtype=np.float64).tolist(),
                "obs": np.asarray(obs, dtype=np.float64).tolist(),
                "reward": float(reward),
                "terminated": bool(terminated),
            }
        )
    env.close()
    return out


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240601)
    for name, make in (("cartpole", make_cartpole), ("pendulum", make_pendulum)):
        transitions = make(rng)
        doc = {
            "source": f"tools/gymnasium/make_fixtures.py, gymnasium {gym.__version__}",
            "env": {"cartpole": "CartPole-v1 (continuous force)", "pendulum": "Pendulum-v1"}[name],
            "transitions": transitions,
        }
        path = OUT_DIR / f"{name}.json"
        path.write_text(json.dumps(doc, indent=1) + "\n")
        n_term = sum(t["terminated"] for t in transitions)
        print(f"wrote {path} ({len(transitions)} transitions, {n_term} terminated)")


if __name__ == "__main__":
    main()
