"""LPIPS perceptual distance, loaded only from weights that are already on disk.

LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric") compares two images through the activations of an ImageNet
classifier: unit-normalise each layer's features along channels, square the
difference, weight the channels with a learned 1x1 conv (the "linear head"),
average over space and sum over layers. VQ-GAN adds it to the L1 pixel loss
(seed 000 §Total loss, seed 001 §3).

Two sets of weights are needed, and they come from two places:

* the linear heads ship inside the ``lpips`` package
  (``lpips/weights/v0.1/{vgg,alex,squeeze}.pth``);
* the trunk (torchvision's ``vgg16`` / ``alexnet`` / ``squeezenet1_1`` ImageNet
  weights) is *not* shipped: ``lpips`` builds it with torchvision's
  ``pretrained=True``, which reads ``<torch hub dir>/checkpoints/<file>``
  (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``)
  and downloads the file only if it is missing.

This module never downloads unless asked (``download=True``) and never falls
back to random features: a trunk file that is not there raises
:class:`LPIPSUnavailableError`, whose message names the file, the directory,
the URL and the alternative (``perceptual_weight=0``). Neither ``lpips`` nor
``torchvision`` is imported until a function needs them, so code that trains
without the perceptual loss never imports them.

About hashes: torchvision asks torch.hub for ``check_hash=True``, but torch.hub
checks the SHA-256 prefix in the file name only while downloading; a file that
is already in the cache is loaded as it is. :func:`load_lpips` with
``download=True`` downloads with the hash check on.

On a machine with network, one command fetches the trunk into the right place::

    python -m vqlearn.perceptual --download vgg     # also alex, squeeze
    python -m vqlearn.perceptual                    # where each file is expected, and whether it is there

(:func:`main`). A random trunk is no substitute: the book's chapter builds one
in the chapter itself, labelled as such, to show the mechanism offline.

Book: chapter "Perceptual loss".
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import warnings
from pathlib import Path

import torch
import torch.nn as nn

LPIPS_NETS = ("vgg", "alex", "squeeze")

# lpips' ``net`` name -> (torchvision weights enum, the trunk it builds). lpips
# calls e.g. ``torchvision.models.vgg16(pretrained=True)``, which torchvision maps
# to ``VGG16_Weights.IMAGENET1K_V1``.
_TRUNKS = {
    "vgg": ("VGG16_Weights", "vgg16"),
    "alex": ("AlexNet_Weights", "alexnet"),
    "squeeze": ("SqueezeNet1_1_Weights", "squeezenet1_1"),
}


class LPIPSUnavailableError(RuntimeError):
    """LPIPS cannot be built here: ``lpips``/``torchvision`` missing, or the trunk weights not on disk."""


def _check_net(net: str) -> None:
    if net not in LPIPS_NETS:
        raise ValueError(f"net must be one of {LPIPS_NETS}, got {net!r}")


def trunk_weights_url(net: str = "vgg") -> str:
    """URL of the ImageNet weights torchvision uses for LPIPS' ``net`` trunk.

    Read from torchvision's weight enum (``IMAGENET1K_V1``), e.g.
    ``https://download.pytorch.org/models/vgg16-397923af.pth`` for ``"vgg"``.
    """
    _check_net(net)
    try:
        import torchvision.models as tvm
    except ImportError as err:
        raise LPIPSUnavailableError(
            "LPIPS needs torchvision for its trunk network; install it (pip install torchvision, "
            "matching your torch) or train with perceptual_weight=0"
        ) from err
    return getattr(tvm, _TRUNKS[net][0]).IMAGENET1K_V1.url


def trunk_weights_path(net: str = "vgg") -> Path:
    """Where torchvision looks for the trunk weights: ``torch.hub.get_dir()/checkpoints/<file>``.

    ``torch.hub.get_dir()`` is ``$TORCH_HOME/hub`` (default ``~/.cache/torch/hub``)
    unless ``torch.hub.set_dir`` changed it; it is read at every call.
    """
    url = trunk_weights_url(net)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _head_weights_path(net: str) -> Path | None:
    """The linear-head file inside the installed ``lpips`` package, without importing it."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "weights" / "v0.1" / f"{net}.pth"


def lpips_available(net: str = "vgg") -> bool:
    """True when :func:`load_lpips` (``download=False``) would succeed.

    Checks that ``lpips`` and ``torchvision`` are installed and that both weight
    files are on disk; imports neither ``lpips`` nor the network. An evaluation
    script uses this to report LPIPS only where it can be computed.
    """
    _check_net(net)
    head = _head_weights_path(net)
    if head is None or not head.is_file():
        return False
    try:
        return trunk_weights_path(net).is_file()
    except LPIPSUnavailableError:
        return False


def _missing_trunk_message(net: str, reason: str) -> str:
    url = trunk_weights_url(net)
    path = trunk_weights_path(net)
    return (
        f"LPIPS(net={net!r}) needs torchvision's ImageNet weights for its {_TRUNKS[net][1]} trunk, "
        f"but {reason}.\n"
        f"  missing file: {path.name}\n"
        f"  directory:    {path.parent}  (torch.hub.get_dir()/checkpoints; set TORCH_HOME to use another "
        f"cache, currently TORCH_HOME={os.environ.get('TORCH_HOME', '<unset>')})\n"
        f"  URL:          {url}\n"
        f"Fix it one of these ways:\n"
        f"  * on a machine with network: python -m vqlearn.perceptual --download {net}, "
        f"or load_lpips({net!r}, download=True);\n"
        f"  * download {url} elsewhere and copy it into {path.parent}/ under the name {path.name};\n"
        f"  * train without the perceptual loss: VQLPIPSWithDiscriminator(..., perceptual_weight=0).\n"
        f"vqlearn never replaces the trunk with random features."
    )


