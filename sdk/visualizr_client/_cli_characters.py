"""``visualizr characters``: the character registry from the command line.

    visualizr characters list [--limit N --offset N]
    visualizr characters show CHARACTER_ID
    visualizr characters create NAME PICTURE [PICTURE ...] [--description TEXT] [--id CHARACTER_ID]
    visualizr characters delete CHARACTER_ID

Each prints the API's answer as JSON; ``visualizr animate CHARACTER_ID`` animates one.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import msgspec

from visualizr_client._client import VisualizrClient

EXIT_OK = 0


def _show(value: Any, out: TextIO) -> int:
    out.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")
    out.flush()
    return EXIT_OK


def _picture(path: str) -> str:
    if not Path(path).is_file():
        raise ValueError(f"picture file not found: {path}")
    return path


def _handler(call: Callable[[VisualizrClient, argparse.Namespace], Any]) -> Callable[..., int]:
    return lambda client, args, out, err: _show(call(client, args), out)


def add_characters_command(commands: Any) -> None:
    characters = commands.add_parser("characters", help="list, show, create or delete characters")
    actions = characters.add_subparsers(dest="action", required=True, metavar="ACTION")
    listed = actions.add_parser("list", help="list the characters (built-ins first)")
    listed.add_argument("--limit", type=int)
    listed.add_argument("--offset", type=int)
    listed.set_defaults(handler=_handler(lambda client, args: client.list_characters(args.limit, args.offset)))
    shown = actions.add_parser("show", help="one character: pictures, videos using it")
    shown.add_argument("character_id")
    shown.set_defaults(handler=_handler(lambda client, args: client.get_character(args.character_id)))
    created = actions.add_parser("create", help="register a character with one to four reference pictures")
    created.add_argument("name")
    created.add_argument("pictures", nargs="+", help="PNG, JPEG, WebP or GIF files (1-4)")
    created.add_argument("--description", help="what the character looks like (it shapes the prompt)")
    created.add_argument("--id", dest="character_id", help="its id (default: chosen by the server)")
    created.set_defaults(
        handler=_handler(
            lambda client, args: client.create_character(
                args.name, [_picture(p) for p in args.pictures], args.description, args.character_id
            )
        )
    )
    deleted = actions.add_parser("delete", help="delete a character (its videos stay)")
    deleted.add_argument("character_id")
    deleted.set_defaults(handler=_handler(lambda client, args: client.delete_character(args.character_id)))
