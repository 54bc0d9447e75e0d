"""`pyctr build`: a verb group of one; its flags and the call into the builder are pyctr.build.cli."""
VERBS = frozenset({"build"})
USAGE_EXIT = 125   # docker build's status for a bad flag


class _Subparsers:
    """What pyctr.build.cli.add_parser expects (an argparse subparsers object), over verb_parser."""

    def __init__(self, verb_parser):
        self.add_parser = verb_parser


def add_parsers(verb_parser):
    from pyctr.build import cli
    cli.add_parser(_Subparsers(verb_parser))
