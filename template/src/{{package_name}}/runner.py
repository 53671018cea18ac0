"""The workflows behind the CLI: fit, validate, test, predict, export and check, the same for every task.

Everything that can be wrong with the user's input (config, data folders, backbone name,
checkpoint path) is checked before a run directory is created, and raised as `ConfigError`.
What differs per task lives in the task's data module, model and prediction writer.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import logging
import os
import platform
import re
import time
import tomllib
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import torch
from lightning import Callback, Trainer, seed_everything
from lightning.fabric.plugins.environments.slurm import SLURMEnvironment
from lightning.fabric.plugins.environments.torchelastic import TorchElasticEnvironment
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.utilities import rank_zero_only

from . import PROGRAM, export
from .callbacks import LAST_CHECKPOINT, MetricsFile, build_callbacks
from .checkpoints import checkpoint_config, read_checkpoint
from .config import Config, ConfigError, RunStoppedError, TrainerConfig, first_line
from .data.datamodule import predict_dataloader
from .data.images import file_digest, list_images
from .files import write_atomic
from .loggers import build_logger
from .models import exportable
from .predictions import PredictionWriter
from .report import EvaluationReport
from .task import DataModule, Model

# A resumed fit continues in its run directory, and SplitDataModule restores the position in the
# epoch itself (its state_dict), which Lightning's check for resumable loaders does not look at.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
warnings.filterwarnings("ignore", message=r"You're resuming from a checkpoint that ended before the epoch ended")
# `ckpt_path="best"` takes the first ModelCheckpoint, which build_callbacks makes the monitored one.
warnings.filterwarnings("ignore", message=r'`.(validate|test)\(ckpt_path="best"\)` is called with Trainer configured')

log = logging.getLogger(__name__)

DISTRIBUTION = PROGRAM.replace("_", "-")
RUN_DIR_ENV = f"{PROGRAM.upper()}_RUN_DIR"
"""Set while `fit` runs, so that the DDP worker processes it launches join its run directory."""
HPC_CHECKPOINTS = "hpc_ckpt_*.ckpt"
"""What Lightning saves in the run directory when SLURM sends the requeue signal (SIGUSR1)."""


RUN_NAME = re.compile(r"^(\d{8}-\d{6})(?:-(\d+))?$")
"""A run directory's name, `<date>-<time>[-n]`: its order is the order the runs were started in."""


def last_checkpoint(output_dir: Path) -> Path:
    """`last.ckpt` of the newest run in `output_dir`: what `fit --resume last` continues."""
    runs = sorted(
        (match.group(1), int(match.group(2) or 0), folder)
        for folder in (output_dir.iterdir() if output_dir.is_dir() else [])
        if (match := RUN_NAME.match(folder.name)) and (folder / "config.yaml").is_file()
    )
    if not runs:
        raise ConfigError(f"--resume last: no run in output_dir {output_dir} to resume")
    newest = runs[-1][2]
    checkpoint = newest / "checkpoints" / LAST_CHECKPOINT
    if not checkpoint.is_file():
        raise ConfigError(
            f"--resume last: the newest run {newest} stopped before writing checkpoints/{LAST_CHECKPOINT}; "
            "start a new fit or resume an older run by path"
        )
    return checkpoint


