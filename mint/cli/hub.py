"""The Hub's commands: `mint hub space MODEL --output DIR` writes a Hugging Face Space folder serving the web app."""

import argparse


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `hub` (with its sub-command `space`) to the `mint` parser's sub-commands."""
    hub = commands.add_parser("hub", help="Hugging Face Hub folders",
                              description="Folders to push to the Hugging Face Hub.")
    actions = hub.add_subparsers(dest="hub_command", required=True, metavar="ACTION")
    space = actions.add_parser(
        "space", help="write a Space folder serving the web app on a model",
        description="Writes app.py, requirements.txt and README.md (the Space's configuration) of a Gradio Space "
                    "that serves `mint app` on a model of the Hub. Push the folder to a Space repository.")
    space.add_argument("model", help="the model's Hub repo id, owner/name")
    space.add_argument("--output", required=True, help="the Space folder to write")
    space.add_argument("--stage1", help="the Hub repo id of the stage-1 model (embedding scores, retrieval)")
    space.add_argument("--title", help="the Space's title (default: the model's name)")
    space.add_argument("--requirement", help="the package's line in requirements.txt, naming mint-audio (default: "
                                             "mint-audio at this version; e.g. 'mint-audio @ git+https://...')")
    space.add_argument("--overwrite", action="store_true", help="replace a Space folder written before")
    space.set_defaults(handler=space_command)


def space_command(args: argparse.Namespace) -> None:
    """`mint hub space`: writes the folder and prints its files."""
    from mint.app.space import write_space

    for path in write_space(args.model, args.output, stage1=args.stage1, title=args.title,
                            requirement=args.requirement, overwrite=args.overwrite):
        print(path)
