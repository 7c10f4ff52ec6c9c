"""The example scripts: valid shell, and every option they give adapt and simdata exists (an
example is run by hand, for half an hour: a renamed option must fail here, not at minute 20)."""
from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((REPO / "examples").glob("*.sh"))


def commands(text: str):
    """(tool, words) of every `"$BIN/adapt" ...` and `"$BIN/simdata" ...` command of a shell
    script, its continuation lines joined and its option variables (NAME="..." or
    NAME=${NAME:-...}, used unquoted as $NAME) replaced by the words the script gives them."""
    text = re.sub(r"\\\n", " ", text)
    values = {m.group(1): (m.group(2) if m.group(2) is not None else m.group(3)).split()
              for m in re.finditer(r'^(\w+)=(?:"([^"$]*)"|\$\{\w+:-([^}$]*)\})\s*(?:#.*)?$', text, re.M)}
    for line in text.splitlines():
        for m in re.finditer(r'"\$BIN/(adapt|simdata)"\s+([^|;&]*)', line):
            yield m.group(1), [v for w in m.group(2).split()
                               for v in (values.get(w[1:], [w]) if w.startswith("$") else [w])]


def options_of(parser: argparse.ArgumentParser, words: list[str]) -> tuple[str, set[str]]:
    """The (sub)command the leading words name, and the long options it takes."""
    name = parser.prog
    for word in words:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            break
        parser, name = subs[0].choices[word], f"{name} {word}"
    return name, {s for a in parser._actions for s in a.option_strings}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_scripts_parse_and_use_existing_options(script):
    from adapt.cli import build_parser as adapt_parser
    from simdata.cli import build_parser as simdata_parser

    subprocess.run(["bash", "-n", str(script)], check=True)
    parsers = {"adapt": adapt_parser(), "simdata": simdata_parser()}
    used = list(commands(script.read_text()))
    assert used, f"{script.name} runs no adapt or simdata command"
    for tool, words in used:
        name, known = options_of(parsers[tool], words)
        unknown = [w.split("=")[0] for w in words if w.startswith("--") and w.split("=")[0] not in known]
        assert not unknown, f"{script.name}: {name} has no option {', '.join(unknown)}"


def test_unknown_options_are_found():
    from adapt.cli import build_parser

    words = 'train spigan --source x --perceptual task --no-such-option 3'.split()
    name, known = options_of(build_parser(), words)
    assert name.endswith("train spigan") and "--perceptual" in known and "--no-such-option" not in known
    script = 'SIZE="--height 120 --crop 96"\nA=${A:-3}\n"$BIN/adapt" eval RUN \\\n  $SIZE --data D > out.json\n'
    assert list(commands(script)) == [
        ("adapt", ["eval", "RUN", "--height", "120", "--crop", "96", "--data", "D", ">", "out.json"])]
