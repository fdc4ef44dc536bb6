"""Independent functional references of the two original forward passes.

The original projects are not installed here, so the tests of
:mod:`vqlearn.pretrained` compare our models with these functions instead.
Each one computes straight from a state_dict with ``torch.nn.functional`` --
no ``nn.Module`` and nothing imported from ``vqlearn`` -- following the
documented behaviour of

* rosinality/vq-vae-2-pytorch ``vqvae.py`` (``VQVAE``, ``Encoder``, ``Decoder``,
  ``ResBlock``, ``Quantize`` with its ``(dim, n_embed)`` codebook ``embed``), and
* CompVis/taming-transformers ``taming/models/vqgan.py`` (``VQModel``),
  ``taming/modules/diffusionmodules/model.py`` (``Encoder``, ``Decoder``,
  ``ResnetBlock``, ``AttnBlock``, ``Downsample``, ``Upsample``) and
  ``taming/modules/vqvae/quantize.py`` (``VectorQuantizer2``).

The ``*_keys`` functions enumerate each original's state_dict (names, shapes,
registration order) from its constructor logic, so the tests can write
checkpoints in the originals' key layouts without going through our models.
:class:`RecordingDict` lets a test check that the forward functions read
exactly those keys.

How these were checked against the originals (once, outside this repo, since
the suite must run offline without them): with the PyPI package
``taming-transformers-rom1504==0.0.6`` (taming's own modules; Lightning and
``main.instantiate_from_config`` stubbed) and rosinality's ``vqvae.py``, on
random weights at the test sizes and at the f16/1024 size, the ``*_keys``
functions gave the originals' state_dict names, shapes and order exactly, and
the codes, latents, losses, loss gradients (legacy VectorQuantizer2) and
decodings here were bit-identical to the originals' outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


class RecordingDict(dict):
    """A state_dict that remembers which keys were read with ``[]``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


def _conv(sd, name, x, stride=1, padding=0):
    return F.conv2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], stride=stride, padding=padding)


def _conv_transpose(sd, name, x):
    """The 4x4, stride-2, padding-1 transposed conv both VQ-VAE-2 decoders use."""
    return F.conv_transpose2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], stride=2, padding=1)