def fit(config: Config, resume: Path | None = None) -> Path | None:
    """Train, then report on the best checkpoint on val, and on test when a test split exists;
    returns the run directory in the launching process, and None in the DDP worker processes that
    Lightning starts, so that only one reports.

    A new fit gets a new run directory, or when SLURM or torchrun started its processes, the one
    named after the job (`job_name`), which a restarted job continues (`_job_checkpoint`).
    Resuming (`resume`: a checkpoint) continues in the run directory the checkpoint belongs to,
    with its logger run, and exactly where it stopped: the data order, the random state and every
    counter come back from the checkpoint.
    """
    check_trainer_settings(config)
    inherited = os.environ.get(RUN_DIR_ENV)
    job = None if inherited else job_name()
    seed_everything(config.seed, workers=True, verbose=False)
    datamodule = DataModule(config.data, seed=config.seed)
    for path, problem in datamodule.undecodable.items():
        log.warning("data.root: %s does not decode (%s); left out (data.bad_images: skip)", path, problem)
    model = Model(config, **datamodule.class_info)
    run_dir = Path(inherited) if inherited else _run_dir_of(resume)
    if job is not None:
        run_dir = run_dir or config.output_dir / job
        resume = _job_checkpoint(run_dir, resume)
    resume_step = None
    if resume is not None:
        checkpoint = read_checkpoint(resume, "--resume")
        _check_resumable(resume, checkpoint, model, datamodule, config)
        resume_step = _logged_steps(checkpoint)
    if run_dir is None:
        run_dir = _new_run_dir(config.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # Under SLURM or torchrun every process gets here; Lightning reads each one's rank from the
    # launcher's variables (RANK, SLURM_PROCID) when it is imported.
    if not inherited and getattr(rank_zero_only, "rank", 0) == 0:
        write_atomic(run_dir / "config.yaml", config.to_yaml())
    logger = build_logger(config, run_dir, resume_step=resume_step)
    logger.log_hyperparams(config.flat())
    metrics_file = MetricsFile(run_dir / "metrics.json")
    report = EvaluationReport(config.report, config.seed, run_dir / "report", logger, metrics_file)
    trainer = _trainer(
        config,
        default_root_dir=run_dir,
        logger=logger,
        callbacks=[*build_callbacks(config, run_dir, metrics_file), report],
        use_distributed_sampler=False,  # EpochSampler shards the data itself, in a resumable order
    )
    os.environ[RUN_DIR_ENV] = str(run_dir)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
        best = None if config.trainer.fast_dev_run else "best"  # fast_dev_run keeps no checkpoint
        _validate_unlogged(trainer, model, datamodule, best)
        if datamodule.has_test_split:
            trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)
        logger.finalize("success")  # the report's pictures reach the logger's files
        _leave_process_group()
    finally:
        if not inherited:
            del os.environ[RUN_DIR_ENV]
    return run_dir if trainer.is_global_zero else None


def _validate_unlogged(trainer: Trainer, model: Model, datamodule: DataModule, checkpoint: str | None) -> None:
    """Validate `checkpoint` for the report and `metrics.json`, keeping its metrics out of the logger,
    which has them already from the epoch that checkpoint was written in."""
    loggers = trainer.loggers
    trainer.loggers = []
    try:
        trainer.validate(model, datamodule=datamodule, ckpt_path=checkpoint, verbose=False, weights_only=True)
    finally:
        trainer.loggers = loggers


def check_trainer_settings(config: Config) -> str:
    """Refuse an accelerator, device count, strategy or precision this machine cannot use, naming
    the key, before anything is written (Lightning would only fail once the fit has started).
    Returns what the settings come to here: `2 x CUDAAccelerator, 16-mixed`."""
    settings = config.trainer
    steps: dict[str, dict[str, Any]] = {
        "accelerator": {"accelerator": settings.accelerator},
        "devices": {"devices": settings.devices, "num_nodes": settings.num_nodes},
        "strategy": {"strategy": settings.strategy},
        "precision": {"precision": resolved_precision(settings)},
    }
    arguments: dict[str, Any] = {"logger": False, "enable_checkpointing": False, "enable_model_summary": False}
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.ERROR)  # the real Trainer reports the same devices and warnings again
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for key, values in steps.items():
                arguments.update(values)
                try:
                    trainer = Trainer(**arguments)
                except (MisconfigurationException, ValueError, RuntimeError, TypeError) as error:
                    got = getattr(settings, key)
                    raise ConfigError(f"trainer.{key}: {first_line(error)} (got {got!r})") from None
    finally:
        lightning_log.setLevel(level)
    return f"{trainer.num_devices} x {type(trainer.accelerator).__name__}, {trainer.precision}"


@dataclass
class CheckReport:
    """What `check` found: the environment, the data per split, and every problem (one line each)."""

    environment: list[tuple[str, str]] = field(default_factory=list)
    data_source: str = ""
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check(config: Config) -> CheckReport:
    """Everything `fit` needs, checked without training: the software and hardware, the trainer
    settings on this machine, and every file of `data.root` (each image decoded, each label read),
    with the label counts per split, classes missing from train/ and images shared between splits."""
    problems: list[str] = []
    report = CheckReport(environment=_environment(problems), problems=problems)
    try:
        report.environment.append(("trainer", check_trainer_settings(config)))
    except ConfigError as error:
        report.problems.append(str(error))
    data = config.data
    if data.root is None:
        sizes = f"train {data.synthetic_train_size}, val {data.synthetic_val_size}, test {data.synthetic_test_size}"
        report.data_source = f"synthetic, generated in code from seed {config.seed} ({sizes} images)"
        return report
    report.data_source = str(data.root)
    try:
        datamodule = DataModule(data.model_copy(update={"bad_images": "skip"}), seed=config.seed)
    except ConfigError as error:
        report.problems.append(str(error))
        return report
    report.problems += [f"data.root: {path} does not decode: {why}" for path, why in datamodule.undecodable.items()]
    report.label_counts = datamodule.label_counts()
    report.problems += [
        f"data.root: class {name} never occurs in {data.root / 'train'}"
        for name, count in report.label_counts.get("train", {}).items()
        if count == 0 and not name.startswith("(")
    ]
    report.problems += _duplicates_across_splits(datamodule.image_files())
    return report


