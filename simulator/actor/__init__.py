"""The behavioural simulated model ("actor"): reads the task and the tool catalog and works the
task with the tools, with a configurable competence per tier (tiers.toml).

Hand-written because no library simulates a tool-using model over the OpenAI wire: mock
servers replay fixed answers, and an actual small model would need weights, a GPU or minutes
per run, and would not be deterministic. The actor is a few hundred lines of rules over the
demo store's data and policy, deterministic per (seed, conversation, turn).
"""

from simulator.actor.engine import Actor
from simulator.actor.tiers import ActorModel, TierError, load_tiers, model_ids, parse_model

__all__ = ["Actor", "ActorModel", "TierError", "load_tiers", "model_ids", "parse_model"]
