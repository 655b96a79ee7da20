"""`privsynth phantom`: phantom chest X-rays as a site's .npz, to try a deployment."""

import argparse
from pathlib import Path

from common.errors import UserError


def add_parser(commands) -> None:
    phantom = commands.add_parser(
        "phantom", help="write phantom chest X-rays as a site's .npz (to try a deployment)"
    )
    phantom.add_argument("out", help="the .npz file to write (MedMNIST layout)")
    phantom.add_argument("--patients", type=int, default=100)
    phantom.add_argument("--images-per-patient", type=int, default=4)
    phantom.add_argument("--seed", type=int, default=0, help="different per site")
    phantom.add_argument("--resolution", type=int, default=32, choices=(28, 32, 64, 128))
    phantom.set_defaults(handler=cmd_phantom)


def cmd_phantom(args: argparse.Namespace) -> int:
    from common.data.medmnist import write_medmnist
    from common.data.phantom import PhantomOptions, generate_phantom

    out = Path(args.out)
    if out.suffix != ".npz":
        raise UserError(f"{out}: give a path ending in .npz")
    data = generate_phantom(
        PhantomOptions(
            num_patients=args.patients, images_per_patient=args.images_per_patient, seed=args.seed
        ),
        args.resolution,
    )
    write_medmnist(data, out)
    print(f"{out}: {len(data)} phantom chest X-rays of {args.patients} patients")
    return 0
