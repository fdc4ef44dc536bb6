"""The quantizers after VQ-GAN -- the rotation trick, FSQ, LFQ, residual VQ -- against their formulas
written out independently here (values, codes and gradients), then in the models, the config, the
trainer, evaluation and checkpoints. A last group compares with vector-quantize-pytorch when it is
installed (it is optional and never a dependency of vqlearn)."""

import itertools
import math

import pytest
import torch

from vqlearn.build import build_model, load_model
from vqlearn.codebook import init_codebook_from_data
from vqlearn.errors import ConfigError
from vqlearn.evaluate import evaluate_model
from vqlearn.quantize import EMAVectorQuantizer, VectorQuantizer, estimator_gradient, rotation_trick, straight_through
from vqlearn.quantizers import make_quantizer
from vqlearn.residual_quantize import ResidualVQ
from vqlearn.scalar_quantize import FSQ, FSQ_LEVELS, LFQ
from vqlearn.train import load_config, train

# ---------------------------------------------------------------------------
# The rotation trick (Fifty et al. 2025, sec. 4.2)
# ---------------------------------------------------------------------------


def rotation_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The rotation in the plane of ``a`` and ``b`` (``(D,)`` each) that takes ``a/|a|`` onto ``b/|b|`` and leaves
    the orthogonal complement alone, built from the angle (Rodrigues), not from Householder reflections."""
    u = a / a.norm()
    q = b / b.norm()
    cos = torch.dot(u, q).clamp(-1, 1)
    v = q - cos * u
    v = v / v.norm()
    sin = torch.sqrt(1 - cos**2)
    eye = torch.eye(len(a), dtype=a.dtype)
    return eye + sin * (torch.outer(v, u) - torch.outer(u, v)) + (cos - 1) * (torch.outer(u, u) + torch.outer(v, v))


def expected_rotation_gradient(z: torch.Tensor, z_q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Row by row: ``lambda R^T g`` with ``R`` from :func:`rotation_matrix` and ``lambda = |z_q| / |z|``."""
    rows = []
    for a, b, grad in zip(z.double(), z_q.double(), g.double()):
        rotation = rotation_matrix(a, b)
        assert torch.allclose(rotation @ (a / a.norm()), b / b.norm(), atol=1e-10)  # it does take u onto q
        assert torch.allclose(rotation.T @ rotation, torch.eye(len(a), dtype=a.dtype), atol=1e-10)  # a rotation
        rows.append(b.norm() / a.norm() * rotation.T @ grad)
    return torch.stack(rows).float()


def test_rotation_trick_value_is_the_code_and_gradient_is_the_rotated_one():
    torch.manual_seed(0)
    z, z_q, g = torch.randn(6, 5), torch.randn(6, 5), torch.randn(6, 5)
    assert torch.equal(rotation_trick(z, z_q), z_q)  # the forward value, exactly
    rotated = estimator_gradient(rotation_trick, z, z_q, g)
    assert torch.allclose(rotated, expected_rotation_gradient(z, z_q, g), atol=1e-5)
    assert torch.equal(estimator_gradient(straight_through, z, z_q, g), g)  # the STE copies the gradient
    # the norm is scaled by |z_q| / |z| and the direction turned: not the STE's
    assert torch.allclose(rotated.norm(dim=1), z_q.norm(dim=1) / z.norm(dim=1) * g.norm(dim=1), rtol=1e-5)
    assert not torch.allclose(rotated, g, atol=1e-2)


def test_rotation_trick_pushes_the_two_sides_of_a_code_differently():
    """The paper's fig. 3 in 2-D: two encoder outputs on either side of the code get the same STE gradient
    but mirror-image rotation-trick gradients."""
    code = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    z = torch.tensor([[1.0, 0.5], [1.0, -0.5]])
    g = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # the decoder wants the code pushed along x, for both
    ste = estimator_gradient(straight_through, z, code, g)
    rot = estimator_gradient(rotation_trick, z, code, g)
    assert torch.equal(ste[0], ste[1])
    assert rot[0, 1] > 0.1 and rot[1, 1] < -0.1 and torch.allclose(rot[0, 0], rot[1, 0])
    assert torch.allclose(rot, expected_rotation_gradient(z, code, g), atol=1e-6)


