"""The evaluation protocol (docs/protocol.md) as rules the agent tooling applies.

- Seeds: reported runs use seeds 0-99, tuning runs (`agent run --tuning`) seeds 100-999, so a
  new run cannot be both; a reported run whose seed was used for tuning the same method on the
  same env (a tuning run in results/, or a trial a config lists) is refused by the report.
- Evaluation episodes: reported runs are evaluated on seeds EVAL_SEED_BASE + i, tuning runs on
  TUNING_EVAL_SEED_BASE + i: no choice is made on the episodes that are reported.
- At least MIN_EVAL_EPISODES episodes per evaluation point and MIN_REPORTED_SEEDS seeds per method
  on the headline tasks; baselines run to the budget their config fixes (`--budget` below it makes
  a run off-protocol).

Every run `agent run` starts records `run.json["protocol"]` (`run_record`). Runs recorded before
the protocol have no such field: the report marks them "pre-protocol" and applies no refusal to
them (their history is documented in docs/experiments/, not rewritten).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

import yaml

from mbrl_ros.agent.config import EVAL_SEED_BASE, TUNING_EVAL_SEED_BASE

VERSION = 1
REPORTED_SEEDS = range(0, 100)
TUNING_SEEDS = range(100, 1000)   # below 1000: training-episode seeds (common.training_seed) stay under the eval seeds
MIN_EVAL_EPISODES = 5
MIN_REPORTED_SEEDS = 5


class ProtocolError(ValueError):
    """A run the protocol does not allow (to start, or to report)."""


def check_seed(seed: int, role: str) -> None:
    """Refuse a seed outside its role's range (one line)."""
    rng = TUNING_SEEDS if role == "tuning" else REPORTED_SEEDS
    if int(seed) in rng:
        return
    if role == "tuning":
        raise ProtocolError(f"tuning seeds are {rng.start}-{rng.stop - 1}; seed {seed} is "
                            + ("a reported seed (0-99)" if int(seed) in REPORTED_SEEDS else "out of range"))
    hint = "; pass --tuning for a tuning run" if int(seed) in TUNING_SEEDS else ""
    raise ProtocolError(f"reported seeds are {rng.start}-{rng.stop - 1}, got {seed}{hint}")


def violations(config, method: str) -> list[str]:
    """Why a reported run of `method` under `config` would not meet the protocol (empty: it does)."""
    out = []
    if config.eval.episodes < MIN_EVAL_EPISODES:
        out.append(f"{config.eval.episodes} evaluation episodes per point (protocol: >= {MIN_EVAL_EPISODES})")
    if config.eval.seed_base != EVAL_SEED_BASE:
        out.append(f"evaluation episodes from seed {config.eval.seed_base}, not the reported {EVAL_SEED_BASE}")
    if config.budget(method) < config.config_budget(method):
        out.append(f"stopped at {config.budget(method)} of the config's {config.config_budget(method)} env steps")
    return out


def run_record(config, method: str, seed: int) -> dict:
    """What run.json records of the protocol for one run."""
    base, n = int(config.eval.seed_base), int(config.eval.episodes)
    record = {"version": VERSION, "role": config.role, "seed": int(seed), "eval_seed_base": base,
              "eval_episodes": n, "eval_seeds": [base + i for i in range(n)]}
    if config.role == "reported":
        found = violations(config, method)
        record.update(claims=not found, violations=found)
    return record


def status(run: dict) -> str:
    """pre-protocol | tuning | protocol | off-protocol, from a run's run.json."""
    record = run.get("protocol")
    if not record:
        return "pre-protocol"
    if record.get("role") == "tuning":
        return "tuning"
    return "protocol" if record.get("claims") else "off-protocol"


def _config_trials(run: dict) -> list[dict]:
    """The tuning trials the run's config lists: as recorded in run.json and as its config file lists them
    now (a trial added to the file after the run still counts)."""
    trials = list((((run.get("config") or {}).get("protocol") or {}).get("tuning_trials")) or [])
    path = config_path(run)
    if path is not None:
        from mbrl_ros.agent.config import resolve_extends

        try:
            trials += (resolve_extends(path).get("protocol") or {}).get("tuning_trials") or []
        except (ValueError, FileNotFoundError, yaml.YAMLError):
            pass  # the recorded trials stand; a broken file is the run command's to report
    return trials


