"""Ticket transfer: save a mask set with its architecture, apply it to a fresh model."""
import numpy as np
import pytest
import tf_keras as keras

import tfprune
from tfprune import lottery
from tfprune.spec import TrainingSpec


def build(width=12, names=("h", "out")):
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(width, activation="relu", name=names[0]),
                             keras.layers.Dense(3, name=names[1])])


def some_masks(seed=0):
    rng = np.random.default_rng(seed)
    return {"h": (rng.random((5, 12)) < 0.4).astype(np.float32), "out": (rng.random((12, 3)) < 0.7).astype(np.float32)}


def test_save_load_roundtrip(tmp_path):
    model = build()
    masks = some_masks()
    path = lottery.save_ticket(tmp_path / "t" / "ticket.npz", masks, model, info={"dataset": "A"})
    ticket = lottery.load_ticket(path)
    assert list(ticket.masks) == ["h", "out"]
    assert all(np.array_equal(ticket.masks[n], masks[n]) for n in masks)
    assert [row["shape"] for row in ticket.layers] == [[5, 12], [12, 3]]
    assert ticket.info == {"dataset": "A"}
    assert ticket.sparsity == pytest.approx(1 - sum(m.sum() for m in masks.values()) / 96)


def test_apply_to_a_fresh_model_and_train_on_another_dataset(tmp_path):
    masks = some_masks()
    path = lottery.save_ticket(tmp_path / "ticket.npz", masks, build())
    keras.utils.set_random_seed(5)
    fresh = build()
    theta = fresh.layers[0].kernel.numpy().copy()
    pruned = lottery.apply_ticket(fresh, path)
    assert all(np.array_equal(tfprune.get_masks(pruned)[n], masks[n]) for n in masks)
    kernel = pruned.layers[0].layer.kernel.numpy()
    assert np.array_equal(kernel, np.where(masks["h"] == 1, theta, 0))  # fresh init, masked
    rng = np.random.default_rng(1)  # "another dataset"
    x, y = rng.normal(size=(64, 5)).astype("float32"), rng.integers(0, 3, 64)
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=tfprune.callbacks())
    plain = tfprune.strip(pruned)
    assert all(np.array_equal((plain.get_layer(n).kernel.numpy() != 0), masks[n] == 1) for n in masks)


def test_a_lottery_level_mask_is_a_ticket(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5)).astype("float32"), rng.integers(0, 3, 64)
    training = TrainingSpec(steps=2, batch_size=16, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                            seed=0)
    lt = lottery.LotteryTicket(build, (x, y), None, run_dir=str(tmp_path / "run"), levels=1, training=training)
    lt.run()
    pruned = lottery.apply_ticket(build(), lt.ticket_path(1))
    assert all(np.array_equal(tfprune.get_masks(pruned)[n], lt.masks(1)[n]) for n in ("h", "out"))


def test_mismatch_lists_every_difference(tmp_path):
    path = lottery.save_ticket(tmp_path / "ticket.npz", some_masks(), build())
    with pytest.raises(lottery.TicketMismatchError) as info:
        lottery.apply_ticket(build(width=16, names=("h", "logits")), path)
    message = str(info.value)
    assert "layers in the ticket but not in the model: ['out']" in message
    assert "prunable layers in the model but not in the ticket: ['logits']" in message
    assert "layer 'h': ticket Dense (5, 12) vs model Dense (5, 16)" in message
    # only the names differ: by name it fails, by order it applies
    renamed = build(names=("dense_a", "dense_b"))
    with pytest.raises(lottery.TicketMismatchError, match="match='order'"):
        lottery.apply_ticket(renamed, path)
    pruned = lottery.apply_ticket(renamed, path, match="order")
    assert np.array_equal(tfprune.get_masks(pruned)["dense_a"], some_masks()["h"])
    with pytest.raises(lottery.TicketMismatchError, match=r"prunable layer #0: ticket 'h' Dense \(5, 12\) vs model"):
        lottery.apply_ticket(build(width=16, names=("a", "b")), path, match="order")


def test_bad_ticket_files(tmp_path):
    np.savez(tmp_path / "plain.npz", h=np.ones((5, 12)))
    with pytest.raises(ValueError, match="is not a tfprune ticket"):
        lottery.load_ticket(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError, match="ticket: no file"):
        lottery.load_ticket(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match=r"mask shape \(5, 11\) != kernel shape \(5, 12\)"):
        lottery.save_ticket(tmp_path / "x.npz", {"h": np.ones((5, 11))}, build())
    with pytest.raises(ValueError, match="match: got 'shape'"):
        lottery.apply_ticket(build(), lottery.save_ticket(tmp_path / "ok.npz", some_masks(), build()), match="shape")


def test_ticket_for_a_model_with_an_extra_layer_names_path_layer_and_model_layers(tmp_path):
    def with_extra():
        return keras.Sequential([keras.Input((5,)), keras.layers.Dense(12, activation="relu", name="h"),
                                 keras.layers.Dense(7, activation="relu", name="extra"),
                                 keras.layers.Dense(3, name="out")])

    path = lottery.save_ticket(tmp_path / "ticket.npz", {}, with_extra())
    for match in ("name", "order"):
        with pytest.raises(lottery.TicketMismatchError) as info:
            lottery.apply_ticket(build(), path, match=match)
        message = str(info.value)
        assert str(path) in message and "'extra'" in message and "['h', 'out']" in message and "\n" not in message


def test_ticket_file_listing_a_layer_without_a_mask_is_a_clear_error(tmp_path):
    """A ticket whose layer table lists a layer the file holds no mask for (today a bare KeyError)."""
    import json

    path = lottery.save_ticket(tmp_path / "ticket.npz", some_masks(), build())
    arrays = dict(np.load(path))
    meta = json.loads(arrays["__tfprune_ticket__"].tobytes().decode())
    meta["layers"].insert(1, {"name": "extra", "class": "Dense", "shape": [12, 7]})
    arrays["__tfprune_ticket__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    arrays.pop("__tfprune_sha256__", None)  # an edited file that no longer carries a checksum
    np.savez(tmp_path / "edited.npz", **arrays)
    with pytest.raises(ValueError) as info:
        lottery.apply_ticket(build(), tmp_path / "edited.npz")
    message = str(info.value)
    assert not isinstance(info.value, KeyError)
    assert str(tmp_path / "edited.npz") in message and "['extra']" in message and "['h', 'out']" in message
