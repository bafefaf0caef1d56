"""The search: evolve masks and activations of weight-agnostic networks (Gaier & Ha 2019).

Each generation: draw ``batch_size`` training examples (the reference implementation's 1,000),
evaluate every network at every shared weight in one batched computation
(:mod:`tfprune.wann.evaluate`), rank the population on two objectives drawn for this generation
(:func:`tfprune.wann.ranking.wann_objectives`), drop the worst ``cull_ratio``, keep the best
``elite_ratio`` of the rest unchanged, and fill the population with children of tournament
winners (``tournament`` contestants drawn from the kept ones, the best-ranked wins), each with
exactly one mutation (:mod:`tfprune.wann.mutation`). No crossover (the reference's
``prob_crossover`` is 0). The search starts from minimal networks (:func:`tfprune.wann.genome.minimal`).

With ``directory``, the state after every generation (population, random state, history) is
written atomically to ``directory/checkpoint.npz``; a later call with the same configuration and
data resumes there (``generations`` may be raised to continue a finished search) and gives
bit-identical results; another configuration or other data is refused with one line.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from typing import Optional, Tuple

import numpy as np

from tfprune import checks, io
from tfprune.wann import activations, evaluate, genome, mutation, ranking

CHECKPOINT = "checkpoint.npz"
_HISTORY = ("mean_fitness", "max_fitness", "mean_accuracy", "connections")


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Settings of :func:`search` (defaults: the WANN reference's, except population and length)."""

    population: int = 128
    generations: int = 64
    shared_weights: Tuple[float, ...] = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)
    activations: Tuple[str, ...] = activations.ACTIVATIONS
    output_activation: str = "linear"
    max_hidden: int = 64
    init_density: float = 0.5
    p_change_activation: float = 0.5
    p_insert_node: float = 0.25
    p_add_connection: float = 0.25
    p_connections: float = 0.8
    cull_ratio: float = 0.2
    elite_ratio: float = 0.2
    tournament: int = 8
    batch_size: int = 1000
    fitness: str = "log_likelihood"
    seed: int = 0
    chunk: int = 32

    def __post_init__(self):
        checks.integer(self.population, "population", 2)
        checks.integer(self.generations, "generations", 0)
        checks.integer(self.max_hidden, "max_hidden", 0)
        checks.integer(self.tournament, "tournament", 1)
        checks.integer(self.batch_size, "batch_size", 0)
        checks.integer(self.chunk, "chunk", 0)
        checks.integer(self.seed, "seed", 0)
        checks.fraction(self.init_density, "init_density", closed_low=False, closed_high=True)
        for name in ("p_connections", "cull_ratio", "elite_ratio"):
            checks.fraction(getattr(self, name), name, closed_high=True)
        for name in ("p_change_activation", "p_insert_node", "p_add_connection"):
            checks.nonnegative_number(getattr(self, name), name)
        checks.choice(self.fitness, "fitness", ("log_likelihood", "accuracy"))
        if not self.shared_weights or not all(np.isfinite(float(w)) and w != 0 for w in self.shared_weights):
            raise ValueError(f"shared_weights: got {self.shared_weights!r}; allowed: finite nonzero numbers.")
        if not self.activations or len(set(self.activations)) != len(self.activations):
            raise ValueError(f"activations: got {self.activations!r}; allowed: distinct names from {activations.ACTIVATIONS}.")
        for name in self.activations + (self.output_activation,):
            activations.index(name)
        object.__setattr__(self, "shared_weights", tuple(float(w) for w in self.shared_weights))
        object.__setattr__(self, "activations", tuple(self.activations))

    def key(self) -> dict:
        """What a checkpoint must match to be resumed (everything but ``generations`` and ``chunk``)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("generations", "chunk")}


@dataclasses.dataclass
class SearchResult:
    best: genome.Genome            # best mean fitness over the shared weights on all of x (ties: fewer connections)
    population: "list[genome.Genome]"
    history: "dict[str, np.ndarray]"  # per generation x network: mean/max fitness, mean accuracy, connections
    scores: "dict[str, np.ndarray]"   # the final population on all of x (evaluate.evaluate)
    seconds: float                     # wall time of the search, summed over the calls that made it


def _digest(x: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in (x, y):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _reproduce(population, order, rng, config, choices):
    keep = order[:len(order) - int(np.floor(config.cull_ratio * len(order)))]
    children = [population[i] for i in keep[:int(np.floor(config.elite_ratio * len(keep)))]]
    probabilities = {"change_activation": config.p_change_activation, "insert_node": config.p_insert_node,
                     "add_connection": config.p_add_connection}
    while len(children) < len(population):
        parent = keep[int(rng.integers(len(keep), size=config.tournament).min())]
        children.append(mutation.mutate(population[parent], rng, choices, probabilities)[0])
    return children


def _load(path, config, data) -> dict:
    arrays = io.load_npz(path)
    meta = json.loads(str(arrays["meta"]))
    if meta["data"] != data:
        raise ValueError(f"{path}: written by a search on other data; allowed: the same x and y, or another directory.")
    if meta["key"] != io.to_jsonable(config.key()):
        differ = sorted(k for k in config.key() if meta["key"].get(k) != io.to_jsonable(config.key()[k]))
        raise ValueError(f"{path}: written by another search configuration (differs in {', '.join(differ)}); "
                         "allowed: the same configuration (only generations may change), or another directory.")
    return {"meta": meta, "arrays": arrays}


def search(x, y, config: Optional[SearchConfig] = None, directory: Optional[str] = None, progress: bool = True,
           num_classes: Optional[int] = None) -> SearchResult:
    """Searches weight-agnostic networks classifying ``x`` [N, ...] into labels ``y`` [N].

    Example:
        >>> x = np.random.default_rng(0).random((64, 4), np.float32); y = (x[:, 0] > 0.5).astype(int)
        >>> result = search(x, y, SearchConfig(population=8, generations=2, batch_size=0), progress=False)
        >>> result.best.n_inputs, result.best.n_outputs, result.history["connections"].shape
        (4, 2, (2, 8))
    """
    config = config or SearchConfig()
    started = time.perf_counter()
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    y = np.asarray(y).astype(np.int64)
    if len(x) != len(y) or not len(x) or y.min() < 0:
        raise ValueError(f"x, y: got {len(x)} and {len(y)} examples (labels from {y.min(initial=0)}); allowed: as many "
                         "labels as examples, at least one, labels >= 0.")
    n_inputs, n_outputs = x.shape[1], int(num_classes or y.max() + 1)
    choices = np.array([activations.index(a) for a in config.activations], np.int8)
    rng = np.random.default_rng(config.seed)
    path = os.path.join(directory, CHECKPOINT) if directory else None
    data = _digest(x, y)
    history = {name: np.zeros((0, config.population)) for name in _HISTORY}
    start, before = 0, 0.0
    if path and os.path.exists(path):
        state = _load(path, config, data)
        start, before = int(state["meta"]["generation"]), float(state["meta"].get("seconds", 0.0))
        rng.bit_generator.state = state["meta"]["rng"]
        population = genome.unstack(state["arrays"], n_inputs, n_outputs)
        history = {name: state["arrays"][name] for name in _HISTORY}
    else:
        population = [genome.minimal(n_inputs, n_outputs, config.max_hidden, rng, config.init_density,
                                     config.output_activation) for _ in range(config.population)]
    bar = _progress_bar(start, config.generations, progress)
    for generation in range(start, config.generations):
        batch = (np.sort(rng.choice(len(x), config.batch_size, replace=False))
                 if 0 < config.batch_size < len(x) else np.arange(len(x)))
        stacked = genome.stack(population)
        s = evaluate.evaluate(stacked, x[batch], y[batch], config.shared_weights, n_inputs, n_outputs, config.chunk,
                              ensemble=False)
        fitness = s[config.fitness]
        connections = stacked["conn"].sum(axis=(1, 2))
        row = {"mean_fitness": fitness.mean(axis=1), "max_fitness": fitness.max(axis=1),
               "mean_accuracy": s["accuracy"].mean(axis=1), "connections": connections}
        history = {name: np.concatenate([history[name], row[name][None].astype(np.float64)]) for name in _HISTORY}
        objectives = ranking.wann_objectives(row["mean_fitness"], row["max_fitness"], connections, rng,
                                             config.p_connections)
        population = _reproduce(population, ranking.rank(objectives), rng, config, choices)
        if path:
            meta = {"generation": generation + 1, "key": config.key(), "data": data, "rng": rng.bit_generator.state,
                    "seconds": before + time.perf_counter() - started}
            io.save_npz_atomic(path, dict(genome.stack(population), meta=np.array(json.dumps(io.to_jsonable(meta))),
                                          **history), compressed=True, checksum=True)
        best = int(np.argmax(row["mean_fitness"]))
        bar.set_postfix(mean_acc=f"{row['mean_accuracy'][best]:.3f}", conns=int(connections[best]))
        bar.update(1)
    bar.close()
    stacked = genome.stack(population)
    s = evaluate.evaluate(stacked, x, y, config.shared_weights, n_inputs, n_outputs, config.chunk)
    mean = s[config.fitness].mean(axis=1)
    connections = stacked["conn"].sum(axis=(1, 2))
    best = int(np.lexsort((np.arange(len(mean)), connections, -mean))[0])
    return SearchResult(population[best], population, history, s, before + time.perf_counter() - started)


def _progress_bar(start: int, total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc="wann", unit="gen", disable=not enabled, dynamic_ncols=True)
