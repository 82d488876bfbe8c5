"""The shared_server fixture's process: an instance served as `intake serve` serves it, with
the tests' pseudo-locale added to its languages.

usage: serve_pseudo.py INSTANCE_DIR PSEUDO_CATALOGUES LANGUAGE PORT
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from intake import config as config_mod
from intake.cli import _serve  # the very code path of `intake serve`


def main(instance_dir: str, catalogues: str, language: str, port: str) -> None:
    config = config_mod.load(Path(instance_dir))
    config = dataclasses.replace(
        config, languages=(*config.languages, language), extra_translations=(Path(catalogues),)
    )
    _serve(config, "127.0.0.1", int(port), 4)


if __name__ == "__main__":
    main(*sys.argv[1:])
