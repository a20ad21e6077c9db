"""``python -m visualizr.export``: build (or confirm up to date) the model repository.

With no arguments it exports every family's embedded tiny demo into the repository named by
``VISUALIZR_MODEL_REPOSITORY`` (default ``model_repository/``); ``--family F --weights DIR`` exports a local
diffusers folder of family F. When the build stamps match it returns at once, without importing torch.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from visualizr.engines.manifest import DEFAULT_PRECISION, PRECISIONS
from visualizr.export.build_stamp import DEFAULT_FAMILY, TINY_WEIGHTS, ExportOptions, is_up_to_date
from visualizr.export.characters import PICTURES_DIRNAME, write_builtin_pictures
from visualizr.export.triton_config import BACKEND_ONNXRUNTIME, BACKENDS
from visualizr.families import FAMILY_NAMES
from visualizr.pipeline.cpu_engines import AUTO
from visualizr.pipeline.engine_calibration import requested_engine
from visualizr.settings import Settings


def _model_id(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
        raise argparse.ArgumentTypeError(f"{value!r}: use lower-case letters, digits, '_' and '-'")
    return value


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: a positive integer")
    return int(value)


def parse_args(argv: list[str] | None = None) -> list[ExportOptions]:
    """One ExportOptions per model to build: every family's tiny demo by default, else the one asked for."""
    parser = argparse.ArgumentParser(
        prog="python -m visualizr.export", description="Build the Triton model repository (skipped when up to date)."
    )
    parser.add_argument(
        "--family",
        choices=FAMILY_NAMES,
        help=f"model family (default: every family's tiny demo; {DEFAULT_FAMILY} with --weights)",
    )
    parser.add_argument(
        "--weights",
        default=TINY_WEIGHTS,
        help="'tiny' (embedded random demo) or a local diffusers folder of the family",
    )
    parser.add_argument("--motion-adapter", type=Path, help="AnimateDiff: local MotionAdapter folder or checkpoint")
    parser.add_argument(
        "--ip-adapter",
        type=Path,
        help="AnimateDiff: a local IP-Adapter folder in the h94/IP-Adapter layout (default for the tiny demo: its own)",
    )
    parser.add_argument(
        "--keyframe-weights",
        type=Path,
        help="Stable Video Diffusion: a local Stable Diffusion folder that makes the first frame of text requests",
    )
    parser.add_argument("--model-id", type=_model_id, help="public model id == Triton name (default: the family)")
    parser.add_argument("--model-name", help="display name in the model card")
    parser.add_argument("--repository", type=Path, help="model repository (default: VISUALIZR_MODEL_REPOSITORY)")
    parser.add_argument("--backend", choices=BACKENDS, default=BACKENDS[0])
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULT_PRECISION,
        help="TensorRT engine precision (fp8 needs an FP8-quantised ONNX)",
    )
    parser.add_argument(
        "--instances-per-gpu", type=_positive, default=1, help="instances of each TensorRT component per GPU"
    )
    parser.add_argument("--force", action="store_true", help="re-export even when the build stamp matches")
    args = parser.parse_args(argv)
    tiny = args.weights == TINY_WEIGHTS
    families = [args.family] if args.family else list(FAMILY_NAMES) if tiny else [DEFAULT_FAMILY]
    if len(families) > 1 and (args.model_id or args.model_name):
        parser.error("--model-id and --model-name name one model: give --family too")
    if args.motion_adapter is not None and families != ["animatediff"]:
        parser.error("--motion-adapter is for --family animatediff")
    if args.motion_adapter is not None and not args.motion_adapter.exists():
        parser.error(f"--motion-adapter {args.motion_adapter}: not found")
    if args.ip_adapter is not None:
        from visualizr.export.families.animatediff.ip_adapter import weights_file

        if families != ["animatediff"]:
            parser.error("--ip-adapter is for --family animatediff")
        try:
            weights_file(args.ip_adapter)
        except FileNotFoundError as error:
            parser.error(f"--ip-adapter: {error}")
    if args.keyframe_weights is not None:
        if families != ["stable-video-diffusion"] or tiny:
            parser.error("--keyframe-weights is for --family stable-video-diffusion with --weights")
        from visualizr.export.families.stable_video_diffusion.loader import check_keyframe_folder

        problem = check_keyframe_folder(args.keyframe_weights)
        if problem:
            parser.error(f"--keyframe-weights {args.keyframe_weights}: {problem}")
    if not tiny:
        from visualizr.export.family import family_export

        problem = family_export(families[0]).check_weights(Path(args.weights))
        if problem:
            parser.error(f"--weights {args.weights}: {problem}")
    repository = (args.repository or Settings.from_env().model_repository).resolve()
    weights = args.weights if tiny else str(Path(args.weights).resolve())
    return [
        ExportOptions(
            repository=repository,
            family=family,
            weights=weights,
            motion_adapter=args.motion_adapter.resolve() if args.motion_adapter else None,
            keyframe_weights=args.keyframe_weights.resolve() if args.keyframe_weights else None,
            ip_adapter=args.ip_adapter.resolve() if args.ip_adapter else None,
            model_id=args.model_id,
            model_name=args.model_name,
            backend=args.backend,
            precision=args.precision,
            instances_per_gpu=args.instances_per_gpu,
            force=args.force,
        )
        for family in families
    ]


