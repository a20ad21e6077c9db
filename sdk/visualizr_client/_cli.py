"""``visualizr``: the command line of the Visualizr API.

    visualizr generate "a red balloon" --out clip.mp4 --frames 8 --fps 8 --seed 42
    visualizr from-image photo.png "gentle swaying in the wind" --duration 2 --strength 0.7 --out clip.mp4
    visualizr animate assistant --action greeting --emotion happy --resolution 256x256 --out hello.mp4
    visualizr quote "a red balloon" --frames 8     (queue position, predicted wait and run; no job made)
    visualizr status video_req_...        visualizr cancel video_req_...
    visualizr models [MODEL_ID]           visualizr videos --limit 10
    visualizr characters [list|show|create|delete] ...  (``_cli_characters``)
    visualizr health

Global options: ``--url`` (env VISUALIZR_URL, default http://localhost:8002), ``--api-key`` (env
VISUALIZR_API_KEY), ``--json``. The job commands (generate, from-image, animate) follow the job on stderr and print
a summary with the MP4's absolute path, or with ``--json`` one JSON object and nothing else; ``--no-wait`` prints
the request id (or the accepted JSON) and exits. ``COMMAND --help`` shows each option's default and limits, read
from the model card when the server answers. ``models`` and ``videos`` print aligned tables (``--json``: the
API's JSON); the other commands print JSON. Progress and errors go to stderr.
Exit codes: 0 ok, 1 API / connection error, 2 usage (a missing input file too), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import msgspec

from visualizr_client import _core
from visualizr_client import models as m
from visualizr_client._cli_characters import add_characters_command
from visualizr_client._cli_options import (
    ANIMATE_FLAGS,
    FROM_IMAGE_FLAGS,
    GENERATE_FLAGS,
    Flag,
    add_flags,
    card_for_help,
)
from visualizr_client._cli_tables import models_table, videos_table
from visualizr_client._client import VisualizrClient
from visualizr_client._errors import VisualizrAPIError, VisualizrConnectionError, VisualizrError
from visualizr_client._progress import ProgressBar

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

CONNECTION_HINT = (
    "hint: no Visualizr API answered at {url}: start one (make serve) or point the CLI at yours with "
    "--url URL or VISUALIZR_URL=URL"
)


def add_job_command(
    commands: Any, name: str, help_text: str, flags: dict[str, Flag], handler: Handler, card: m.ModelDetail | None
) -> argparse.ArgumentParser:
    """A command that submits one job, follows its progress on stderr and downloads the MP4."""
    command = commands.add_parser(name, help=help_text, description=help_text)
    command.add_argument("--out", "-o", metavar="PATH", help="where to write the MP4 (default: ./<request_id>.mp4)")
    add_flags(command, flags, card)
    command.add_argument("--no-wait", action="store_true", help="print the request id and exit (default: wait)")
    command.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object and nothing else"
    )
    command.add_argument("--timeout", type=float, default=600, help="give up after this many seconds (default 600)")
    command.add_argument(
        "--poll-interval", type=float, default=1.0, help="seconds between polls without WebSocket (default 1)"
    )
    command.add_argument("--no-websocket", action="store_true", help="poll the status instead of the WebSocket")
    command.set_defaults(handler=handler, flags=flags)
    return command


def build_parser(card: m.ModelDetail | None = None) -> argparse.ArgumentParser:
    """``card``: the model card whose limits the job commands' help shows (None: help without them)."""
    parser = argparse.ArgumentParser(prog="visualizr", description="Command line of the Visualizr video API.")
    parser.add_argument(
        "--url",
        default=os.environ.get("VISUALIZR_URL", _core.DEFAULT_BASE_URL),
        help="API base URL (env VISUALIZR_URL; default %(default)s)",
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("VISUALIZR_API_KEY"), help="API key (env VISUALIZR_API_KEY)"
    )
    parser.add_argument(
        "--http-timeout", type=float, default=_core.DEFAULT_TIMEOUT, help="seconds per HTTP call (default %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="job commands: print one JSON object and nothing else")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_job_command(
        commands,
        "generate",
        "generate a video, follow its progress and download the MP4",
        GENERATE_FLAGS,
        lambda client, args, out, err: run_job(
            client, client.generate_video(args.prompt, **job_params(args)), args, out, err
        ),
        card,
    ).add_argument("prompt", help="what the video shows")
    from_image = add_job_command(
        commands,
        "from-image",
        "animate an image (PNG, JPEG, WebP, GIF) and download the MP4",
        FROM_IMAGE_FLAGS,
        lambda client, args, out, err: run_job(
            client,
            client.generate_video_from_image(
                existing_file(args.image), args.motion_prompt, end_image=end_image(args), **job_params(args)
            ),
            args,
            out,
            err,
        ),
        card,
    )
    from_image.add_argument("image", help="path of the source image")
    from_image.add_argument("motion_prompt", help='the motion, e.g. "gentle swaying in the wind"')
    from_image.add_argument(
        "--end-image", metavar="PATH", help="the video's last frame (keyframes: models whose card allows it)"
    )
    add_job_command(
        commands,
        "animate",
        "animate a character of the registry (assistant, robot, ... or your own) and download the MP4",
        ANIMATE_FLAGS,
        lambda client, args, out, err: run_job(
            client, client.generate_character_animation(args.character_id, **job_params(args)), args, out, err
        ),
        card,
    ).add_argument("character_id", help="a built-in (assistant, robot, ...) or a character of yours")

    quote = commands.add_parser("quote", help="what `generate` would get now (wait, run, fits), making no job")
    quote.add_argument("prompt", help="what the video shows")
    add_flags(quote, GENERATE_FLAGS, card)
    quote.set_defaults(
        handler=lambda client, args, out, err: show(client.quote(args.prompt, **job_params(args)), out),
        flags=GENERATE_FLAGS,
    )

    status = commands.add_parser("status", help="status of a generation request")
    status.add_argument("request_id")
    status.set_defaults(handler=lambda client, args, out, err: show(client.get_status(args.request_id), out))

    cancel = commands.add_parser("cancel", help="cancel a generation request")
    cancel.add_argument("request_id")
    cancel.set_defaults(handler=lambda client, args, out, err: show(client.cancel(args.request_id), out))

    models = commands.add_parser("models", help="list the models, or show one")
    models.add_argument("model_id", nargs="?")
    models.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the API's JSON")
    models.set_defaults(handler=cmd_models)

    videos = commands.add_parser("videos", help="list generated videos")
    videos.add_argument("--limit", type=int)
    videos.add_argument("--offset", type=int)
    videos.add_argument("--model")
    videos.add_argument("--start-date", help="ISO 8601")
    videos.add_argument("--end-date", help="ISO 8601")
    videos.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the API's JSON")
    videos.set_defaults(handler=cmd_videos)

    add_characters_command(commands)

    health = commands.add_parser("health", help="service health")
    health.set_defaults(handler=lambda client, args, out, err: show(client.health(), out))
    return parser


