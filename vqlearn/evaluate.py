"""Evaluate a trained tokenizer on a held-out split: PSNR, SSIM, codebook usage, perplexity, LPIPS.

    python -m vqlearn.evaluate runs/mnist/last.ckpt [--data NAME] [--root DIR] [--image-size S] [--split test]

prints, as its last line, one JSON object::

    {"psnr": 27.1, "ssim": 0.93, "codebook_usage": 0.97, "codes_used": 497, "perplexity": 402.3,
     "num_images": 500, "data": "mnist", "split": "test", "step": 3000}

``codebook_usage`` is the fraction of the K codes used at least once on the
whole split; ``perplexity`` is ``exp(entropy)`` of the split's code histogram.
A VQ-VAE-2 reports each level (``codebook_usage_top``, ``..._bottom``, ...) and
their mean under the plain names. ``lpips`` (AlexNet LPIPS, lower is better)
is included only when its weights are on disk (:func:`vqlearn.perceptual.lpips_available`).

Book: chapter "Training a VQ-VAE", chapter "Training a VQ-GAN".
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from vqlearn import runtime
from vqlearn.build import model_from_state
from vqlearn.checkpoint import load_checkpoint
from vqlearn.codebook import CodebookUsage, codebook_metrics
from vqlearn.data import build_dataset, check_data_paths, dataset_spec
from vqlearn.errors import DataError, UsageError, run_cli
from vqlearn.images import denormalize, grey_to_rgb, image_of
from vqlearn.metrics import psnr, ssim
from vqlearn.perceptual import LPIPS_NETS


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    data: Dataset,
    batch_size: int = 64,
    max_batches: int | None = None,
    device: str | torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
    lpips_model: nn.Module | None = None,
    code_counts: bool = False,
) -> dict:
    """Average PSNR/SSIM per image and the codebook statistics of ``model`` on ``data``.

    ``data``: a dataset of ``(C, H, W)`` images in [-1, 1], read in order
    (the first ``max_batches * batch_size`` images when ``max_batches`` is set).
    The model runs in eval mode (restored afterwards), so EMA codebooks do not move.
    ``lpips_model``: an LPIPS module taking two ``(B, 3, H, W)`` batches in [-1, 1].
    ``code_counts``: also return ``"code_counts"``, one ``(num_indices,)`` CPU LongTensor per quantizer
    (in ``model.quantizers`` order): how often each code occurred.
    """
    for name, value, least in (("batch_size", batch_size, 1), ("max_batches", max_batches, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise UsageError(f"--{name.replace('_', '-')} ({name}) must be an integer >= {least}, got {value!r}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    quantizers = model.quantizers
    usage = [CodebookUsage(q.num_indices) for q in quantizers]
    totals = {"psnr": 0.0, "ssim": 0.0, "lpips": 0.0}
    count = 0
    was_training = model.training
    model.eval()
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    try:
        for i, x in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            x = image_of(x).to(device)
            with runtime.autocast(device, autocast_dtype):
                out = model(x)
            a, b = denormalize(x), denormalize(out.reconstruction)
            totals["psnr"] += float(psnr(a, b).sum())
            if min(x.shape[-2:]) >= 11:
                totals["ssim"] += float(ssim(a, b).sum())
            if lpips_model is not None:
                x3, r3 = grey_to_rgb(x.float()), grey_to_rgb(out.reconstruction.float().clamp(-1, 1))
                totals["lpips"] += float(lpips_model(x3, r3).sum())
            for acc, codes in zip(usage, out.codes):
                acc.update(codes)
            count += x.shape[0]
    finally:
        model.train(was_training)
    if count == 0:
        raise DataError("evaluate_model: the dataset gave no images")

    result = {"psnr": totals["psnr"] / count}
    if min(x.shape[-2:]) >= 11:
        result["ssim"] = totals["ssim"] / count
    if lpips_model is not None:
        result["lpips"] = totals["lpips"] / count
    result.update(codebook_metrics(usage, model.level_names))
    if code_counts:
        result["code_counts"] = [acc.counts.cpu() for acc in usage]
    result["num_images"] = count
    return result


def load_metric_lpips(net: str = "alex", device: str | torch.device = "cpu") -> nn.Module | None:
    """The LPIPS metric network if its weights are on disk, else None (never downloads)."""
    from vqlearn.perceptual import load_lpips, lpips_available

    if not lpips_available(net):
        return None
    return load_lpips(net, download=False).to(device).eval()


# How this command sets the data keys a checkpoint's config holds (see vqlearn.data.check_data_paths).
EVALUATE_FLAGS = {"data.root": "--root {}", "data.name": "--data {}", "data.image_size": "--image-size {}"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vqlearn.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a last.ckpt written by python -m vqlearn.train")
    parser.add_argument("--data", default=None, help="dataset name (default: the checkpoint config's)")
    parser.add_argument("--root", default=None, help="dataset root (default: the checkpoint config's)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="image side (default: the checkpoint config's, else the size the model trained at)")
    parser.add_argument("--split", default=None, help="split (default: the config's data.val_split, i.e. test)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-batches", type=int, default=None, help="evaluate only the first N batches")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--lpips-net", default="alex", choices=LPIPS_NETS)
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also: VQLEARN_DEBUG=1)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: _main(args), args.debug)


def _main(args: argparse.Namespace) -> int:
    for flag, value in (("--batch-size", args.batch_size), ("--max-batches", args.max_batches),
                        ("--image-size", args.image_size)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be an integer >= 1, got {value}")
    device = runtime.pick_device(args.device)
    state = load_checkpoint(args.checkpoint, map_location=device)
    model, config = model_from_state(state, args.checkpoint, device)
    step = state.get("step")
    data = config.data
    trained_size = data.image_size or dataset_spec(data.name).image_size
    if args.data is not None and args.data != data.name:
        dataset_spec(args.data)  # an unknown name is an error that lists the names
        data.image_size = None  # the new dataset's own size, unless --image-size says otherwise
        if dataset_spec(args.data).image_size is None:
            data.image_size = trained_size
    data.name = args.data or data.name
    data.root = args.root or data.root
    data.image_size = args.image_size or data.image_size
    split = args.split or data.val_split
    check_data_paths(config.data, EVALUATE_FLAGS)
    dataset = build_dataset(data.name, split, image_size=data.image_size, root=data.root, augment=False)
    channels = dataset[0].shape[0]
    if channels != model.in_channels:
        raise DataError(f"--data {data.name} has {channels}-channel images but the checkpoint's model takes "
                        f"{model.in_channels}; evaluate it on a dataset like the one it was trained on")
    lpips_model = load_metric_lpips(args.lpips_net, device)
    result = evaluate_model(model, dataset, args.batch_size, args.max_batches, device, lpips_model=lpips_model)
    result.update({"data": data.name, "split": split, "step": step})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
