"""`resattn models`: the registered models with parameters, FLOPs and input size."""

from __future__ import annotations

import argparse
import json

from ..api.catalog import model_rows, weight_rows
from ..errors import UserError


def add_parser(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help,
                       description="List the registered models: parameters (with the default "
                                   "number of classes), forward FLOPs (multiply-accumulates, as "
                                   "the paper counts them) at the default input size, and the "
                                   "datasets of their published weights (--pretrained: details).")
    p.add_argument("--num-classes", type=int, default=None,
                   help="count with this many classes (default: each model's own)")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table",
                   help="how to print the list (default: %(default)s)")
    p.add_argument("--pretrained", action="store_true",
                   help="list the published weights instead: tag, test accuracy, training")
    p.add_argument("--flops", action="store_true",
                   help="count parameters and FLOPs anew by building every model (seconds) "
                        "instead of reading the shipped table")
    p.set_defaults(command=name)


def format_rows(rows: list[dict], markdown: bool) -> str:
    head = ("model", "params", "FLOPs", "input", "classes", "weights", "description")
    body = [(r["name"], f"{r['params'] / 1e6:.2f}M", f"{r['flops'] / 1e9:.3f}G",
             f"{r['input_size']}x{r['input_size']}", str(r["num_classes"]),
             ", ".join(t.split(".", 1)[1] for t in r["pretrained"]) or "-", r["description"])
            for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(b) + " |" for b in body])
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in [head, *body])


def format_weights(rows: list[dict]) -> str:
    width = max([len("tag")] + [len(r["tag"]) for r in rows])
    lines = [f"{'tag':<{width}}  test top-1  with flip TTA  trained"]
    for r in rows:
        lines.append(f"{r['tag']:<{width}}  {r['top1']:>10.2%}  {r['top1_tta']:>13.2%}  "
                     f"{r['trained']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.pretrained:
        rows = weight_rows()
        print(json.dumps(rows, indent=2) if args.format == "json" else format_weights(rows))
        return 0
    if args.num_classes is not None and args.num_classes < 1:
        raise UserError(f"--num-classes {args.num_classes} is not valid; it must be >= 1")
    rows = model_rows(args.num_classes, recount=args.flops)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        print(format_rows(rows, markdown=args.format == "markdown"))
    return 0
