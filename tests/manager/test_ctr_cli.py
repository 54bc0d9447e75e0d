"""pyctr's command line: the parser built for one verb parses that verb exactly as the whole one."""
import argparse

import pytest

from pyctr import cli


def test_known_verbs_are_the_parsers_verbs():
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == cli._VERBS


@pytest.mark.parametrize("argv", [
    ["pull", "--insecure", "-q", "--no-unpack", "localhost:5000/a/b:1"],
    ["--root", "/r", "pull", "--platform", "linux/arm64", "busybox"],
    ["--root=/r", "--allow-device-nodes", "bundle", "-t", "img", "/b", "--", "sh", "-c", "true"],
    ["--ro", "/r", "image", "prune", "-a"],
    ["rmi", "-f", "a", "b"],
    ["save", "--format", "oci-archive", "-o", "x.tar", "img"],
    ["bundle", "img", "/b", "sh", "-c", "x"], ["bundle", "-t", "img", "/b", "ls", "-l", "--all"],
    ["umount", "/b"], ["unbundle", "/b"], ["images", "--format", "json"],
])
def test_one_verb_parser_parses_as_the_whole_one(argv):
    verb = cli._verb(argv)
    assert verb in cli._VERBS
    assert vars(cli.build_parser(verb).parse_args(argv)) == vars(cli.build_parser().parse_args(argv))


@pytest.mark.parametrize("argv, verb", [([], None), (["--version"], None), (["--root", "pull"], None),
                                        (["--", "images"], "images"), (["-h"], None), (["nope"], "nope")])
def test_verb_of_argv(argv, verb):
    assert cli._verb(argv) == verb


@pytest.mark.parametrize("argv, command", [
    (["bundle", "img", "/b", "sh", "-c", "x"], ["sh", "-c", "x"]),
    (["bundle", "-t", "img", "/b", "--", "ls", "-t"], ["ls", "-t"]),
    (["bundle", "img", "/b", "--root", "/x"], ["--root", "/x"]),
    (["bundle", "img", "/b"], []),
])
def test_everything_after_the_image_is_the_command(argv, command):
    """Parsing stops at the positionals, as Docker's does at IMAGE: `-c` is the command's."""
    args = cli.build_parser("bundle").parse_args(argv)
    assert cli.images.command_of(args.command) == command
    assert args.tty == ("-t" in argv[:2])