@pytest.mark.parametrize("kind", ["vq", "ema"])
def test_codebooks_with_the_rotation_trick(kind):
    """Same codes, values and loss as without the option; the encoder's gradient is lambda R^T g per position."""
    torch.manual_seed(1)
    plain = make_quantizer(kind, 16, 4)
    rotated = make_quantizer(kind, 16, 4, rotation_trick=True)
    rotated.load_state_dict(plain.state_dict())
    plain.eval(), rotated.eval()  # no EMA update, so both see the same codebook
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    g = torch.randn(2, 4, 3, 3)
    a, b = plain(z), rotated(z)
    assert torch.equal(a.indices, b.indices) and torch.allclose(a.loss, b.loss)
    assert torch.allclose(a.z_q, b.z_q, atol=1e-6)
    (grad,) = torch.autograd.grad(b.z_q, z, g)
    flat = lambda t: t.permute(0, 2, 3, 1).reshape(-1, 4)  # noqa: E731
    code = plain.codebook[b.indices.reshape(-1)].detach()
    assert torch.allclose(flat(grad), expected_rotation_gradient(flat(z.detach()), code, flat(g)), atol=1e-5)
    (ste_grad,) = torch.autograd.grad(a.z_q, z, g)
    assert torch.allclose(ste_grad, g)


def test_rotation_trick_is_an_option_of_both_codebooks_only():
    assert VectorQuantizer(8, 4, rotation_trick=True).rotation_trick
    assert EMAVectorQuantizer(8, 4, rotation_trick=True).rotation_trick
    assert not VectorQuantizer(8, 4).rotation_trick
    with pytest.raises(ValueError, match="rotation_trick"):
        make_quantizer("fsq", 1024, 4, rotation_trick=True)


# ---------------------------------------------------------------------------
# FSQ (Mentzer et al. 2024, appendix A.1)
# ---------------------------------------------------------------------------


def fsq_by_hand(value: float, level: int, eps: float = 1e-3) -> tuple[float, int, float]:
    """One channel: ``(z_hat, digit k in [0, L), d z_hat / d z)`` with the paper's formulas, in float64."""
    half_l = (level - 1) * (1 - eps) / 2
    offset = 0.0 if level % 2 else 0.5
    shift = math.tan(offset / half_l)
    bounded = math.tanh(value + shift) * half_l - offset
    half_width = level // 2
    rounded = round(bounded)
    derivative = (1 - math.tanh(value + shift) ** 2) * half_l / half_width
    return rounded / half_width, rounded + half_width, derivative


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [7, 2, 4], [3]])
def test_fsq_values_codes_and_gradient_by_hand(levels):
    torch.manual_seed(2)
    fsq = FSQ(levels)
    z = (torch.randn(3, len(levels), 4, 5) * 2).requires_grad_(True)
    out = fsq(z)
    g = torch.randn_like(z)
    (grad,) = torch.autograd.grad(out.z_q, z, g)
    z, values = z.detach(), out.z_q.detach()
    for b, y, x in itertools.product(range(3), range(4), range(5)):
        index, radix = 0, 1
        for c, level in enumerate(levels):
            value, digit, derivative = fsq_by_hand(float(z[b, c, y, x]), level)
            assert abs(float(values[b, c, y, x]) - value) < 1e-6
            assert abs(float(grad[b, c, y, x]) - derivative * float(g[b, c, y, x])) < 1e-4  # round's STE
            index += digit * radix  # mixed radix, first channel least significant
            radix *= level
        assert int(out.indices[b, y, x]) == index
    assert float(out.loss) == 0.0
    assert torch.equal(fsq.lookup(out.indices), out.z_q.detach())