def build(options: ExportOptions) -> int:
    started = time.perf_counter()
    if not options.force and is_up_to_date(options):
        elapsed = time.perf_counter() - started
        print(f"export: {options.id} in {options.repository} is up to date ({elapsed:.2f} s)")
        return 0
    from visualizr.export.repository import build_repository

    print(f"export: building {options.id} ({options.family}, {options.weights}, {options.backend}) "
          f"in {options.repository}")
    try:
        report = build_repository(options)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 1
    for model_name in report.exported:
        errors = ", ".join(f"{e:.1e}" for e in report.verification[model_name])
        seconds = report.seconds[model_name]
        print(f"  exported {model_name} in {seconds:.1f} s (onnxruntime vs torch: rel. error {errors})")
    for model_name in report.reused:
        print(f"  reused cached ONNX of {model_name}")
    for model_name in report.traced:
        print(f"  traced {model_name} to TorchScript in {report.seconds[f'{model_name} torchscript']:.1f} s")
    for model_name, reason in report.untraceable.items():
        print(f"  no TorchScript for {model_name} (no torch engine): {reason}")
    for model_name, reasons in report.engines_built.items():
        seconds = report.seconds[f"{model_name} engine"]
        print(f"  built TensorRT engine of {model_name} in {seconds:.1f} s ({'; '.join(reasons)})")
    for model_name in report.engines_reused:
        print(f"  reused TensorRT engine of {model_name} (manifest matches)")
    print(f"  wrote {len(report.written)} file(s); done in {time.perf_counter() - started:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    models = parse_args(argv)
    # the tiny demos' networks: a real model's default request takes a CPU engine seconds to minutes per call, so its
    # stubs measure at their first start (each the network it serves) rather than the export all of them at once
    demos = [options for options in models if options.backend == BACKEND_ONNXRUNTIME and options.is_tiny]
    built_demos = [options for options in demos if options.force or not is_up_to_date(options)]
    status = max(build(options) for options in models)
    if status:
        return status  # a refused export writes nothing
    for repository in {options.repository for options in models}:  # cheap (Pillow): written or confirmed each time
        written = write_builtin_pictures(repository)
        print(f"export: built-in characters' pictures in {repository / PICTURES_DIRNAME}: {len(written)} written")
    if requested_engine() == AUTO:  # an engine named by VISUALIZR_CPU_ENGINE serves unmeasured
        for repository in {options.repository for options in built_demos}:
            ids = [options.id for options in built_demos if options.repository == repository]
            calibrate_cpu_engines(repository, ids)
    return 0


def calibrate_cpu_engines(repository: Path, model_ids: list[str]) -> None:
    """Each CPU component network of the models just built gets its engine measured now, while nothing else runs
    (rather than by a starting server's stubs side by side), in a process of its own: one that has not run torch
    yet, as a stub's has not. A failure leaves the measurement to the stubs."""
    command = [sys.executable, "-m", "visualizr.export.calibrate", str(repository), *model_ids]
    sys.stdout.flush()  # this process's lines before the measurement's
    if subprocess.run(command, check=False).returncode:
        print("export: the CPU engines were not measured; each component model measures its own when it loads")


if __name__ == "__main__":
    sys.exit(main())
