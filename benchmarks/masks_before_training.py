r"""Test accuracy of pruned networks *before any weight training*: each cell's ticket (mask) on the
cell's initial weights θ0, read from a finished ``benchmarks/missing_the_mark.py`` directory.

For a learned mask (``edge_popup``, ``gem_miner``) this is the "rare gem" question: does the mask
alone, on frozen random weights, classify? And the sanity checks ask it of the variants: a
shuffled mask keeps each layer's density but not *which* weights, a re-initialized one keeps the
mask but draws new weights, an inverted one keeps the other end of the ranking. A score at
initialization (SynFlow, SNIP, ...) gives chance accuracy here; its masks only matter after
training.

    python benchmarks/masks_before_training.py --out_dir=benchmarks/out/missing_the_mark \
        --labels=gem_miner,gem_miner-shuffle,gem_miner-reinit,gem_miner-invert,synflow --sparsity=0.98
"""
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_string("out_dir", None, "a missing_the_mark.py (or sweep) directory with finished cells.", required=True)
flags.DEFINE_list("labels", ["gem_miner", "gem_miner-shuffle", "gem_miner-reinit", "gem_miner-invert"],
                  "cell labels (<method> or <method>-<variant>).")
flags.DEFINE_float("sparsity", 0.98, "the cells' sparsity.")
flags.DEFINE_list("seeds", ["0", "1"], "seeds.")
flags.DEFINE_string("out", None, "also write the markdown table here (atomically).")
FLAGS = flags.FLAGS


def accuracy_before_training(cell: str) -> float:
    """The cell's ticket on the weights its training started from, evaluated on the test split."""
    import tfprune
    from tfprune import lottery
    from tfprune.experiment import data, models
    from tfprune.experiment.procedures.scorers import accuracy_at_init
    from tfprune.experiment.grid import read_result

    c = read_result(cell)["config"]
    ds = data.load(c["dataset"], max_train=c.get("max_train"), max_test=c.get("max_test"))
    model = models.build(c["model"], ds.input_shape, ds.num_classes, seed=c["seed"])
    pruned = lottery.apply_ticket(model, os.path.join(cell, "ticket.npz"))
    init = os.path.join(cell, "init_weights.npz")
    if os.path.exists(init):  # cells from before init_weights.npz existed pruned the zoo's θ0 (same seed)
        lottery.load_phase_weights(pruned, init)
    kept = sum(int(m.sum()) for m in tfprune.get_masks(pruned).values())
    assert kept == sum(int(m.sum()) for m in lottery.load_ticket(os.path.join(cell, "ticket.npz")).masks.values())
    return accuracy_at_init(pruned, ds)


def main(argv):
    from tfprune.experiment.grid import cell_dir, read_result

    lines = [f"| label | {' | '.join(f'seed {s}' for s in FLAGS.seeds)} | mean | after training (mean) |",
             "|---|" + "---|" * (len(FLAGS.seeds) + 2)]
    for label in FLAGS.labels:
        before, after = [], []
        for seed in FLAGS.seeds:
            cell = cell_dir(FLAGS.out_dir, label, FLAGS.sparsity, int(seed))
            if read_result(cell) is None:
                continue
            before.append(100 * accuracy_before_training(cell))
            after.append(100 * read_result(cell)["test_accuracy"])
        if before:
            cells = " | ".join(f"{b:.2f}" for b in before)
            lines.append(f"| {label} | {cells} | **{sum(before) / len(before):.2f}** | {sum(after) / len(after):.2f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if FLAGS.out:
        from tfprune.io import atomic_write
        atomic_write(FLAGS.out, table)
    return 0


if __name__ == "__main__":
    app.run(main)