def random_state_dict(keys: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights for ``keys`` (name -> shape) at scales that keep activations O(1).

    Conv weights ~ N(0, 1/fan_in) (fan_in from dims 1..; the transposed convs of
    VQ-VAE-2 get their own fan), biases and norm shifts ~ 0.1 N(0, 1), norm scales
    ~ 1 + 0.1 N(0, 1), codebooks ~ N(0, 1), EMA counts positive.
    """
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in keys.items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("embed", "embed_avg") or name.endswith("embedding.weight"):
            t = torch.randn(shape, generator=g)
        elif leaf == "cluster_size":
            t = torch.rand(shape, generator=g) + 0.5
        elif leaf == "used":
            t = torch.randperm(shape[0], generator=g)
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            if name.rsplit(".", 1)[0] in getattr(keys, "transposed", ()):
                fan_in = shape[0] * shape[2] * shape[3] / 4  # stride-2 transposed conv: (in, out, k, k)
            t = torch.randn(shape, generator=g) / fan_in**0.5
        elif leaf == "weight" and ("norm" in name):
            t = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            t = 0.1 * torch.randn(shape, generator=g)
        out[name] = t
    return out


class KeyList(dict):
    """name -> shape, in registration order; ``transposed`` names the ConvTranspose2d modules."""

    def __init__(self):
        super().__init__()
        self.transposed: set[str] = set()

    def conv(self, name, c_in, c_out, k):
        self[f"{name}.weight"] = (c_out, c_in, k, k)
        self[f"{name}.bias"] = (c_out,)

    def conv_transpose(self, name, c_in, c_out, k):
        self[f"{name}.weight"] = (c_in, c_out, k, k)  # ConvTranspose2d stores (in, out, k, k)
        self[f"{name}.bias"] = (c_out,)
        self.transposed.add(name)

    def norm(self, name, c):
        self[f"{name}.weight"] = (c,)
        self[f"{name}.bias"] = (c,)


# ---------------------------------------------------------------------------
# rosinality/vq-vae-2-pytorch: VQVAE
# ---------------------------------------------------------------------------


def rosinality_vqvae2_keys(
    in_channel=3, channel=128, n_res_block=2, n_res_channel=32, embed_dim=64, n_embed=512
) -> KeyList:
    """The state_dict layout of rosinality's ``VQVAE(...)``: name -> shape, in order.

    ``Encoder``/``Decoder`` keep their layers in an ``nn.Sequential`` called
    ``blocks``, so parameters are numbered by position (ReLUs take a slot too);
    ``ResBlock.conv`` is ``Sequential(ReLU, Conv3x3, ReLU, Conv1x1)``; each
    ``Quantize`` has buffers ``embed (dim, n_embed)``, ``cluster_size (n_embed,)``,
    ``embed_avg (dim, n_embed)``.
    """
    keys = KeyList()

    def res_blocks(prefix, start, c):
        for i in range(start, start + n_res_block):
            keys.conv(f"{prefix}.blocks.{i}.conv.1", c, n_res_channel, 3)
            keys.conv(f"{prefix}.blocks.{i}.conv.3", n_res_channel, c, 1)

    def encoder(prefix, c_in, stride):
        keys.conv(f"{prefix}.blocks.0", c_in, channel // 2, 4)
        if stride == 4:
            keys.conv(f"{prefix}.blocks.2", channel // 2, channel, 4)
            keys.conv(f"{prefix}.blocks.4", channel, channel, 3)
            res_blocks(prefix, 5, channel)
        else:
            keys.conv(f"{prefix}.blocks.2", channel // 2, channel, 3)
            res_blocks(prefix, 3, channel)

    def decoder(prefix, c_in, c_out, stride):
        keys.conv(f"{prefix}.blocks.0", c_in, channel, 3)
        res_blocks(prefix, 1, channel)
        first = n_res_block + 2  # after conv, res blocks, ReLU
        if stride == 4:
            keys.conv_transpose(f"{prefix}.blocks.{first}", channel, channel // 2, 4)
            keys.conv_transpose(f"{prefix}.blocks.{first + 2}", channel // 2, c_out, 4)
        else:
            keys.conv_transpose(f"{prefix}.blocks.{first}", channel, c_out, 4)

    def quantize(prefix):
        keys[f"{prefix}.embed"] = (embed_dim, n_embed)
        keys[f"{prefix}.cluster_size"] = (n_embed,)
        keys[f"{prefix}.embed_avg"] = (embed_dim, n_embed)

    encoder("enc_b", in_channel, 4)
    encoder("enc_t", channel, 2)
    keys.conv("quantize_conv_t", channel, embed_dim, 1)
    quantize("quantize_t")
    decoder("dec_t", embed_dim, embed_dim, 2)
    keys.conv("quantize_conv_b", embed_dim + channel, embed_dim, 1)
    quantize("quantize_b")
    keys.conv_transpose("upsample_t", embed_dim, embed_dim, 4)
    decoder("dec", 2 * embed_dim, in_channel, 4)
    return keys


def _ros_res_blocks(sd, prefix, x, start, n_res_block):
    for i in range(start, start + n_res_block):
        h = _conv(sd, f"{prefix}.blocks.{i}.conv.1", F.relu(x), padding=1)
        x = x + _conv(sd, f"{prefix}.blocks.{i}.conv.3", F.relu(h))
    return x


def _ros_encoder(sd, prefix, x, n_res_block, stride):
    x = F.relu(_conv(sd, f"{prefix}.blocks.0", x, stride=2, padding=1))
    if stride == 4:
        x = F.relu(_conv(sd, f"{prefix}.blocks.2", x, stride=2, padding=1))
        x = _conv(sd, f"{prefix}.blocks.4", x, padding=1)
        start = 5
    else:
        x = _conv(sd, f"{prefix}.blocks.2", x, padding=1)
        start = 3
    return F.relu(_ros_res_blocks(sd, prefix, x, start, n_res_block))


def _ros_decoder(sd, prefix, x, n_res_block, stride):
    x = _conv(sd, f"{prefix}.blocks.0", x, padding=1)
    x = F.relu(_ros_res_blocks(sd, prefix, x, 1, n_res_block))
    first = n_res_block + 2
    x = _conv_transpose(sd, f"{prefix}.blocks.{first}", x)
    if stride == 4:
        x = _conv_transpose(sd, f"{prefix}.blocks.{first + 2}", F.relu(x))
    return x


def _ros_quantize(sd, prefix, z):
    """rosinality's ``Quantize.forward`` in eval mode on ``z (B, C, H, W)``.

    The original takes channels-last input; distances are
    ``|f|^2 - 2 f @ embed + |embed|^2`` and the code is ``argmax(-dist)``.
    Returns the straight-through value ``z + (q - z)`` (channels first), codes
    ``(B, H, W)`` and the latent diff ``mean((q - z)^2)``.
    """
    embed = sd[f"{prefix}.embed"]  # (dim, n_embed)
    z = z.permute(0, 2, 3, 1)  # (B, H, W, C)
    flat = z.reshape(-1, embed.shape[0])
    dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ embed + embed.pow(2).sum(0, keepdim=True)
    codes = (-dist).max(1).indices.view(*z.shape[:-1])
    q = F.embedding(codes, embed.t())
    diff = (q.detach() - z).pow(2).mean()
    q = z + (q - z).detach()
    return q.permute(0, 3, 1, 2), codes, diff


def _ros_embed_code(sd, prefix, codes):
    return F.embedding(codes, sd[f"{prefix}.embed"].t()).permute(0, 3, 1, 2)


def _ros_prequant_t(sd, x, n_res_block):
    """``x -> (enc_b, z_t)``: bottom features and the top latents before quantization."""
    enc_b = _ros_encoder(sd, "enc_b", x, n_res_block, 4)
    enc_t = _ros_encoder(sd, "enc_t", enc_b, n_res_block, 2)
    return enc_b, _conv(sd, "quantize_conv_t", enc_t)


def _ros_prequant_b(sd, enc_b, quant_t, n_res_block):
    """The bottom latents before quantization, from the bottom features and the top decoding."""
    dec_t = _ros_decoder(sd, "dec_t", quant_t, n_res_block, 2)
    return _conv(sd, "quantize_conv_b", torch.cat([dec_t, enc_b], 1))


def rosinality_encode(sd, x, n_res_block=2):
    """``VQVAE.encode`` (eval): ``x (B, C, H, W) -> (quant_t, quant_b, diff, id_t (B,H/8,W/8), id_b (B,H/4,W/4))``.

    ``diff`` is the sum over both levels of ``mean((q - z)^2)``.
    """
    enc_b, z_t = _ros_prequant_t(sd, x, n_res_block)
    quant_t, id_t, diff_t = _ros_quantize(sd, "quantize_t", z_t)
    quant_b, id_b, diff_b = _ros_quantize(sd, "quantize_b", _ros_prequant_b(sd, enc_b, quant_t, n_res_block))
    return quant_t, quant_b, diff_t + diff_b, id_t, id_b


def _sample_codes(z, n_codes, g):
    """``n_codes`` distinct rows of ``z (B, C, h, w)`` as ``(n_codes, C)``, plus 5% noise."""
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    if len(flat) < n_codes:
        raise ValueError(f"need at least {n_codes} latent vectors to sample codes from, got {len(flat)}")
    rows = flat[torch.randperm(len(flat), generator=g)[:n_codes]]
    return rows + 0.05 * flat.std() * torch.randn(rows.shape, generator=g)


@torch.no_grad()
def rosinality_fit_codebooks(sd, x, n_res_block=2, seed=0):
    """Set both ``embed`` buffers (and ``embed_avg``) to noisy samples of the latents of ``x``,
    so that a random network still uses many codes (a test with one code is weak)."""
    g = torch.Generator().manual_seed(seed)
    enc_b, z_t = _ros_prequant_t(sd, x, n_res_block)
    n_embed = sd["quantize_t.embed"].shape[1]
    sd["quantize_t.embed"] = _sample_codes(z_t, n_embed, g).t().contiguous()
    sd["quantize_t.embed_avg"] = sd["quantize_t.embed"].clone()
    quant_t, _, _ = _ros_quantize(sd, "quantize_t", z_t)
    z_b = _ros_prequant_b(sd, enc_b, quant_t, n_res_block)
    sd["quantize_b.embed"] = _sample_codes(z_b, n_embed, g).t().contiguous()
    sd["quantize_b.embed_avg"] = sd["quantize_b.embed"].clone()
    return sd


def rosinality_decode(sd, quant_t, quant_b, n_res_block=2):
    """``VQVAE.decode``: upsample the top latents, concatenate with the bottom ones, decode."""
    up = _conv_transpose(sd, "upsample_t", quant_t)
    return _ros_decoder(sd, "dec", torch.cat([up, quant_b], 1), n_res_block, 4)


def rosinality_decode_code(sd, id_t, id_b, n_res_block=2):
    """``VQVAE.decode_code``: codes -> images."""
    return rosinality_decode(sd, _ros_embed_code(sd, "quantize_t", id_t), _ros_embed_code(sd, "quantize_b", id_b), n_res_block)


def rosinality_forward(sd, x, n_res_block=2):
    """``VQVAE.forward`` (eval): ``x -> (reconstruction, latent diff)``; the diff is the
    sum over both levels of ``mean((q - z)^2)`` (the train script weights it by 0.25)."""
    quant_t, quant_b, diff, _, _ = rosinality_encode(sd, x, n_res_block)
    return rosinality_decode(sd, quant_t, quant_b, n_res_block), diff


# ---------------------------------------------------------------------------
# CompVis/taming-transformers: VQModel with VectorQuantizer2
# ---------------------------------------------------------------------------


def _taming_plan(ddconfig):
    """The level structure both taming halves derive from ``ddconfig``.

    Returns, per level, (block_in of each ResnetBlock, block_out, whether the level has attention).
    """
    ch, ch_mult = ddconfig["ch"], list(ddconfig["ch_mult"])
    n_levels = len(ch_mult)
    attn_res = list(ddconfig["attn_resolutions"])
    res = ddconfig["resolution"]
    in_mult = [1] + ch_mult
    enc = []
    for level in range(n_levels):
        enc.append((ch * in_mult[level], ch * ch_mult[level], res in attn_res))
        if level != n_levels - 1:
            res //= 2
    dec = {}
    block_in = ch * ch_mult[-1]
    res = ddconfig["resolution"] // 2 ** (n_levels - 1)
    for level in reversed(range(n_levels)):
        dec[level] = (block_in, ch * ch_mult[level], res in attn_res)
        block_in = ch * ch_mult[level]
        if level != 0:
            res *= 2
    return enc, [dec[level] for level in range(n_levels)]


def taming_vqmodel_keys(ddconfig: dict, n_embed: int, embed_dim: int, remap_size: int | None = None) -> KeyList:
    """The state_dict layout of taming's ``VQModel`` without its ``loss.*`` entries.

    Registration order: ``encoder``, ``decoder``, (``loss``), ``quantize``,
    ``quant_conv``, ``post_quant_conv``. ``ResnetBlock``: ``norm1, conv1, norm2,
    conv2`` and ``nin_shortcut`` (1x1) when channels change (``temb_channels=0``, so
    no ``temb_proj``). ``AttnBlock``: ``norm, q, k, v, proj_out``. Decoder levels
    are built from the top down but prepended, so ``decoder.up.0`` is the
    full-resolution level. ``quantize.used`` exists only with ``remap``.
    """
    d = ddconfig
    nrb = d["num_res_blocks"]
    with_conv = d.get("resamp_with_conv", True)
    keys = KeyList()

    def resnet(name, c_in, c_out):
        keys.norm(f"{name}.norm1", c_in)
        keys.conv(f"{name}.conv1", c_in, c_out, 3)
        keys.norm(f"{name}.norm2", c_out)
        keys.conv(f"{name}.conv2", c_out, c_out, 3)
        if c_in != c_out:
            keys.conv(f"{name}.nin_shortcut", c_in, c_out, 1)

    def attn(name, c):
        keys.norm(f"{name}.norm", c)
        for part in ("q", "k", "v", "proj_out"):
            keys.conv(f"{name}.{part}", c, c, 1)

    def mid(prefix, c):
        resnet(f"{prefix}.mid.block_1", c, c)
        attn(f"{prefix}.mid.attn_1", c)
        resnet(f"{prefix}.mid.block_2", c, c)

    enc, dec = _taming_plan(d)
    n_levels = len(enc)
    keys.conv("encoder.conv_in", d["in_channels"], d["ch"], 3)
    for level, (block_in, block_out, has_attn) in enumerate(enc):
        for i in range(nrb):  # the level's ModuleList `block` is registered before `attn`
            resnet(f"encoder.down.{level}.block.{i}", block_in if i == 0 else block_out, block_out)
        for i in range(nrb if has_attn else 0):
            attn(f"encoder.down.{level}.attn.{i}", block_out)
        if level != n_levels - 1 and with_conv:
            keys.conv(f"encoder.down.{level}.downsample.conv", block_out, block_out, 3)
    c_low = enc[-1][1]
    mid("encoder", c_low)
    keys.norm("encoder.norm_out", c_low)
    z_out = 2 * d["z_channels"] if d.get("double_z", True) else d["z_channels"]
    keys.conv("encoder.conv_out", c_low, z_out, 3)

    keys.conv("decoder.conv_in", d["z_channels"], c_low, 3)
    mid("decoder", c_low)
    for level, (block_in, block_out, has_attn) in enumerate(dec):
        for i in range(nrb + 1):
            resnet(f"decoder.up.{level}.block.{i}", block_in if i == 0 else block_out, block_out)
        for i in range(nrb + 1 if has_attn else 0):
            attn(f"decoder.up.{level}.attn.{i}", block_out)
        if level != 0 and with_conv:
            keys.conv(f"decoder.up.{level}.upsample.conv", block_out, block_out, 3)
    c_full = dec[0][1]
    keys.norm("decoder.norm_out", c_full)
    keys.conv("decoder.conv_out", c_full, d["out_ch"], 3)

    if remap_size is not None:  # a buffer of `quantize` itself, so it precedes its child `embedding`
        keys["quantize.used"] = (remap_size,)
    keys["quantize.embedding.weight"] = (n_embed, embed_dim)
    keys.conv("quant_conv", d["z_channels"], embed_dim, 1)
    keys.conv("post_quant_conv", embed_dim, d["z_channels"], 1)
    return keys


def _swish(x):
    return x * torch.sigmoid(x)


def _gn(sd, name, x):
    return F.group_norm(x, 32, sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-6)


def _t_resnet(sd, name, x):
    h = _conv(sd, f"{name}.conv1", _swish(_gn(sd, f"{name}.norm1", x)), padding=1)
    h = _conv(sd, f"{name}.conv2", _swish(_gn(sd, f"{name}.norm2", h)), padding=1)  # dropout: eval
    if f"{name}.nin_shortcut.weight" in sd:
        x = _conv(sd, f"{name}.nin_shortcut", x)
    return x + h


def _t_attn(sd, name, x):
    """taming's ``AttnBlock``: one head over the H*W positions, written with ``bmm``."""
    h = _gn(sd, f"{name}.norm", x)
    q, k, v = (_conv(sd, f"{name}.{part}", h) for part in ("q", "k", "v"))
    b, c, hh, ww = q.shape
    q = q.reshape(b, c, hh * ww).permute(0, 2, 1)  # (b, hw, c)
    w = torch.bmm(q, k.reshape(b, c, hh * ww)) * (int(c) ** -0.5)  # (b, hw, hw), w[b,i,j] = q_i . k_j
    w = F.softmax(w, dim=2)
    h = torch.bmm(v.reshape(b, c, hh * ww), w.permute(0, 2, 1)).reshape(b, c, hh, ww)
    return x + _conv(sd, f"{name}.proj_out", h)


def _t_downsample(sd, name, x, with_conv):
    if with_conv:
        return _conv(sd, f"{name}.conv", F.pad(x, (0, 1, 0, 1), mode="constant", value=0), stride=2)
    return F.avg_pool2d(x, kernel_size=2, stride=2)


def _t_upsample(sd, name, x, with_conv):
    x = F.interpolate(x, scale_factor=2.0, mode="nearest")
    return _conv(sd, f"{name}.conv", x, padding=1) if with_conv else x


def _t_mid(sd, prefix, h):
    h = _t_resnet(sd, f"{prefix}.mid.block_1", h)
    h = _t_attn(sd, f"{prefix}.mid.attn_1", h)
    return _t_resnet(sd, f"{prefix}.mid.block_2", h)


def taming_encoder(sd, ddconfig, x):
    """taming ``Encoder.forward``: ``(B, in_channels, H, W) -> (B, z, H/f, W/f)``."""
    enc, _ = _taming_plan(ddconfig)
    with_conv = ddconfig.get("resamp_with_conv", True)
    h = _conv(sd, "encoder.conv_in", x, padding=1)
    for level, (_, _, has_attn) in enumerate(enc):
        for i in range(ddconfig["num_res_blocks"]):
            h = _t_resnet(sd, f"encoder.down.{level}.block.{i}", h)
            if has_attn:
                h = _t_attn(sd, f"encoder.down.{level}.attn.{i}", h)
        if level != len(enc) - 1:
            h = _t_downsample(sd, f"encoder.down.{level}.downsample", h, with_conv)
    h = _t_mid(sd, "encoder", h)
    return _conv(sd, "encoder.conv_out", _swish(_gn(sd, "encoder.norm_out", h)), padding=1)


def taming_decoder(sd, ddconfig, z):
    """taming ``Decoder.forward`` (``give_pre_end=False``): ``(B, z, h, w) -> (B, out_ch, h*f, w*f)``."""
    _, dec = _taming_plan(ddconfig)
    with_conv = ddconfig.get("resamp_with_conv", True)
    h = _conv(sd, "decoder.conv_in", z, padding=1)
    h = _t_mid(sd, "decoder", h)
    for level in reversed(range(len(dec))):
        for i in range(ddconfig["num_res_blocks"] + 1):
            h = _t_resnet(sd, f"decoder.up.{level}.block.{i}", h)
            if dec[level][2]:
                h = _t_attn(sd, f"decoder.up.{level}.attn.{i}", h)
        if level != 0:
            h = _t_upsample(sd, f"decoder.up.{level}.upsample", h, with_conv)
    return _conv(sd, "decoder.conv_out", _swish(_gn(sd, "decoder.norm_out", h)), padding=1)


def taming_quantize(sd, z, beta=0.25, legacy=True):
    """``VectorQuantizer2.forward`` on ``z (B, C, h, w)``.

    Returns ``(z_q straight-through (B, C, h, w), loss, codes (B, h, w))`` with codes
    in the full range ``[0, n_e)`` (remapping: :func:`taming_remap`). ``legacy=True``
    (taming's default) weights the codebook term by beta, the commitment term by 1.
    """
    weight = sd["quantize.embedding.weight"]  # (n_e, e_dim)
    b, c, h, w = z.shape
    z = z.permute(0, 2, 3, 1).contiguous()
    flat = z.view(-1, c)
    d = flat.pow(2).sum(1, keepdim=True) + weight.pow(2).sum(1) - 2 * torch.einsum("bd,dn->bn", flat, weight.t())
    codes = torch.argmin(d, dim=1)
    z_q = F.embedding(codes, weight).view(z.shape)
    commitment = torch.mean((z_q.detach() - z) ** 2)
    codebook = torch.mean((z_q - z.detach()) ** 2)
    loss = commitment + beta * codebook if legacy else beta * commitment + codebook
    z_q = z + (z_q - z).detach()
    return z_q.permute(0, 3, 1, 2).contiguous(), loss, codes.view(b, h, w)


def taming_remap(sd, codes):
    """``remap_to_used`` for codes that all occur in ``quantize.used``: full -> compact index."""
    used = sd["quantize.used"]
    match = codes[..., None] == used
    if not bool(match.any(-1).all()):
        raise ValueError("reference remap: a code outside `used` (taming would pick a random index)")
    return match.long().argmax(-1)


@torch.no_grad()
def taming_fit_codebook(sd, ddconfig, x, seed=0):
    """Set ``quantize.embedding.weight`` to noisy samples of the latents of ``x``."""
    g = torch.Generator().manual_seed(seed)
    z = _conv(sd, "quant_conv", taming_encoder(sd, ddconfig, x))
    sd["quantize.embedding.weight"] = _sample_codes(z, sd["quantize.embedding.weight"].shape[0], g)
    return sd


def taming_encode(sd, ddconfig, x):
    """``VQModel.encode``: ``x -> (quant (B, embed_dim, h, w), loss, codes (B, h, w))``
    (codes remapped when the state_dict has ``quantize.used``)."""
    h = _conv(sd, "quant_conv", taming_encoder(sd, ddconfig, x))
    quant, loss, codes = taming_quantize(sd, h)
    if "quantize.used" in sd:
        codes = taming_remap(sd, codes)
    return quant, loss, codes


def taming_decode(sd, ddconfig, quant):
    """``VQModel.decode``: ``post_quant_conv`` then the decoder."""
    return taming_decoder(sd, ddconfig, _conv(sd, "post_quant_conv", quant))


def taming_decode_code(sd, ddconfig, codes):
    """``get_codebook_entry`` + ``decode``: codes ``(B, h, w)`` -> images."""
    if "quantize.used" in sd:
        codes = sd["quantize.used"][codes]
    quant = F.embedding(codes, sd["quantize.embedding.weight"]).permute(0, 3, 1, 2).contiguous()
    return taming_decode(sd, ddconfig, quant)


def taming_forward(sd, ddconfig, x):
    """``VQModel.forward``: ``x -> (reconstruction, quantizer loss)``."""
    quant, loss, _ = taming_encode(sd, ddconfig, x)
    return taming_decode(sd, ddconfig, quant), loss
