"""Weight-agnostic network search (tfprune.wann) on sklearn digits (8x8) and MNIST-5k at 16x16.

Searches with :func:`tfprune.wann.search`, then reports on the held-out test split the best
network's accuracy at each shared weight (mean +- std over them, the best one) and the ensemble
over them (argmax of the mean softmax), its connections and hidden units and the search's wall
time, next to --baselines random masks with the same number of connections and the same
activations (:func:`tfprune.wann.genome.random_like`) evaluated at the same shared weights, and
(--ticket_epochs) the same network trained as a ticket (its weights trained from the shared
value, the mask held). MNIST is downsampled 28x28 -> 16x16 by area averaging (each output pixel
the overlap-weighted mean of the input pixels it covers; no deskewing, unlike the paper).

Resumable: the search checkpoints every generation under --work_dir (git-ignored), so a run cut
into pieces (--generations raised each time) continues where it stopped; wall time adds up.

    python benchmarks/wann_bench.py --dataset=digits --generations=1200
    python benchmarks/wann_bench.py --dataset=mnist16 --generations=300
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from tfprune import io  # noqa: E402
from tfprune.experiment import data  # noqa: E402
from tfprune import wann  # noqa: E402
from tfprune.wann import evaluate, genome  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", "digits", ["digits", "mnist16"], "digits: sklearn 8x8; mnist16: mnist5k at 16x16.")
flags.DEFINE_integer("population", 128, "Networks per generation.", lower_bound=2)
flags.DEFINE_integer("generations", 1200, "Generations (raise it to continue a finished run).", lower_bound=0)
flags.DEFINE_integer("max_hidden", 64, "Hidden-unit slots per network.", lower_bound=0)
flags.DEFINE_integer("batch_size", 1000, "Training examples drawn per generation (0: all).", lower_bound=0)
flags.DEFINE_enum("fitness", "log_likelihood", ["log_likelihood", "accuracy"], "What the search maximises.")
flags.DEFINE_integer("seed", 0, "Search seed.", lower_bound=0)
flags.DEFINE_integer("baselines", 10, "Random masks drawn for the baseline.", lower_bound=0)
flags.DEFINE_integer("ticket_epochs", 20, "Epochs to train the best network as a ticket (0: skip).", lower_bound=0)
flags.DEFINE_string("work_dir", "benchmarks/out/wann", "Checkpoints (per dataset and seed).")
flags.DEFINE_string("out_dir", "benchmarks/results/wann", "Markdown, csv and png results.")

PAPER = ("paper, MNIST 16x16 (Gaier & Ha 2019)", "82.0 +- 18.7", "91.9", "91.6", "-", "-")


def area_resize(images: np.ndarray, size: int) -> np.ndarray:
    """[N, H, W(, 1)] -> [N, size, size]: each output pixel the overlap-weighted mean of input pixels."""
    images = images.reshape(images.shape[:3])
    def matrix(n):
        edges = np.arange(size + 1) * n / size
        lo, hi = edges[:-1, None], edges[1:, None]
        cols = np.arange(n)[None, :]
        overlap = np.clip(np.minimum(hi, cols + 1) - np.maximum(lo, cols), 0, None)
        return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)
    rows, cols = matrix(images.shape[1]), matrix(images.shape[2])
    return np.einsum("ih,nhw,jw->nij", rows, images, cols)


def load():
    if FLAGS.dataset == "digits":
        x, y, xt, yt, k, _ = data.load_arrays("digits")
    else:
        x, y, xt, yt, k, _ = data.load_arrays("mnist5k")
        x, xt = area_resize(x, 16), area_resize(xt, 16)
    return x.reshape(len(x), -1), y, xt.reshape(len(xt), -1), yt, k


def test_scores(genomes, xt, yt, weights):
    s = evaluate.evaluate(genome.stack(genomes), xt, yt, weights, xt.shape[1], int(yt.max()) + 1, chunk=8)
    return s["accuracy"], s["ensemble"]


def train_ticket(best, x, y, xt, yt, weight):
    import tfprune
    from tfprune._keras import keras

    keras.utils.set_random_seed(FLAGS.seed)
    ticket = wann.build_ticket(best, shared_weight=weight)
    ticket.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                   metrics=["accuracy"])
    ticket.fit(x, y, epochs=FLAGS.ticket_epochs, batch_size=32, verbose=0, callbacks=tfprune.callbacks())
    return float(ticket.evaluate(xt, yt, verbose=0)[1])


def main(argv):
    del argv
    x, y, xt, yt, k = load()
    config = wann.SearchConfig(population=FLAGS.population, generations=FLAGS.generations,
                               max_hidden=FLAGS.max_hidden, batch_size=FLAGS.batch_size, fitness=FLAGS.fitness,
                               seed=FLAGS.seed)
    work = os.path.join(FLAGS.work_dir, f"{FLAGS.dataset}_seed{FLAGS.seed}")
    result = wann.search(x, y, config, directory=work, num_classes=k)
    elapsed = result.seconds  # summed over the pieces of a resumed search
    best, weights = result.best, config.shared_weights
    accuracy, ensemble = test_scores([best], xt, yt, weights)
    rng = np.random.default_rng(FLAGS.seed)
    randoms = [genome.random_like(best, rng) for _ in range(FLAGS.baselines)]
    r_acc, r_ens = test_scores(randoms, xt, yt, weights) if randoms else (np.zeros((0, len(weights))), np.zeros(0))
    best_w = weights[int(np.argmax(accuracy[0]))]
    ticket = train_ticket(best, x, y, xt, yt, best_w) if FLAGS.ticket_epochs else None
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    rows = [("WANN search (this run)", f"{pct(accuracy[0].mean())} +- {pct(accuracy[0].std())}",
             f"{pct(accuracy[0].max())} (w={best_w:g})", pct(ensemble[0]), str(best.n_connections),
             str(best.n_hidden))]
    if randoms:
        rows.append((f"random mask, same connections + activations ({len(randoms)} draws)",
                     f"{pct(r_acc.mean())} +- {pct(r_acc.mean(axis=1).std())}", f"{pct(r_acc.max(axis=1).mean())}",
                     f"{pct(r_ens.mean())} +- {pct(r_ens.std())}", str(best.n_connections), str(best.n_hidden)))
    if FLAGS.dataset == "mnist16":
        rows.append(PAPER)
    name = FLAGS.dataset
    header = ("network", "mean acc % over w (+- std)", "best w acc %", "ensemble acc %", "connections", "hidden")
    lines = [f"### {name}: {len(x)} train / {len(xt)} test, {x.shape[1]} inputs", "",
             f"population {config.population}, {config.generations} generations, batch {config.batch_size}, "
             f"max_hidden {config.max_hidden}, fitness {config.fitness}, seed {config.seed}, shared weights "
             f"{list(weights)}; search wall time {elapsed:.0f} s (this machine, 2 shared cores)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "accuracy per shared weight (test): " + ", ".join(f"w={w:g}: {pct(a)}" for w, a in
                                                                   zip(weights, accuracy[0]))]
    lines += [f"activations of the hidden units: {', '.join(best.activation_names()) or 'none'}"]
    if ticket is not None:
        lines += [f"the same mask trained as a ticket from w={best_w:g} ({FLAGS.ticket_epochs} epochs, Adam 1e-3): "
                  f"{pct(ticket)}% test accuracy"]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    io.atomic_write(os.path.join(FLAGS.out_dir, f"{name}.md"), text)
    csv = ["network,shared_weight,accuracy"] + [f"wann,{w:g},{a:.4f}" for w, a in zip(weights, accuracy[0])]
    csv += [f"wann,ensemble,{ensemble[0]:.4f}"]
    csv += [f"random{i},{w:g},{a:.4f}" for i, row in enumerate(r_acc) for w, a in zip(weights, row)]
    csv += [f"random{i},ensemble,{e:.4f}" for i, e in enumerate(r_ens)]
    io.atomic_write(os.path.join(FLAGS.out_dir, f"{name}.csv"), "\n".join(csv) + "\n")
    io.save_npz_atomic(os.path.join(FLAGS.out_dir, f"{name}_best.npz"), genome.stack([best]), compressed=True)
    wann.plot_pareto(result.history, os.path.join(FLAGS.out_dir, f"{name}_pareto.png"), title=f"WANN on {name}")
    wann.draw_network(best, os.path.join(FLAGS.out_dir, f"{name}_network.png"))


if __name__ == "__main__":
    app.run(main)
