"""`privsynth reader-study`: a real-or-synthetic reader study in the browser."""

import argparse
from pathlib import Path


def add_parser(commands) -> None:
    reader = commands.add_parser(
        "reader-study", help="real-or-synthetic reader study in the browser (loopback only)"
    )
    reader.add_argument("run_dir", help="a finished run folder")
    reader.add_argument("--images", type=int, default=50, help="half real, half synthetic")
    reader.add_argument("--port", type=int, default=8765, help="0 = any free port")
    reader.add_argument("--seed", type=int, default=0, help="which images are drawn")
    reader.add_argument("--score", action="store_true", help="score the answers and exit")
    reader.set_defaults(handler=cmd_reader_study)


def cmd_reader_study(args: argparse.Namespace) -> int:
    from study.reader import create_study, open_study, score
    from study.reader_server import serve

    if args.score:
        study = open_study(Path(args.run_dir))
        result = score(study)
        print(f"{'reader':<20} {'answered':>8} {'correct':>7} {'accuracy':>8} {'p (binomial)':>12}")
        for reader, row in [*result["readers"].items(), ("(all readers)", result["pooled"])]:
            accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
            print(
                f"{reader:<20} {row['answered']:>8} {row['correct']:>7} {accuracy:>8} "
                f"{row['p_value']:>12.4g}"
            )
        print("p: two-sided exact binomial test against guessing (accuracy 0.5)")
        print(f"scores: {study.scores_path}")
        return 0
    study = create_study(Path(args.run_dir), args.images, args.seed)
    server = serve(study, args.port)
    print(f"reader study of {len(study.images)} images: http://127.0.0.1:{server.server_port}/")
    print("answers are saved as they are given; Ctrl-C stops the server", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