def test_fsq_codebook_is_the_mixed_radix_count():
    """Index i is the grid point whose digits count i with the first channel fastest."""
    levels = [4, 3, 5]
    fsq = FSQ(levels)
    half = [level // 2 for level in levels]
    # itertools.product varies the LAST factor fastest, so count over reversed levels
    expected = [[(digit - h) / h for digit, h in zip(reversed(digits), half)]
                for digits in itertools.product(*(range(level) for level in reversed(levels)))]
    assert torch.allclose(fsq.codebook, torch.tensor(expected))
    assert fsq.num_codes == fsq.num_indices == 60
    assert torch.equal(fsq.codes_to_indices(fsq.codebook), torch.arange(60))


@pytest.mark.parametrize("level", [2, 3, 4, 5, 8])
def test_fsq_grid_reaches_the_levels_in_minus_one_to_one(level):
    fsq = FSQ([level])
    values = fsq(torch.linspace(-20, 20, 2001).view(1, 1, 1, -1)).z_q.unique()
    half = level // 2
    expected = torch.arange(level, dtype=torch.float32) - half  # odd: -h..h; even: -h..h-1
    assert torch.allclose(values, expected / half)
    assert float(values.min()) == -1.0 and float(values.max()) <= 1.0


def test_fsq_projects_when_the_channels_differ_and_defaults_to_the_papers_levels():
    fsq = make_quantizer("fsq", 1024, 16)
    assert fsq.levels == [8, 5, 5, 5] == list(FSQ_LEVELS[2**10]) and fsq.num_codes == 1000
    assert isinstance(fsq.project_in, torch.nn.Conv2d) and fsq.project_in.out_channels == 4
    out = fsq(torch.randn(2, 16, 3, 3))
    assert out.z_q.shape == (2, 16, 3, 3) and out.indices.shape == (2, 3, 3)
    assert torch.allclose(fsq.lookup(out.indices), out.z_q, atol=1e-6)
    assert isinstance(make_quantizer("fsq", 0, 4, levels=[8, 5, 5, 5]).project_in, torch.nn.Identity)
    with pytest.raises(ValueError, match="levels"):
        make_quantizer("fsq", 512, 4)  # no recommended levels for 512
    with pytest.raises(ValueError, match="levels"):
        FSQ([8, 1])
    with pytest.raises(ValueError, match=r"\(B, 4, h, w\)"):
        FSQ([8, 5, 5, 5])(torch.randn(2, 3, 4, 4))


# ---------------------------------------------------------------------------
# LFQ (MAGVIT-v2, Yu et al. 2024, sec. 3.1)
# ---------------------------------------------------------------------------


def entropy_by_hand(z: torch.Tensor, temperature: float) -> tuple[float, float]:
    """Per-sample and batch entropy over every sign pattern, the codes enumerated in index order (MSB first)."""
    bits = z.shape[1]
    codes = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=bits)), dtype=torch.float64)
    per_sample, average = 0.0, torch.zeros(len(codes), dtype=torch.float64)
    for row in z.double():
        logits = -((row - codes) ** 2).sum(1) / temperature
        probs = torch.exp(logits - logits.max())
        probs = probs / probs.sum()
        per_sample -= float(sum(p * math.log(p) for p in probs.tolist() if p > 0))
        average += probs
    average /= len(z)
    batch = -float(sum(p * math.log(p) for p in average.tolist() if p > 0))
    return per_sample / len(z), batch


def test_lfq_signs_bits_and_straight_through_gradient():
    torch.manual_seed(3)
    lfq = LFQ(5)
    z = torch.randn(2, 5, 3, 4, requires_grad=True)
    out = lfq(z)
    assert torch.equal(out.z_q.detach(), torch.where(z > 0, 1.0, -1.0))
    for b, y, x in itertools.product(range(2), range(3), range(4)):
        bits = "".join("1" if float(z[b, c, y, x]) > 0 else "0" for c in range(5))  # first channel first
        assert int(out.indices[b, y, x]) == int(bits, 2)  # ... as the most significant bit
    g = torch.randn_like(z)
    (grad,) = torch.autograd.grad(out.z_q, z, g)
    assert torch.equal(grad, g)
    assert torch.equal(lfq.lookup(out.indices), out.z_q.detach())
    assert torch.equal(lfq.codebook[out.indices[0, 0, 0]], out.z_q[0, :, 0, 0].detach())