def _download_trunk(net: str, path: Path) -> None:
    """Fetch the trunk file into the hub cache, checking the hash prefix in its name."""
    url = trunk_weights_url(net)
    match = torch.hub.HASH_REGEX.search(path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(path), hash_prefix=match.group(1) if match else None, progress=True)
    except Exception as err:  # network errors come in many types (URLError, OSError, ...)
        raise LPIPSUnavailableError(_missing_trunk_message(net, f"downloading it failed ({err!r})")) from err


def load_lpips(net: str = "vgg", download: bool = False) -> nn.Module:
    """The ``lpips.LPIPS`` module for ``net``, in eval mode, with every parameter frozen.

    ``(B, 3, H, W), (B, 3, H, W)`` in [-1, 1] -> distances ``(B, 1, 1, 1)``.
    ``net`` is ``"vgg"`` (VQ-GAN's choice), ``"alex"`` or ``"squeeze"``.

    ``download=False`` (the default) never touches the network: if the trunk
    file is not in the torch hub cache, raise :class:`LPIPSUnavailableError`
    naming the file, its directory, its URL and ``perceptual_weight=0``.
    ``download=True`` fetches a missing file first (and raises the same error if
    that fails). With the file present, building the module only reads it.
    """
    _check_net(net)
    try:
        import lpips
    except ImportError as err:
        raise LPIPSUnavailableError(
            "the perceptual loss needs the `lpips` package: pip install lpips "
            "(or pip install 'vqlearn[perceptual]'), or train with perceptual_weight=0"
        ) from err
    path = trunk_weights_path(net)
    if not path.is_file():
        if not download:
            raise LPIPSUnavailableError(
                _missing_trunk_message(net, "that file is not in the torch hub cache and download=False")
            )
        _download_trunk(net, path)
    with warnings.catch_warnings():
        # lpips uses torchvision's deprecated ``pretrained=True`` argument.
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        warnings.filterwarnings("ignore", message=".*(pretrained|weights).*", category=UserWarning)
        try:
            model = lpips.LPIPS(net=net, version="0.1", verbose=False)
        except (RuntimeError, OSError, EOFError) as err:
            raise LPIPSUnavailableError(
                f"could not build LPIPS(net={net!r}) from {path}: {err}. If the file is damaged, delete it "
                f"and fetch it again from {trunk_weights_url(net)}, or train with perceptual_weight=0"
            ) from err
    model.eval()
    model.requires_grad_(False)
    return model


# ----------------------------------------------------------------------------
# command line: python -m vqlearn.perceptual [--check [NET ...]] [--download NET [NET ...]]


def _status_line(net: str) -> str:
    """Two or three lines: the trunk file (and how to get it when missing), then the linear heads."""
    path = trunk_weights_path(net)
    head = _head_weights_path(net)
    lines = [f"{net:8s} trunk        {'present' if path.is_file() else 'MISSING'}  {path}"]
    if not path.is_file():
        lines.append(f"{'':8s}   get it: python -m vqlearn.perceptual --download {net}  "
                     f"(or copy {trunk_weights_url(net)} there)")
    if head is not None and head.is_file():
        lines.append(f"{'':8s} linear heads present  {head}")
    else:
        lines.append(f"{'':8s} linear heads MISSING  (they ship with the lpips package: pip install lpips)")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vqlearn.perceptual",
        description="Check or fetch the ImageNet trunk weights that LPIPS needs, into torch.hub.get_dir()/checkpoints. "
        "Without options: --check for every net.",
    )
    parser.add_argument("--check", nargs="*", choices=LPIPS_NETS, metavar="NET",
                        help=f"print where each net's weights are expected and whether they are there "
                             f"(default: all of {', '.join(LPIPS_NETS)}); exit status 1 if any is missing")
    parser.add_argument("--download", nargs="+", choices=LPIPS_NETS, metavar="NET",
                        help="download the trunk weights of these nets (vgg is VQ-GAN's) unless already present")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """The command line. Returns the exit status: 0 when every net named is ready, 1 otherwise.

    ``--download NET ...`` calls the same downloader as ``load_lpips(net, download=True)``
    (``torch.hub.download_url_to_file`` with the hash check) for each missing trunk
    file and writes it to :func:`trunk_weights_path`; a file already there is kept.
    A failure (offline, say) prints the :class:`LPIPSUnavailableError` message as one
    ``error:`` block on stderr, without a traceback (``--traceback`` shows it).
    """
    args = parse_args(argv)
    try:
        if args.download:
            for net in args.download:
                path = trunk_weights_path(net)
                if path.is_file():
                    print(f"{net}: already present: {path}")
                    continue
                _download_trunk(net, path)
                print(f"{net}: downloaded {trunk_weights_url(net)} to {path}")
        nets = args.check if args.check else (args.download or LPIPS_NETS)
        if args.check is not None or not args.download:
            print(f"torch hub cache: {Path(torch.hub.get_dir()) / 'checkpoints'} "
                  f"(TORCH_HOME={os.environ.get('TORCH_HOME', '<unset>')})")
            for net in nets:
                print(_status_line(net))
        return 0 if all(lpips_available(net) for net in nets) else 1
    except LPIPSUnavailableError as error:
        if args.traceback:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