def _environment(problems: list[str]) -> list[tuple[str, str]]:
    """Python, torch and its accelerators, and the installed version of each declared dependency."""
    cuda = torch.version.cuda
    rows = [
        ("python", platform.python_version()),
        ("platform", platform.platform()),
        ("torch build", f"CUDA {cuda}" if torch.version.cuda else "CPU only"),
    ]
    if torch.cuda.is_available():
        rows += [(f"cuda:{index}", torch.cuda.get_device_name(index)) for index in range(torch.cuda.device_count())]
    else:
        rows.append(("cuda", "not available"))
    if torch.backends.mps.is_available():
        rows.append(("mps", "available"))
    for name in _declared_dependencies():
        try:
            rows.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
            problems.append(f"dependency {name} is not installed (pip install -e .)")
    return rows


def _declared_dependencies() -> list[str]:
    """The names in `[project.dependencies]`: from the installed metadata, else from pyproject.toml."""
    try:
        requirements = [
            requirement
            for requirement in importlib.metadata.requires(DISTRIBUTION) or []
            if "extra ==" not in requirement
        ]
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        if not pyproject.is_file():
            return []
        requirements = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    return [re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0] for requirement in requirements]


def _duplicates_across_splits(files: dict[str, list[Path]]) -> list[str]:
    """One line per picture that is in two splits (same bytes), which would leak into evaluation."""
    places: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for split, paths in files.items():
        for path in paths:
            places[file_digest(path)].append((split, path))
    problems = []
    for copies in places.values():
        for (split, path), (other_split, other) in itertools.combinations(copies, 2):
            if split != other_split:
                problems.append(f"data.root: {path} ({split}) and {other} ({other_split}) are the same image")
    return problems


def evaluate(
    stage: Literal["validate", "test"], config: Config, checkpoint: Path, output: Path | None = None
) -> tuple[dict[str, float], Path]:
    """Validation or test metrics of a checkpoint on the configured data, and the folder of their
    report: `<output>/report/<split>`, by default in the checkpoint's run directory."""
    model = _load_model(checkpoint, config)
    datamodule = DataModule(config.data, seed=config.seed)
    if datamodule.class_info != model.class_info:
        raise ConfigError(f"data.root: classes {datamodule.class_info} differ from the checkpoint's {model.class_info}")
    if stage == "test" and not datamodule.has_test_split:
        raise ConfigError(f"data.root: {config.data.root} has no test/ split to test on")
    folder = output or _run_dir_of(checkpoint) or checkpoint.resolve().parent
    report = EvaluationReport(config.report, config.seed, folder / "report")
    trainer = _single_device_trainer(config, report)
    results = (
        trainer.validate(model, datamodule=datamodule, verbose=False)
        if stage == "validate"
        else trainer.test(model, datamodule=datamodule, verbose=False)
    )
    metrics = {name: float(value) for name, value in results[0].items()}
    return metrics, report.written["val" if stage == "validate" else "test"]


def predict(config: Config, checkpoint: Path, input_dir: Path, output_dir: Path, visualize: bool = False) -> Path:
    """Predict every image below `input_dir`; returns what the task's writer wrote under `output_dir`
    (with `visualize`, also each image with its prediction drawn on it, in `<output_dir>/annotated/`)."""
    files = list_images(input_dir)
    writer = PredictionWriter(input_dir, files, output_dir, visualize)
    model = _load_model(checkpoint, config)
    trainer = _single_device_trainer(config, writer)
    trainer.predict(model, dataloaders=predict_dataloader(files, config.data), return_predictions=False)
    return writer.destination