def test_lfq_entropy_penalty_and_loss_by_hand():
    torch.manual_seed(4)
    lfq = LFQ(4, beta=0.25, entropy_weight=0.1, entropy_temperature=0.5)
    z = torch.randn(3, 4, 2, 2) * 0.7
    per_sample, batch = lfq.entropy_terms(z.permute(0, 2, 3, 1).reshape(-1, 4))
    hand_per_sample, hand_batch = entropy_by_hand(z.permute(0, 2, 3, 1).reshape(-1, 4), 0.5)
    assert abs(float(per_sample) - hand_per_sample) < 1e-5 and abs(float(batch) - hand_batch) < 1e-5
    commitment = float(((z - torch.where(z > 0, 1.0, -1.0)) ** 2).mean())
    expected = 0.1 * (hand_per_sample - hand_batch) + 0.25 * commitment
    assert abs(float(lfq(z).loss) - expected) < 1e-5
    # The entropy terms pull the right way: the penalty's gradient is that of the formula, computed by autograd
    # through a float64 re-implementation (torch, but a different path: explicit softmax and logs).
    zz = z.permute(0, 2, 3, 1).reshape(-1, 4).double().requires_grad_(True)
    codes = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=4)), dtype=torch.float64)
    probs = torch.softmax(-((zz[:, None] - codes) ** 2).sum(-1) / 0.5, dim=1)
    reference = -(probs * probs.log()).sum(1).mean() + (probs.mean(0) * probs.mean(0).log()).sum()
    (expected_grad,) = torch.autograd.grad(reference, zz)
    z32 = z.permute(0, 2, 3, 1).reshape(-1, 4).clone().requires_grad_(True)
    ps, be = lfq.entropy_terms(z32)
    (grad,) = torch.autograd.grad(ps - be, z32)
    assert torch.allclose(grad.double(), expected_grad, atol=1e-5)


def test_lfq_entropy_extremes():
    """One confident code for every vector: per-sample entropy ~0 and batch entropy 0; all codes equally
    often and confidently: batch entropy log(2^bits)."""
    lfq = LFQ(3, entropy_temperature=0.01)
    same = torch.full((8, 3), 2.0)
    per_sample, batch = lfq.entropy_terms(same)
    assert float(per_sample) < 1e-6 and float(batch) < 1e-6
    per_sample, batch = lfq.entropy_terms(lfq.codebook * 2)
    assert float(per_sample) < 1e-6 and abs(float(batch) - math.log(8)) < 1e-5


def test_lfq_codes_from_num_codes_and_projections():
    lfq = make_quantizer("lfq", 1024, 16)
    assert lfq.bits == 10 and lfq.num_indices == 1024 and lfq.project_in.out_channels == 10
    out = lfq(torch.randn(2, 16, 3, 3))
    assert out.z_q.shape == (2, 16, 3, 3) and int(out.indices.max()) < 1024
    with pytest.raises(ValueError, match="power of 2"):
        make_quantizer("lfq", 1000, 16)


# ---------------------------------------------------------------------------
# Residual VQ (SoundStream sec. 3.3, RQ-VAE sec. 3.1)
# ---------------------------------------------------------------------------


def test_residual_vq_chain_output_and_losses_by_hand():
    torch.manual_seed(5)
    rvq = ResidualVQ(8, 3, depth=3, beta=0.25)
    for level in rvq.quantizers:  # codes of a useful scale, so every level has something to do
        level.embedding.weight.data.normal_()
    z = torch.randn(2, 3, 2, 2, requires_grad=True)
    out = rvq(z)
    assert out.indices.shape == (2, 3, 2, 2) and out.perplexity.shape == (3,)
    residual = z.detach().permute(0, 2, 3, 1).reshape(-1, 3)
    total, loss = torch.zeros_like(residual), 0.0
    for i, level in enumerate(rvq.quantizers):
        codebook = level.embedding.weight.detach()
        nearest = torch.cdist(residual, codebook).argmin(1)  # the residual chain, brute force
        assert torch.equal(out.indices[:, i].reshape(-1), nearest)
        chosen = codebook[nearest]
        loss += 1.25 * float(((residual - chosen) ** 2).mean())  # (1 + beta) * mse, each level on its residual
        total += chosen
        residual = residual - chosen
    assert torch.allclose(out.z_q.detach().permute(0, 2, 3, 1).reshape(-1, 3), total, atol=1e-6)  # sum of codes
    assert abs(float(out.loss) - loss) < 1e-5
    assert torch.allclose(rvq.lookup(out.indices), out.z_q.detach(), atol=1e-6)
    g = torch.randn_like(z)
    (grad,) = torch.autograd.grad(out.z_q, z, g)
    assert torch.equal(grad, g)  # straight through the sum, once


