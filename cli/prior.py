"""`privsynth prior build`: a public prior from public images (no privacy, no epsilon)."""

import argparse
import shlex
from pathlib import Path

from common.config import RESOLUTIONS, load_config
from common.errors import UserError


def add_parser(commands) -> None:
    prior = commands.add_parser(
        "prior", help="build a public prior: GAN weights trained on public images only"
    )
    actions = prior.add_subparsers(dest="prior_command", required=True)
    build = actions.add_parser(
        "build", help="train the generator and discriminator without privacy on public images"
    )
    build.add_argument("public", help="a .npz of public grayscale images (key `images`)")
    build.add_argument("--out", required=True, help="the prior's folder, e.g. priors/cxr-28")
    build.add_argument("--resolution", type=int, required=True, choices=RESOLUTIONS)
    build.add_argument(
        "--licence", required=True, help="the public data's licence, recorded with the prior"
    )
    build.add_argument("--steps", type=int, default=2000, help="discriminator steps")
    build.add_argument(
        "--config",
        default="quickstart",
        help="preset or YAML whose model and training sections the prior uses",
    )
    build.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    build.add_argument(
        "--generator-ema",
        type=float,
        default=0.0,
        help="keep a moving average of the generator's weights with this decay per "
        "discriminator step (e.g. 0.999); 0 keeps the last weights",
    )
    build.add_argument(
        "--classes",
        default="",
        metavar="NAME,...",
        help="train on the public file's labels (`labels` or `train_labels`), the sites' "
        "classes in column order; a run starts from the prior only if its data has exactly "
        "these classes. Without it the prior learns from the images alone",
    )
    build.add_argument(
        "--multi-label",
        action="store_true",
        help="with --classes: the labels are 0/1 columns, several may be set at once",
    )
    build.add_argument("--seed", type=int, default=0)
    build.set_defaults(handler=cmd_prior_build)


def _command(args: argparse.Namespace) -> str:
    """The command line that builds this prior again, every option spelled out."""
    words = ["privsynth", "prior", "build", args.public, "--out", args.out]
    words += ["--resolution", str(args.resolution), "--licence", args.licence]
    words += ["--steps", str(args.steps), "--config", args.config, "--seed", str(args.seed)]
    if args.generator_ema:
        words += ["--generator-ema", str(args.generator_ema)]
    if args.classes:
        words += ["--classes", args.classes] + (["--multi-label"] if args.multi_label else [])
    for override in args.set:
        words += ["--set", override]
    return shlex.join(words)


def cmd_prior_build(args: argparse.Namespace) -> int:
    from common.device import resolve_device
    from common.prior.build import build_prior

    if args.multi_label and not args.classes:
        raise UserError("--multi-label needs --classes: name the public labels' columns")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out}: not empty; choose a new folder for the prior")
    config = load_config(args.config, [*args.set, f"data.resolution={args.resolution}"])
    digest = build_prior(
        Path(args.public),
        out,
        config,
        licence=args.licence,
        steps=args.steps,
        seed=args.seed,
        device=resolve_device(config.runtime.device),
        command=_command(args),
        generator_ema=args.generator_ema,
        classes=tuple(name.strip() for name in args.classes.split(",")) if args.classes else (),
        multi_label=args.multi_label,
    )
    print(f"{out}: prior at {args.resolution} px, sha256 {digest}")
    return 0