def show(value: Any, out: TextIO) -> int:
    out.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")
    out.flush()
    return EXIT_OK


def show_text(text: str, out: TextIO) -> int:
    out.write(text)
    out.flush()
    return EXIT_OK


def cmd_models(client: VisualizrClient, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """A table of the models (``--json``: the list as JSON); one model's details as JSON."""
    if args.model_id:
        return show(client.get_model(args.model_id), out)
    models = client.list_models()
    return show({"models": models}, out) if args.json else show_text(models_table(models), out)


def cmd_videos(client: VisualizrClient, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    videos = client.list_videos(args.limit, args.offset, args.model, args.start_date, args.end_date)
    return show(videos, out) if args.json else show_text(videos_table(videos), out)


def follow(
    client: VisualizrClient, request_id: str, bar: ProgressBar, timeout: float, poll_interval: float, websocket: bool
) -> m.GenerationStatus:
    """Drive the bar until the job ends (WebSocket first, polling if the socket fails); the final status, or
    GenerationFailedError / GenerationCancelledError / GenerationTimeoutError."""
    deadline = _core.Deadline(timeout)
    if websocket:
        try:
            for message in client.stream_progress(request_id, timeout=deadline.remaining()):
                if isinstance(message, m.ProgressMessage):
                    bar.update(message.progress, message.current_step, message.estimated_remaining_seconds)
                else:
                    break
        except VisualizrConnectionError as exc:
            bar.note(f"WebSocket unavailable ({exc}); polling instead")
    while True:
        job = client.get_status(request_id)
        bar.update(job.progress, job.current_step or job.status, job.estimated_remaining_seconds)
        if _core.finished(job) is not None:
            return job
        if deadline.expired:
            raise deadline.error(request_id, job.status)
        time.sleep(deadline.sleep_for(poll_interval))


def job_params(args: argparse.Namespace) -> dict[str, Any]:
    return {spec.field: getattr(args, flag.replace("-", "_")) for flag, spec in args.flags.items()}


def end_image(args: argparse.Namespace) -> str | None:
    return existing_file(args.end_image) if args.end_image else None


def existing_file(path: str) -> str:
    if not Path(path).is_file():
        raise ValueError(f"image file not found: {path}")
    return path


def summary(final: m.GenerationStatus, path: Path) -> str:
    """One line for a person: where the MP4 is and what it holds."""
    meta = final.result.metadata if final.result else None
    size = f"{path.stat().st_size / 1024:.1f} KB"
    shape = f", {meta.resolution}, {meta.num_frames} frames at {meta.fps:g} fps" if meta and meta.fps else ""
    took = f" in {final.processing_time_seconds:g} s" if final.processing_time_seconds is not None else ""
    return f"saved {path} ({size}{shape}){took}"


def run_job(
    client: VisualizrClient, job: m.GenerationAccepted, args: argparse.Namespace, out: TextIO, err: TextIO
) -> int:
    if args.no_wait:
        if args.json:
            return show(job, out)
        out.write(f"{job.request_id}\n")
        return EXIT_OK
    if not args.json:
        out.write(f"request_id: {job.request_id}\n")
        out.flush()
    bar = ProgressBar(err)
    try:
        final = follow(client, job.request_id, bar, args.timeout, args.poll_interval, not args.no_websocket)
    except KeyboardInterrupt:
        bar.close()
        with contextlib.suppress(VisualizrError):
            client.cancel(job.request_id)
        err.write(f"interrupted: cancelled {job.request_id}\n")
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    if final.result is None:
        raise VisualizrError(f"{job.request_id} completed without a result")
    path = client.download(final.result.video_url, args.out or f"{job.request_id}.mp4").resolve()
    if not args.json:
        out.write(summary(final, path) + "\n")
        return EXIT_OK
    return show(
        {
            "request_id": final.request_id,
            "status": final.status,
            "output": str(path),
            "bytes": path.stat().st_size,
            "video_url": final.result.video_url,
            "processing_time_seconds": final.processing_time_seconds,
            "metadata": final.result.metadata,
        },
        out,
    )


Handler = Callable[[VisualizrClient, argparse.Namespace, TextIO, TextIO], int]


def main(argv: Sequence[str] | None = None) -> int:
    out, err = sys.stdout, sys.stderr
    argv = sys.argv[1:] if argv is None else list(argv)
    environment_url = os.environ.get("VISUALIZR_URL", _core.DEFAULT_BASE_URL)
    card = card_for_help(argv, environment_url, os.environ.get("VISUALIZR_API_KEY"))
    try:
        args = build_parser(card).parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler = args.handler
    try:
        with VisualizrClient(args.url, api_key=args.api_key, timeout=args.http_timeout) as client:
            return handler(client, args, out, err)
    except VisualizrAPIError as exc:
        err.write(f"error: {exc}\n")
        if exc.details is not None:
            err.write(f"details: {msgspec.json.encode(exc.details).decode()}\n")
        return EXIT_ERROR
    except VisualizrConnectionError as exc:
        err.write(f"error: {exc}\n{CONNECTION_HINT.format(url=args.url)}\n")
        return EXIT_ERROR
    except (VisualizrError, OSError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_ERROR
    except ValueError as exc:  # a malformed --url or id
        err.write(f"usage error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