def test_residual_vq_levels_lower_the_error_and_lookup_takes_fewer_levels():
    torch.manual_seed(6)
    z = torch.randn(4, 4, 4, 4)
    rvq = ResidualVQ(16, 4, depth=4)
    for level in rvq.quantizers:
        init_codebook_from_data(level, z, method="kmeans", generator=torch.Generator().manual_seed(0))
        z = z - level.lookup(level(z).indices)  # the next level starts from this one's residual
    z = torch.randn(4, 4, 4, 4, generator=torch.Generator().manual_seed(6))
    codes = rvq(z).indices
    errors = [float(((rvq.lookup(codes[:, :n]) - z) ** 2).mean()) for n in range(1, 5)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    with pytest.raises(ValueError, match="1 <= n <= depth=4"):
        rvq.lookup(codes[:, :0])


def test_residual_vq_quantizer_dropout():
    torch.manual_seed(7)
    rvq = ResidualVQ(8, 3, depth=4, quantizer_dropout=True)
    for level in rvq.quantizers:
        level.embedding.weight.data.normal_()
    z = torch.randn(2, 3, 2, 2, requires_grad=True)
    rvq.eval()
    full = rvq(z)
    rvq.train()
    used = []
    for _ in range(16):
        out = rvq(z)
        assert torch.equal(out.indices, full.indices)  # every level still reports its code
        sums = [rvq.lookup(full.indices[:, :n]) for n in range(1, 5)]
        (n,) = [n for n, value in enumerate(sums, 1) if torch.allclose(out.z_q, value, atol=1e-6)]  # first n summed
        used.append(n)
        rvq.zero_grad()
        out.loss.backward()
        has_grad = [level.embedding.weight.grad is not None for level in rvq.quantizers]
        assert has_grad == [i < n for i in range(4)]  # dropped levels learn nothing from this batch
    assert set(used) == {1, 2, 3, 4}
    # the draws follow a counter saved with the weights, so a copy continues the same sequence
    copy = ResidualVQ(8, 3, depth=4, quantizer_dropout=True)
    state = rvq.state_dict()
    copy.load_state_dict(state)
    again = [rvq.levels_used() for _ in range(8)]
    assert [copy.levels_used() for _ in range(8)] == again


def test_residual_vq_refuses_options_that_do_not_fit():
    for option in ("lookup_dim", "l2_normalize", "rotation_trick"):
        with pytest.raises(ValueError, match=option):
            ResidualVQ(8, 4, depth=2, **{option: 2 if option == "lookup_dim" else True})
    with pytest.raises(ValueError, match="level_kind"):
        ResidualVQ(8, 4, level_kind="fsq")
    ema = make_quantizer("rvq", 8, 4, depth=2, level_kind="ema", decay=0.9)
    assert all(isinstance(level, EMAVectorQuantizer) and level.decay == 0.9 for level in ema.quantizers)


# ---------------------------------------------------------------------------
# make_quantizer and the config
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind, options", [("vq", {}), ("ema", {}), ("fsq", {}), ("lfq", {}), ("rvq", {"depth": 2})])
def test_make_quantizer_builds_every_kind(kind, options):
    q = make_quantizer(kind, 1024, 8, **options)
    out = q(torch.randn(2, 8, 3, 3))
    assert out.z_q.shape == (2, 8, 3, 3) and out.loss.dim() == 0
    assert out.indices.shape == ((2, 2, 3, 3) if kind == "rvq" else (2, 3, 3))
    assert int(out.indices.max()) < q.num_indices
    with pytest.raises(ValueError, match=f"a `{kind}` quantizer does not take the option"):
        make_quantizer(kind, 1024, 8, wrong=1)
    with pytest.raises(ValueError, match="kind must be one of"):
        make_quantizer("pq", 1024, 8)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["quantizer.kind=fsq"], "config key `quantizer.levels` must be set for an fsq quantizer when "
                                 "model.num_codes=512 has no recommended levels"),
        (["quantizer.kind=fsq", "quantizer.levels=[8, 1]"], "config key `quantizer.levels[1]` must be >= 2, got 1"),
        (["quantizer.kind=fsq", "quantizer.levels=[]"], "config key `quantizer.levels` must list the values"),
        (["quantizer.kind=fsq", "model.num_codes=1024", "quantizer.init=kmeans"],
         "config key `quantizer.init` does not apply to an `fsq` quantizer"),
        (["quantizer.kind=lfq", "quantizer.restart_every=50"],
         "config key `quantizer.restart_every` does not apply to an `lfq` quantizer"),
        (["quantizer.kind=lfq", "model.num_codes=1000"],
         "config key `model.num_codes` must be a power of 2 for an lfq"),
        (["quantizer.kind=fsq", "quantizer.levels=[5]", "quantizer.rotation_trick=true"],
         "config key `quantizer.rotation_trick` does not apply to an `fsq` quantizer; remove it or set "
         "quantizer.kind=vq"),
        (["quantizer.kind=rvq", "quantizer.decay=0.9"],
         "config key `quantizer.decay` does not apply to the `vq` levels of an rvq quantizer; remove it or set "
         "quantizer.level_kind=ema"),
        (["quantizer.kind=vq", "quantizer.depth=2"], "config key `quantizer.depth` does not apply to a `vq` quantizer"),
        (["quantizer.kind=rvq", "quantizer.level_kind=fsq"],
         "config key `quantizer.level_kind` must be one of ['vq', 'ema'], got 'fsq'"),
    ],
)
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_config_builds_each_kind_in_each_family():
    families = {
        "vqvae": ["model.dim=8", "model.in_channels=1"],
        "vqvae2": ["model.family=vqvae2", "model.channel=8", "model.n_res_block=0", "model.n_res_channel=4",
                   "model.embed_dim=4", "model.in_channels=1"],
        "vqgan": ["model.family=vqgan", "model.embed_dim=4", "model.in_channels=1",
                  "model.ddconfig={ch: 8, ch_mult: [1, 2], num_res_blocks: 0, attn_resolutions: [], z_channels: 4, "
                  "resolution: 16, num_groups: 4}"],
    }
    kinds = {
        "vq": ["quantizer.kind=vq", "quantizer.rotation_trick=true"],
        "fsq": ["quantizer.kind=fsq", "quantizer.levels=[5, 3]"],
        "lfq": ["quantizer.kind=lfq", "model.num_codes=64", "quantizer.entropy_weight=0.5"],
        "rvq": ["quantizer.kind=rvq", "model.num_codes=16", "quantizer.depth=3", "quantizer.level_kind=ema"],
    }
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    for family, model_keys in families.items():
        for kind, keys in kinds.items():
            model = build_model(load_config(None, model_keys + keys)).eval()
            out = model(x)
            codes = model.tokenize(x)
            levels = 3 if kind == "rvq" else 1
            assert len(model.quantizers) == levels * (2 if family == "vqvae2" else 1)
            assert len(out.codes) == len(out.perplexity) == len(model.quantizers)
            top = codes[0] if family == "vqvae2" else codes
            assert top.dim() == (4 if kind == "rvq" else 3) and (kind != "rvq" or top.shape[1] == 3)
            assert torch.allclose(model.detokenize(codes), out.reconstruction, atol=1e-5), (family, kind)
    model = build_model(load_config(None, families["vqvae"] + kinds["rvq"])).eval()
    codes = model.tokenize(x)
    assert model.detokenize(codes[:, :1]).shape == x.shape  # a lower bit rate: the first level only
    with pytest.raises(ValueError, match=r"\(B, n, h, w\) \(the first 1 <= n <= 3 levels\)"):
        model.detokenize(codes[:, 0])


