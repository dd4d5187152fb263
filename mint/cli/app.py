"""The web app's command: `mint app MODEL` opens the Gradio app on a MINT folder or Hub repo id (docs/app.md)."""

import argparse

from mint.cli.arguments import positive_int, torch_device


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `app` to the `mint` parser's sub-commands."""
    app = commands.add_parser(
        "app", help="open the web app on a MINT model",
        description="A web page to try a MINT model on your own clips: captioning and instructions (stage 2), "
                    "zero-shot classification, text-to-audio retrieval (stage 1). Runs on this machine, offline.")
    app.add_argument("model", help="a MINT folder or Hub repo id (stage 2, or stage 1 alone)")
    app.add_argument("--stage1", help="the stage-1 folder or repo id the stage-2 model was trained from: adds "
                                      "embedding scores and retrieval")
    app.add_argument("--host", default="127.0.0.1", help="the address to serve on (0.0.0.0: every interface)")
    app.add_argument("--port", type=positive_int, default=7860, help="the port to serve on (default 7860)")
    app.add_argument("--share", choices=("yes", "no"), default="no",
                     help="also serve through a public gradio.live link (needs the internet; default no)")
    app.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda where available, else cpu)")
    app.set_defaults(handler=app_command)


def app_command(args: argparse.Namespace) -> None:
    """`mint app`: builds the app and serves it until interrupted."""
    if args.port > 65535:
        raise ValueError(f"--port must be at most 65535, got {args.port}.")
    from mint.app import build_app

    blocks = build_app(args.model, stage1=args.stage1, device=torch_device(args.device))
    blocks.launch(server_name=args.host, server_port=args.port, share=args.share == "yes")