def export_model(
    config: Config, checkpoint: Path, file_format: export.Format, output: Path | None = None
) -> tuple[export.Parity, Path]:
    """Write the checkpoint's network as `file_format` into `output` (by default `export/` in the
    checkpoint's run directory) once it passed the parity gate: the format's own check of the file,
    its outputs against the eager network's on a batch of validation images, and the monitored
    metric scored on the validation split with each. Returns the gate's figures and the model file;
    a failed gate writes its figures alone and raises `ExportParityError`."""
    export.check_format(file_format, config)
    config = config.model_copy(update={"model": config.model.model_copy(update={"compile": False})})
    model = _load_model(checkpoint, config).eval()
    datamodule = DataModule(config.data, seed=config.seed)
    if datamodule.class_info != model.class_info:
        raise ConfigError(f"data.root: classes {datamodule.class_info} differ from the checkpoint's {model.class_info}")
    folder = output or (_run_dir_of(checkpoint) or checkpoint.resolve().parent) / "export"
    with export.staging(folder) as scratch:
        started = time.perf_counter()
        path = export.write(model.network, config, export.metadata(config, model.class_info), file_format, scratch)
        seconds = time.perf_counter() - started
        file_check = export.check_file(path, file_format)
        exported = exportable.ExportedNetwork(export.load(path, file_format))
        datamodule.setup("validate")
        images = next(iter(datamodule.val_dataloader()))[0]
        with torch.inference_mode():
            largest, outputs_match = export.compare(*exportable.paired_outputs(model.network(images), exported(images)))
        metric = config.callbacks.monitor
        eager_metric = _val_metric(config, model, datamodule, metric)
        model.network = exported
        parity = export.Parity(
            file=str(export.model_file(folder, file_format)),
            file_format=file_format,
            exporter=exportable.ONNX_EXPORTER if file_format == "onnx" else "torch.export",
            export_seconds=round(seconds, 2),
            file_check=file_check,
            batch_size=len(images),
            output_max_abs_diff=largest,
            outputs_match=outputs_match,
            metric=metric,
            eager_metric=eager_metric,
            exported_metric=_val_metric(config, model, datamodule, metric),
        )
        write_atomic(export.parity_file(scratch, file_format), parity.to_json())
        if not parity.passed:
            export.parity_file(scratch, file_format).replace(export.parity_file(folder, file_format))
            raise ExportParityError(f"export: parity gate failed, nothing exported: {parity.failure()}")
        export.publish(scratch, folder)
    return parity, export.model_file(folder, file_format)


class ExportParityError(RunStoppedError):
    """The exported file does not compute what the eager network does."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)


def _val_metric(config: Config, model: Model, datamodule: DataModule, metric: str) -> float:
    """`metric` of `model` on the validation split."""
    results = _single_device_trainer(config).validate(model, datamodule=datamodule, verbose=False)
    return float(results[0][metric])


def _load_model(checkpoint: Path, config: Config) -> Model:
    """The checkpoint's weights in a model built from `config`, which has the checkpoint's config as its base."""
    try:
        return Model.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True, config=config)
    except RuntimeError:  # load_state_dict: the configured network differs from the checkpoint's
        raise _weights_do_not_fit("--checkpoint", checkpoint, config, checkpoint_config(checkpoint)) from None


def _check_resumable(
    path: Path, checkpoint: dict[str, Any], model: Model, datamodule: DataModule, config: Config
) -> None:
    """A resumed fit needs the checkpoint's classes and a network its weights fit, checked here
    rather than as a traceback from inside Lightning."""
    stored = checkpoint["hyper_parameters"]
    classes = {key: value for key, value in stored.items() if key != "config"}
    if classes != dict(datamodule.class_info):
        raise ConfigError(f"data.root: classes {dict(datamodule.class_info)} differ from the checkpoint's {classes}")
    shapes = {name: tuple(tensor.shape) for name, tensor in checkpoint.get("state_dict", {}).items()}
    if shapes != {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}:
        raise _weights_do_not_fit("--resume", path, config, stored["config"])


def _weights_do_not_fit(option: str, checkpoint: Path, config: Config, trained: dict[str, Any]) -> ConfigError:
    """The error for a configured network that the checkpoint's weights do not fit, naming the keys to leave."""
    configured = config.to_data()["model"]
    changed = [f"model.{key}" for key, value in configured.items() if trained["model"].get(key) != value]
    return ConfigError(
        f"{option} {checkpoint}: its weights do not fit the configured model; "
        f"leave {', '.join(changed) or 'model'} as the checkpoint has it"
    )