# ---------------------------------------------------------------------------
# Trainer, evaluate, checkpoints
# ---------------------------------------------------------------------------

TINY = ["model.dim=16", "model.num_codes=32", "train.batch_size=8", "train.log_every=1", "train.eval_batches=1",
        "train.sample_every=0", "train.ckpt_every=4", "train.num_samples=4"]
RUNS = {
    "vq_rotation": ["quantizer.kind=vq", "quantizer.rotation_trick=true", "quantizer.init=kmeans",
                    "quantizer.init_vectors=256"],
    "ema_rotation": ["quantizer.kind=ema", "quantizer.rotation_trick=true"],
    "fsq": ["quantizer.kind=fsq", "quantizer.levels=[4, 4, 2]"],
    "lfq": ["quantizer.kind=lfq"],
    "rvq": ["quantizer.kind=rvq", "quantizer.depth=3", "quantizer.quantizer_dropout=true", "quantizer.init=kmeans",
            "quantizer.init_vectors=256", "quantizer.restart_every=2"],
}


@pytest.mark.parametrize("name", RUNS)
def test_train_resume_checkpoint_and_evaluate(name, tmp_path):
    config = load_config(None, TINY + RUNS[name])
    straight = train(config, tmp_path / "straight", max_steps=4, progress=False)
    train(config, tmp_path / "resumed", max_steps=2, progress=False)
    resumed = train(config, tmp_path / "resumed", max_steps=4, resume=True, progress=False)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # exact resume

    model, _ = load_model(tmp_path / "straight" / "last.ckpt")
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.equal(model.tokenize(x), straight.model.eval().tokenize(x))

    last = straight.history[-1]
    metrics = evaluate_model(model, [x[i] for i in range(4)], batch_size=4)
    levels = ["_0", "_1", "_2"] if name == "rvq" else [""]
    for suffix in levels:
        assert f"codebook_usage{suffix}" in metrics and f"perplexity{suffix}" in metrics
        assert f"train/codebook_usage{suffix}" in last and f"val/codebook_usage{suffix}" in last
        assert metrics[f"perplexity{suffix}"] >= 1.0 - 1e-6 and 0 < metrics[f"codebook_usage{suffix}"] <= 1
    assert model.quantizers[0].num_indices == 32  # fsq: 4 * 4 * 2; lfq: 2^5; the others: num_codes
    if name == "rvq":
        assert "train/codes_restarted" in last


