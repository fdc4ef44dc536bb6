"""vqlearn.diagram: the architecture graph comes from a real forward pass, with the true data flow."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import torch
import torch.nn as nn

from vqlearn.diagram import architecture_graph, draw_architecture
from vqlearn.models.vqvae import VQVAE
from vqlearn.models.vqvae2 import VQVAE2


def test_vqvae_is_a_chain_with_the_forward_pass_shapes():
    model = VQVAE(dim=16, num_codes=8)
    nodes = architecture_graph(model, torch.randn(2, 1, 28, 28), depth=2)
    names = [n.name for n in nodes]
    assert names == ["input"] + [f"encoder.{i}" for i in range(6)] + ["quantize"] + [f"decoder.{i}" for i in range(8)]
    assert all(n.inputs == [i - 1] for i, n in enumerate(nodes) if i)  # each layer reads the previous one
    by_name = {n.name: n for n in nodes}
    assert by_name["encoder.3"].shape == (2, 16, 7, 7)
    assert by_name["quantize"].codes_shape == (2, 7, 7) and by_name["quantize"].kind == "VectorQuantizer"
    assert by_name["decoder.7"].shape == (2, 1, 28, 28)
    # depth 1: the Sequentials themselves
    assert [n.name for n in architecture_graph(model, torch.randn(2, 1, 28, 28), depth=1)] == [
        "input", "encoder", "quantize", "decoder"]


def test_vqvae2_shows_both_paths_and_leaves_the_model_untouched():
    model = VQVAE2(channel=16, n_res_channel=8, embed_dim=8, num_codes=16).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    nodes = architecture_graph(model, torch.randn(1, 3, 32, 32), depth=1)
    index = {n.name: i for i, n in enumerate(nodes)}
    inputs = {n.name: sorted(nodes[i].name for i in n.inputs) for n in nodes}
    assert inputs["enc_t"] == ["enc_b"]
    assert inputs["quantize_conv_b"] == ["dec_t", "enc_b"]  # the concatenation: top decoding + bottom features
    assert inputs["upsample_t"] == ["quantize_t"]
    assert inputs["dec"] == ["quantize_b", "upsample_t"]
    assert nodes[index["quantize_t"]].codes_shape == (1, 4, 4)
    assert nodes[index["quantize_b"]].codes_shape == (1, 8, 8)
    assert model.training  # training mode restored, EMA buffers and BatchNorm stats untouched
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_identity_layers_keep_the_chain():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Identity(), nn.ReLU())
    nodes = architecture_graph(model, torch.randn(1, 1, 4, 4), depth=1)
    assert [(n.name, n.inputs) for n in nodes] == [("input", []), ("0", [0]), ("1", [1]), ("2", [2])]


def test_draw_returns_labelled_axes():
    fig, ax = plt.subplots()
    out = draw_architecture(VQVAE(dim=8, num_codes=4), torch.randn(1, 1, 8, 8), ax=ax, depth=2, title="t")
    assert out is ax and ax.get_title() == "t"
    texts = [t.get_text() for t in ax.texts]
    assert "quantize: VectorQuantizer" in texts and "codes (1, 2, 2)" in texts
    assert "-> (1, 8, 4, 4)" in texts
    plt.close(fig)