def chosen_on_reported_episodes(run: dict) -> bool:
    """Whether the run is evaluated on the reported episodes (10^9 + i) that trials of its config for
    its method were evaluated on: the pre-protocol trials (`eval_episodes: reported`) chose configs on
    them. Fresh seeds do not undo that choice, so the report says it beside the run, protocol or not."""
    if int((run.get("protocol") or {}).get("eval_seed_base", EVAL_SEED_BASE)) != EVAL_SEED_BASE:
        return False
    return any(trial.get("eval_episodes") == "reported" and trial.get("method", "mbrl") == run["method"]
               for trial in _config_trials(run))


def config_path(run: dict) -> Optional[Path]:
    """The run's config file as it is now: where run.json says, else by name in config/agent/ or its
    archive/ (configs/agent/ was renamed config/agent/; superseded variants moved to archive/), looked
    up from the working directory and from the repository that holds the run folder."""
    recorded = Path(run.get("config_file") or "")
    if recorded.suffix not in (".yaml", ".yml"):
        return None
    roots = [Path(".")]
    if run.get("folder"):
        parents = Path(run["folder"]).resolve().parents  # <repo>/results/<task>/<method>/seed<S>
        roots += [parents[3]] if len(parents) > 3 else []
    for root in roots:
        for candidate in (root / recorded, root / "config" / "agent" / recorded.name,
                          root / "config" / "agent" / "archive" / recorded.name):
            if candidate.is_file():
                return candidate
    return None


def tuning_seeds(runs: Iterable[dict]) -> dict[tuple[str, str], dict[int, str]]:
    """{(env_id, method): {seed: where it was used for tuning}} from tuning runs and listed trials.

    A seed is burnt for a method on a whole env, not only for one config: a variant chosen on
    another config's trial saw the same training episodes."""
    out: dict[tuple[str, str], dict[int, str]] = {}
    for run in runs:
        env_id = run.get("env_id", "")
        if status(run) == "tuning":
            out.setdefault((env_id, run["method"]), {}).setdefault(int(run["seed"]), f"tuning run {run.get('folder', '?')}")
        for trial in _config_trials(run):
            where = f"tuning trial of {run.get('task')}" + (f" ({trial['what']})" if trial.get("what") else "")
            for seed in trial.get("seeds") or []:
                out.setdefault((env_id, trial.get("method", "mbrl")), {}).setdefault(int(seed), where)
    return out


def check_reportable(run: dict, burnt: dict[tuple[str, str], dict[int, str]]) -> Optional[str]:
    """Refuse (ProtocolError) a run that claims the protocol but breaks it; for a run that does not
    claim it, the note the report prints beside it (None: nothing to say)."""
    state = status(run)
    where = burnt.get((run.get("env_id", ""), run["method"]), {}).get(int(run["seed"]))
    folder = run.get("folder", "?")
    if state in ("protocol", "off-protocol"):
        if where:
            raise ProtocolError(f"{folder}: seed {run['seed']} was used for tuning {run['method']} on "
                                f"{run.get('env_id')} ({where}); a tuning seed is never reported: run a fresh seed")
        if int(run["protocol"].get("eval_seed_base", EVAL_SEED_BASE)) == TUNING_EVAL_SEED_BASE:
            raise ProtocolError(f"{folder}: evaluated on the tuning episodes, so it cannot be reported")
    if state == "protocol":
        short = [r["env_steps"] for r in run.get("evals", []) if len(r["returns"]) < MIN_EVAL_EPISODES]
        if short:
            raise ProtocolError(f"{folder}: claims the protocol but its evaluations at {short[:5]} env steps have "
                                f"fewer than {MIN_EVAL_EPISODES} episodes")
        return None
    if state == "off-protocol":
        return "off-protocol: " + "; ".join(run["protocol"].get("violations") or ["?"])
    if state == "pre-protocol" and where:
        return f"pre-protocol; seed {run['seed']} was a tuning seed ({where})"
    return "pre-protocol" if state == "pre-protocol" else None