# ---------------------------------------------------------------------------
# vector-quantize-pytorch (requirements.txt installs it for these comparisons only; vqlearn never imports it)
# ---------------------------------------------------------------------------


def vqp():
    import vector_quantize_pytorch

    return vector_quantize_pytorch


def test_fsq_matches_vector_quantize_pytorch():
    """Same indices and values wherever the two bounds (theirs uses atanh and 1 + eps, the paper tan and
    1 - eps; they differ by < 0.01) cannot round differently."""
    theirs = vqp().FSQ(levels=[8, 5, 5, 5])
    ours = FSQ([8, 5, 5, 5])
    torch.manual_seed(8)
    z = torch.randn(4, 4, 6, 6) * 1.5
    their_values, their_indices = theirs(z)
    out = ours(z)
    bounded = ours.bound(z.permute(0, 2, 3, 1))
    safe = ((bounded - bounded.floor() - 0.5).abs() > 0.02).all(-1)  # no channel near a rounding boundary
    assert safe.float().mean() > 0.5
    assert torch.equal(out.indices[safe], their_indices[safe].long())
    assert torch.allclose(out.z_q.permute(0, 2, 3, 1)[safe], their_values.permute(0, 2, 3, 1)[safe])
    codes = torch.randint(0, 1000, (2, 3, 3))
    assert torch.allclose(ours.lookup(codes), theirs.indices_to_codes(codes))


def test_lfq_matches_vector_quantize_pytorch():
    theirs = vqp().LFQ(dim=6, codebook_size=64, entropy_loss_weight=0.1, commitment_loss_weight=0.25)
    ours = LFQ(6, beta=0.25, entropy_weight=0.1, entropy_temperature=0.01)
    torch.manual_seed(9)
    z = torch.randn(3, 6, 4, 4) * 0.05  # small, so the entropy terms are far from 0
    (values, indices, aux_loss), breakdown = theirs(z, inv_temperature=100.0, return_loss_breakdown=True)
    out = ours(z)
    assert torch.equal(out.indices, indices.long()) and torch.equal(out.z_q, values)
    per_sample, batch = ours.entropy_terms(z.permute(0, 2, 3, 1).reshape(-1, 6))
    assert abs(float(per_sample) - float(breakdown.per_sample_entropy)) < 1e-4
    assert abs(float(batch) - float(breakdown.batch_entropy)) < 1e-4
    assert abs(float(out.loss) - float(aux_loss)) < 1e-4
    codes = torch.randint(0, 64, (2, 3, 3))
    assert torch.equal(ours.lookup(codes), theirs.indices_to_codes(codes))


