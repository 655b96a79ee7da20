"""`privsynth certs`: a consortium's CA, the SuperLink's TLS certificate and site keys."""

import argparse
from pathlib import Path

from common.errors import UserError


def add_parser(commands) -> None:
    certs = commands.add_parser(
        "certs", help="create a CA, the SuperLink's TLS certificate and site keys"
    )
    certs.add_argument("out_dir", help="folder to write into (must not hold a CA yet)")
    certs.add_argument(
        "--host",
        action="append",
        help="address sites use for the SuperLink (repeatable; default 127.0.0.1 and localhost)",
    )
    certs.add_argument("--site", action="append", help="a site name (repeatable)")
    certs.add_argument("--sites", type=int, default=3, help="number of sites without --site")
    certs.add_argument("--days", type=int, default=365, help="validity in days")
    certs.set_defaults(handler=cmd_certs)


def cmd_certs(args: argparse.Namespace) -> int:
    from common.certs import write_consortium_credentials

    out_dir = Path(args.out_dir)
    if (out_dir / "ca.key").exists():
        raise UserError(f"{out_dir} already holds a CA; choose another folder or move it away")
    hosts = args.host or ["127.0.0.1", "localhost"]
    sites = args.site or [f"site-{i}" for i in range(args.sites)]
    for path in write_consortium_credentials(out_dir, hosts, sites, args.days):
        print(path)
    print(
        "keep ca.key and superlink.key on the coordinator; give each site its private key "
        "(sites/NAME) and ca.crt; register sites/NAME.pub with `flwr supernode register`"
    )
    return 0