def _leave_process_group() -> None:
    """The processes of a distributed fit wait for each other once all is written, then leave the
    process group: one that exits with the group still open can abort at interpreter shutdown
    ("terminate called without an active exception"), which fails the whole job."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def job_name() -> str | None:
    """The run directory's name when SLURM or torchrun started this process, the same in every
    process of the job without any communication, and again when the job is restarted:
    `slurm-<job id>` (`slurm-<array job id>_<task id>` in an array), or torchrun's `--rdzv-id`.
    None when the process started itself (Lightning then launches the other devices' processes).
    SLURM is looked for first, as Lightning does."""
    if SLURMEnvironment.detect():
        array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        job = f"{array_job}_{task}" if array_job else os.environ.get("SLURM_JOB_ID", "")
        source, prefix = "SLURM_JOB_ID", "slurm-"
    elif TorchElasticEnvironment.detect():
        job, source, prefix = os.environ["TORCHELASTIC_RUN_ID"], "torchrun --rdzv-id", ""
        if job == "none":  # torchrun's default: the same for every job
            raise ConfigError("torchrun --rdzv-id: not given; pass --rdzv-id NAME, which names the run directory")
    else:
        return None
    if not re.fullmatch(r"\w[\w.-]*", job):
        raise ConfigError(f"{source}: {job!r} cannot name a run directory (letters, digits, '_', '.', '-')")
    return prefix + job


def _job_checkpoint(run_dir: Path, resume: Path | None) -> Path | None:
    """The checkpoint a job started by SLURM or torchrun continues from. A job restarted under its
    id (a SLURM requeue, a torchrun restart or rerun) comes back to its run directory and continues
    from the newest of Lightning's hpc checkpoints there and `last.ckpt`; so does a restarted job
    that was given `--resume`, which would otherwise start over from that checkpoint each time.
    Passing the checkpoint on keeps Lightning from loading an hpc checkpoint by itself, past the
    checks and the logger's resume step."""
    counts = ("SLURM_RESTART_COUNT", "TORCHELASTIC_RESTART_COUNT")
    restarted = any(int(os.environ.get(name) or 0) > 0 for name in counts)
    if resume is not None and not restarted:
        return resume
    candidates = [*run_dir.glob(HPC_CHECKPOINTS), run_dir / "checkpoints" / LAST_CHECKPOINT, *filter(None, [resume])]
    return max((path for path in candidates if path.is_file()), key=lambda path: path.stat().st_mtime_ns, default=None)


def _run_dir_of(checkpoint: Path | None) -> Path | None:
    """The run directory a checkpoint was written in (`<run>/checkpoints/<name>.ckpt`), if it is one."""
    if checkpoint is None or checkpoint.resolve().parent.name != "checkpoints":
        return None
    run_dir = checkpoint.resolve().parent.parent
    return run_dir if (run_dir / "config.yaml").is_file() else None


def _logged_steps(checkpoint: dict[str, Any]) -> int:
    """The logger step a resumed fit takes over at: what the run logged after its checkpoint was
    written is dropped where the logger allows it, as the resumed fit logs it again."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"]) + 1
    except (KeyError, TypeError):
        return int(checkpoint.get("global_step", 0))


def resolved_precision(settings: TrainerConfig) -> str:
    """`trainer.precision`, `auto` made `bf16-mixed` where training runs on a CUDA GPU with bfloat16
    support (Ampere and later), else `32-true`."""
    if settings.precision != "auto":
        return settings.precision
    on_cuda = settings.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if on_cuda and torch.cuda.is_bf16_supported() else "32-true"


def _trainer(config: Config, **overrides: Any) -> Trainer:
    settings = config.trainer
    torch.set_float32_matmul_precision(settings.matmul_precision)
    arguments: dict[str, Any] = {
        "accelerator": settings.accelerator,
        "devices": settings.devices,
        "strategy": settings.strategy,
        "num_nodes": settings.num_nodes,
        "precision": resolved_precision(settings),
        "max_epochs": settings.max_epochs,
        "fast_dev_run": settings.fast_dev_run,
        "limit_train_batches": settings.limit_train_batches,
        "limit_val_batches": settings.limit_val_batches,
        "limit_test_batches": settings.limit_test_batches,
        "deterministic": settings.deterministic,
        "gradient_clip_val": settings.gradient_clip_val,
        "accumulate_grad_batches": settings.accumulate_grad_batches,
        "log_every_n_steps": settings.log_every_n_steps,
        "check_val_every_n_epoch": settings.check_val_every_n_epoch,
        "enable_progress_bar": config.callbacks.progress_bar,
    }
    arguments.update(overrides)
    return Trainer(**arguments)


def _single_device_trainer(config: Config, *callbacks: Callback) -> Trainer:
    """Evaluation and prediction on one device: no duplicated samples, one output file."""
    progress: list[Callback] = [RichProgressBar()] if config.callbacks.progress_bar else []
    return _trainer(
        config,
        devices=1,
        num_nodes=1,
        strategy="auto",
        logger=False,
        enable_checkpointing=False,
        callbacks=[*callbacks, *progress],
    )


def _new_run_dir(output_dir: Path) -> Path:
    """A new, uniquely named run directory `<output_dir>/<date>-<time>[-n]`."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    output_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        run_dir = output_dir / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        return run_dir
    raise ConfigError(f"output_dir: could not create a new run directory in {output_dir}")