def test_rotation_trick_matches_vector_quantize_pytorch():
    rotate_to = vqp().vector_quantize_pytorch.rotate_to
    torch.manual_seed(10)
    z, z_q, g = torch.randn(8, 6), torch.randn(8, 6), torch.randn(8, 6)
    z1 = z.clone().requires_grad_(True)
    rotate_to(z1, z_q).backward(g)
    assert torch.allclose(estimator_gradient(rotation_trick, z, z_q, g), z1.grad, atol=1e-5)


# Every message of Config.check_quantizer, word for word (the mutation run of issue 16 found its branches and
# wording unpinned by the prefix checks above).
@pytest.mark.parametrize(
    "overrides, message",
    [
        (['quantizer.kind=fsq'],
         "config key `quantizer.levels` must be set for an fsq quantizer when model.num_codes=512 has no recommended levels (the paper's: 256: [8, 6, 5], 1024: [8, 5, 5, 5], 4096: [7, 5, 5, 5, 5], 16384: [8, 8, 8, 6, 5], 65536: [8, 8, 8, 5, 5, 5]); e.g. quantizer.levels=[8,5,5,5]"),
        (['quantizer.kind=fsq', 'quantizer.levels=[]'],
         'config key `quantizer.levels` must list the values of at least one channel, got []; e.g. quantizer.levels=[8,5,5,5]'),
        (['quantizer.kind=fsq', 'model.num_codes=1024', 'quantizer.init=kmeans'],
         'config key `quantizer.init` does not apply to an `fsq` quantizer (its codebook is a fixed grid, nothing to initialise or restart); remove it'),
        (['quantizer.kind=lfq', 'quantizer.restart_every=50'],
         'config key `quantizer.restart_every` does not apply to an `lfq` quantizer (its codebook is a fixed grid, nothing to initialise or restart); remove it'),
        (['quantizer.kind=lfq', 'model.num_codes=1000'],
         'config key `model.num_codes` must be a power of 2 for an lfq quantizer (2^bits codes), got 1000; e.g. 1024'),
        (['quantizer.kind=lfq', 'model.num_codes=1'],
         'config key `model.num_codes` must be a power of 2 for an lfq quantizer (2^bits codes), got 1; e.g. 2'),
        (['quantizer.kind=rvq', 'quantizer.decay=0.9'],
         'config key `quantizer.decay` does not apply to the `vq` levels of an rvq quantizer; remove it or set quantizer.level_kind=ema'),
        (['quantizer.kind=rvq', 'quantizer.level_kind=ema', 'quantizer.legacy=true'],
         'config key `quantizer.legacy` does not apply to the `ema` levels of an rvq quantizer; remove it or set quantizer.level_kind=vq'),
        (['quantizer.kind=vq', 'quantizer.depth=2'],
         'config key `quantizer.depth` does not apply to a `vq` quantizer; remove it or set quantizer.kind=rvq'),
        (['quantizer.kind=ema', 'quantizer.entropy_weight=0.1'],
         'config key `quantizer.entropy_weight` does not apply to an `ema` quantizer; remove it or set quantizer.kind=lfq'),
        (['quantizer.kind=lfq', 'quantizer.levels=[8,5]'],
         'config key `quantizer.levels` does not apply to an `lfq` quantizer; remove it or set quantizer.kind=fsq'),
    ],
)
def test_config_quantizer_messages_in_full(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides)
    assert str(error.value) == message


def test_lfq_accepts_every_power_of_two_from_2():
    for num_codes in (2, 4, 1024):
        assert load_config(None, ["quantizer.kind=lfq", f"model.num_codes={num_codes}"]).model.num_codes == num_codes


def test_codebook_tools_refuse_an_implicit_codebook_in_full():
    from vqlearn.codebook import init_codebook_from_data, restart_dead_codes

    fsq = make_quantizer("fsq", 1024, 4)
    with pytest.raises(ValueError) as error:
        init_codebook_from_data(fsq, torch.randn(1, 4, 2, 2))
    message = str(error.value)
    assert message.endswith("needs a learned codebook (a VectorQuantizer, an EMAVectorQuantizer, or one level of a "
                            "ResidualVQ, rvq.quantizers[i]), got a FSQ")
    with pytest.raises(ValueError) as error:
        restart_dead_codes(fsq, torch.randn(1, 4, 2, 2), torch.zeros(1024))
    assert str(error.value).endswith("got a FSQ")
