"""The training run: phase 1 classifies (cross-entropy), phase 2 fine-tunes with a margin.

One loop, two heads. Epochs ``[0, epochs)`` train ``SoftmaxHead``; epochs
``[epochs, epochs + arcface_epochs)`` train a ``MarginHead`` initialised from the phase-1
classifier's normalised rows, with its own optimiser and a lower learning rate.

Reproducibility: every epoch reseeds all RNGs (and the loader's sampler and workers) from
``(seed, epoch)``, so an epoch is a function of the state at its start. A checkpoint after
each epoch holds that state (model, head, optimiser, scheduler, scaler, RNG, history), so
``resume`` continues exactly where an interrupted run stopped.

Model selection: after each epoch the encoder is validated on held-out photos of the
training people (classification accuracy) and, when a pairs file is given, on people never
seen in training (ROC-AUC). The best epoch (by ROC-AUC when available, else accuracy) is
written to ``out`` as a model file as soon as it is found, so even an interrupted run leaves
its best model behind.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from facesearch.devices import autocast, resolve_device
from facesearch.embedding.encoders import FaceEncoder
from facesearch.errors import InputError
from facesearch.evaluation.metrics import verification_report
from facesearch.models.classifier import Classifier
from facesearch.models.encoder import Encoder, encoder_from_payload, read_model_file, save_encoder
from facesearch.models.margins import MarginHead, SoftmaxHead
from facesearch.training.batchnorm import calibration_images, recalibrate_batchnorm
from facesearch.training.checkpoint import (
    load_checkpoint,
    restore_rng,
    rng_state,
    save_checkpoint,
    seed_everything,
)
from facesearch.training.config import PHASE2_FIELDS, RUNTIME_FIELDS, TrainConfig, comparable, portable
from facesearch.training.augment import train_transform
from facesearch.training.labelled import balanced_sampler, collate_labelled
from facesearch.training.distill import Distillation
from facesearch.progress import Progress, quiet
from facesearch.training.team import Solo
from facesearch.training.teacher_views import CachedTargets, OnlineTargets, TeacherTargets, ViewTargets, mix
from facesearch.training.face_sets import collate_taught
from facesearch.training.loading import load_training_data
from facesearch.training.view_cache import embed_views, stamp
from facesearch.training.optim import build_optimizer, build_scheduler, steps_per_batch
from facesearch.training.records import EpochRecord, TrainReport
from facesearch.evaluation.verification import Pairs, read_pairs

log = logging.getLogger(__name__)

# Encoder fields that shape the network: an --init model must agree on all of them.
ARCHITECTURE = ("backbone", "embedding_dim", "input_size", "head")
HEAD_FIELDS = ("embedding_dim", "head")  # without them the backbone alone still fits


class TrainingStep(nn.Module):
    """The forward of one training step, from a batch of views to the loss: the encoder's
    embeddings, the identity loss of the phase's head on the named faces (weighted), and the
    teacher's terms on all of them. One module, so that the team's wrapper (torch's
    DistributedDataParallel) sees every parameter the step trains."""

    def __init__(self, encoder: Encoder, head: nn.Module, distill: Distillation | None, identity_weight: float) -> None:
        super().__init__()
        self.encoder, self.head, self.distill, self.identity_weight = encoder, head, distill, identity_weight

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor, labelled: torch.Tensor, targets: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, the batch's mean cosine to the teacher or 0, the embeddings)."""
        embeddings = self.encoder(images)
        loss = embeddings.new_zeros((), dtype=torch.float32)
        if self.identity_weight > 0 and bool(labelled.any()):
            identity, _ = self.head(embeddings[labelled], labels[labelled])
            loss = loss + self.identity_weight * identity
        cosine = loss.new_zeros(())
        if self.distill is not None and targets is not None:
            taught, cosine = self.distill(embeddings, targets)
            loss = loss + taught
        return loss, cosine, embeddings


class Trainer:
    """Holds a run's state; ``run()`` trains every remaining epoch."""

    def __init__(
        self,
        config: TrainConfig,
        progress: Progress = quiet,
        on_epoch: Callable[[EpochRecord], None] | None = None,
        team: Solo | None = None,
    ) -> None:
        """``team``: this process's place among several (facesearch.training.team);
        default: the only one."""
        self.config = config
        self.progress = progress
        self.on_epoch = on_epoch
        self.team = team or Solo()
        self.device = resolve_device(config.device)
        seed_everything(config.seed)  # the classifier's initial weights come from the global RNG
        self.data = load_training_data(config, progress)
        self.pairs: Pairs | None = None
        self.pair_images: torch.Tensor | None = None
        if config.val_pairs:
            self.pairs = read_pairs(config.val_pairs, config.val_images)  # type: ignore[arg-type]
            decoded = self.data.prepare(self.pairs.images)
            if len(decoded) != len(self.pairs.images):  # pairs index images by position
                missing = sorted(set(self.pairs.images) - set(decoded.paths))
                raise InputError(f"{missing[0]}: a pairs image could not be decoded (see the warning above)")
            self.pair_images = decoded.images
        self.calibration = calibration_images(self.data.train, config.seed, config.workers)
        self.encoder = Encoder(config.encoder_config()).to(self.device, memory_format=torch.channels_last)
        self.head: nn.Module = SoftmaxHead(config.embedding_dim, len(self.data.names), config.label_smoothing)
        self.head.to(self.device)
        self.distill: Distillation | None = None
        self.targets: TeacherTargets | None = None
        if self.data.train.targets is not None:
            teacher_dim = self.data.train.targets["clean"].shape[1]
            self.distill = Distillation(
                config.embedding_dim, teacher_dim, config.distill_weight, config.relational_weight
            ).to(self.device)
            self.targets = self._teacher_targets()
        self.epoch = 0
        self.history: list[EpochRecord] = []
        self.best: dict[str, Any] = {"value": -math.inf, "epoch": 0, "encoder": None, "validation": {}}
        self._wrote_best = False  # by this invocation, to --out
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda")
        self._wrapped: tuple[nn.Module, nn.Module] | None = None  # (head, its step as the team runs it)
        if config.init:
            self._initialise_from(config.init)
        self._start_phase()

    def _teacher_targets(self) -> TeacherTargets:
        """The teacher's targets of the training views: cached, seeded views embedded once, or
        the teacher in the loop."""
        kept = self.data.train.targets
        assert kept is not None
        if self.config.teacher_views == "fixed":
            return CachedTargets(kept["clean"], kept["flipped"])
        from facesearch.models.encoder import preprocessing_of
        from facesearch.training.distill import load_teacher

        teacher, fingerprint = load_teacher(self.config.teacher, preprocessing_of(self.config.encoder_config()))  # type: ignore[arg-type]
        if self.config.teacher_views == "online":
            return OnlineTargets(teacher)
        return ViewTargets(self._embedded_views(teacher, fingerprint))

    def _embedded_views(self, teacher: FaceEncoder, fingerprint: str) -> torch.Tensor:
        """``--teacher-views cached``: the teacher's embeddings of every face's K seeded views,
        kept in the run's folder (a resumed or repeated run reads them back)."""
        c, faces = self.config, self.data.train
        assert faces.images is not None, "cached views need the decoded faces in memory"
        key = stamp(faces.images, fingerprint, c.augment.spec(), c.augment.hflip, c.views_per_face, c.seed)
        targets, stored = embed_views(
            faces.images, self._transform(), c.augment.hflip, c.views_per_face, c.seed, teacher,
            c.run_path / "teacher-views.pt", key, self.data.workers, self.progress,
        )
        self.data.cache["views"] = {"per_face": c.views_per_face, **stored}
        return targets

    def _initialise_from(self, path: str) -> None:
        """``init``: start from a trained model file's weights with a fresh optimiser and
        schedule, e.g. to fine-tune the best phase-1 epoch rather than the last one. Its
        classifier is reused when it was trained on these same people; otherwise the head
        starts fresh (fine-tuning on new people). A model with another embedding head (a
        student of the teacher's dimension started from a 512-d model) gives its backbone only."""
        payload = read_model_file(path)
        theirs, ours = payload["config"], self.config.encoder_config()
        different = [k for k in ARCHITECTURE if getattr(theirs, k) != getattr(ours, k)]
        if set(different) - set(HEAD_FIELDS):
            detail = ", ".join(f"{k} {getattr(theirs, k)!r} (this run: {getattr(ours, k)!r})" for k in different)
            raise InputError(f"--init {path}: its encoder differs from this run's: {detail}")
        encoder, _ = encoder_from_payload(payload, path, "cpu")
        if different:
            log.warning("--init %s: another embedding head (%s); only its backbone is used", path, ", ".join(different))
            self.encoder.backbone.load_state_dict(encoder.backbone.state_dict())
            return
        self.encoder.load_state_dict(encoder.state_dict())
        stored = payload.get("classifier")
        if stored is None or list(stored.get("names", [])) != self.data.names:
            log.warning("--init %s: its classifier is not for these people; the class head starts fresh", path)
            return
        classifier = Classifier.from_payload(stored, path)
        linear = self.head.classifier  # the phase-1 head: cosine centres become its rows
        with torch.no_grad():
            linear.weight.copy_(classifier.weight)
            linear.bias.copy_(classifier.bias if classifier.bias is not None else torch.zeros_like(linear.bias))

    # --- phases -----------------------------------------------------------------------

    @property
    def phase(self) -> str:
        return "classify" if self.epoch < self.config.epochs else self.config.loss

    def _phase_epochs(self) -> int:
        return self.config.epochs if self.phase == "classify" else self.config.arcface_epochs

    def _start_phase(self) -> None:
        """A fresh optimiser and schedule for the phase the next epoch belongs to; entering
        phase 2 swaps the classifier for a margin head built from its normalised rows."""
        c = self.config
        if self.phase != "classify" and isinstance(self.head, SoftmaxHead):
            self.head = self._margin_head(self.head.classifier)
        lr = c.lr if self.phase == "classify" else c.phase2_lr
        self.optimizer = build_optimizer(c.optimizer, self._trained(), lr, c.momentum, c.weight_decay)
        steps = self._steps_per_epoch()
        warmup = int(c.warmup_epochs * steps) if self.phase == "classify" else 0
        self.scheduler = build_scheduler(c.scheduler, self.optimizer, steps * self._phase_epochs(), warmup)

    def _trained(self) -> list[nn.Module]:
        """Every module the optimiser updates (the distillation projection too)."""
        return [self.encoder, self.head] + ([self.distill] if self.distill is not None else [])

    def _margin_head(self, classifier: nn.Linear | None = None) -> MarginHead:
        c = self.config
        options = {"loss": c.loss, "scale": c.scale, "margin": c.margin, "alpha": c.alpha}
        if classifier is None:
            head = MarginHead(c.embedding_dim, len(self.data.names), **options)  # type: ignore[arg-type]
        else:
            head = MarginHead.from_classifier(classifier, **options)
        return head.to(self.device)

    def _steps_per_epoch(self) -> int:
        full = math.ceil(len(self.data.train) / self.config.batch_size)
        return min(full, self.config.steps_per_epoch) if self.config.steps_per_epoch else full

    # --- one epoch --------------------------------------------------------------------

    def _loader(self) -> DataLoader:
        c = self.config
        generator = torch.Generator().manual_seed(c.seed * 100_003 + self.epoch)
        views = c.views_per_face if isinstance(self.targets, ViewTargets) else 0
        dataset = self.data.train.dataset(self._transform(), c.augment.hflip, views, c.seed)
        if c.balanced:
            sampler = balanced_sampler(self.data.train.samples(), seed=int(generator.initial_seed()))
        else:
            sampler = RandomSampler(dataset, generator=generator)
        return DataLoader(
            dataset,
            batch_size=self.team.batch_size(c.batch_size),
            sampler=self.team.shard(sampler),
            num_workers=self.data.workers,
            collate_fn=collate_taught if self.distill is not None else collate_labelled,
            generator=generator,
            pin_memory=self.device.type == "cuda",
            drop_last=len(dataset) > c.batch_size,
            persistent_workers=False,
        )

    def _transform(self):  # noqa: ANN202 (a v2.Compose)
        """The training views' augmentations; a taught run draws the mirror itself (a mirrored
        face has its own target), so its transform never flips."""
        augment = replace(self.config.augment, hflip=False) if self.distill is not None else self.config.augment
        return train_transform(augment, self.config.encoder_config().input_size)

    def train_epoch(self) -> EpochRecord:
        c = self.config
        seed_everything(c.seed * 100_003 + self.epoch)
        self.encoder.train()
        self.head.train()
        steps = self._steps_per_epoch()
        total_loss, correct, seen, named, start = 0.0, 0, 0, 0, time.perf_counter()
        cosine_sum = 0.0
        if self.targets is not None:
            self.targets.seconds = 0.0
        description = f"epoch {self.epoch + 1}/{c.total_epochs} {self.phase}"
        for step, batch in enumerate(self._loader()):
            if step >= steps:
                break
            images, labels, targets = self._batch(batch)
            if len(labels) == 0:
                continue
            labelled = labels >= 0
            with autocast(self.device):
                loss, cosine, embeddings = self._step()(images, labels, labelled, targets)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()  # a team's wrapper averages the gradients here
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_([p for m in self._trained() for p in m.parameters()], c.clip_grad)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if steps_per_batch(self.scheduler):
                self.scheduler.step()
            if not torch.isfinite(loss):
                raise InputError(f"training diverged at epoch {self.epoch + 1} (loss {loss.item()}); lower --lr")
            total_loss += loss.item() * len(labels)
            with torch.no_grad():  # without the margin, which only shapes the loss
                correct += int((self.head.predict(embeddings.detach()[labelled]) == labels[labelled]).sum())
            seen += len(labels)
            named += int(labelled.sum())
            cosine_sum += float(cosine) * len(labels)
            rate = seen / (time.perf_counter() - start)
            info = f"loss {total_loss / seen:.3f} acc {correct / max(named, 1):.3f} {rate:.0f} img/s"
            if self.distill is not None:
                info += f" teacher cos {cosine_sum / seen:.3f}"
            self.progress(description, step + 1, steps, info)
        seconds = time.perf_counter() - start
        total_loss, correct, seen, named, cosine_sum = self.team.sum([total_loss, correct, seen, named, cosine_sum])
        return EpochRecord(
            epoch=self.epoch + 1,
            phase=self.phase,
            lr=self.optimizer.param_groups[0]["lr"],
            train_loss=total_loss / max(seen, 1),
            train_accuracy=correct / max(named, 1),
            images_per_s=seen / seconds,
            seconds=seconds,
            teacher_cosine=cosine_sum / seen if self.distill is not None and seen else None,
            teacher_s=self.targets.seconds if self.targets is not None else None,
        )

    def _batch(self, batch: tuple) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(images, labels, teacher targets or None) on the device; a taught batch's target
        for each face is the teacher's embedding of the view it shows (its mirror image's when
        mirrored, or the view itself with online teacher views; mixup blends some views first)."""
        images, labels = batch[0], batch[1]
        targets = None
        if self.distill is not None and self.targets is not None and len(labels):
            if self.config.mixup:
                images, labels = mix(images, labels, self.config.mixup)
            targets = self.targets(images, batch[2], batch[3]).to(self.device, non_blocking=True)
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        return images, labels.to(self.device, non_blocking=True), targets

    def _step(self) -> nn.Module:
        """The step module for the current head, wrapped by the team (made again when phase 2
        swaps the head; every process of a team reaches that point at the same epoch)."""
        if self._wrapped is None or self._wrapped[0] is not self.head:
            step = TrainingStep(self.encoder, self.head, self.distill, self.config.identity_weight)
            self._wrapped = (self.head, self.team.wrap(step))
        return self._wrapped[1]

    # --- validation -------------------------------------------------------------------

    def _embed(self, images: torch.Tensor, raw: bool = False, batch_size: int = 256) -> torch.Tensor:
        """Eval-mode embeddings of uint8 crops, on the training device: L2-normalised (what the
        gallery stores) or ``raw`` (what the phase-1 classifier was trained on)."""
        chunks = [
            self.encoder.embed(images[i : i + batch_size], unit=not raw) for i in range(0, len(images), batch_size)
        ]
        return torch.cat(chunks).to(self.device)

    def validate(self, record: EpochRecord) -> None:
        """Held-out accuracy (training people) and pairs figures (unseen people)."""
        recalibrate_batchnorm(self.encoder, self.calibration)
        if len(self.data.heldout) and self.config.identity_weight > 0:
            embeddings = self._embed(self.data.heldout.images, raw=True)
            self.head.eval()
            with torch.inference_mode():
                predicted = self.head.predict(embeddings).cpu()
            record.heldout_accuracy = float((predicted == self.data.heldout.labels).float().mean())
        if self.pairs is not None and self.pair_images is not None:
            vectors = self._embed(self.pair_images).cpu().numpy()
            figures = verification_report(self.pairs.scores(vectors), self.pairs.same, self.pairs.folds)
            record.roc_auc = figures["roc_auc"]  # type: ignore[assignment]
            record.pairs_accuracy = figures["accuracy"]  # type: ignore[assignment]
            record.pairs_accuracy_std = figures["accuracy_std"]  # type: ignore[assignment]

    def selected_by(self) -> str:
        if self.pairs is not None:
            return "roc_auc"
        return "heldout_accuracy" if len(self.data.heldout) and self.config.identity_weight > 0 else "train_loss"

    def _score(self, record: EpochRecord) -> float:
        value = getattr(record, self.selected_by())
        return -value if self.selected_by() == "train_loss" else value

    def _keep_if_best(self, record: EpochRecord) -> None:
        if self._score(record) <= self.best["value"]:
            return
        record.best = True
        validation = {
            k: v for k, v in asdict(record).items()
            if k in ("heldout_accuracy", "roc_auc", "pairs_accuracy", "pairs_accuracy_std") and v is not None
        }
        self._wrote_best = True
        self.best = {
            "value": self._score(record),
            "epoch": record.epoch,
            "encoder": {k: v.detach().cpu().clone() for k, v in self.encoder.state_dict().items()},
            "classifier": Classifier.from_head(self.head, self.data.names).to_payload(),
            "validation": validation,
        }
        self._write_model()

    def _write_model(self) -> None:
        c = self.config
        encoder = Encoder(c.encoder_config())
        encoder.load_state_dict(self.best["encoder"])
        meta = {
            "trained_on": portable({"data": c.data})["data"],
            "classes": len(self.data.names),
            "epoch": self.best["epoch"],
            "selected_by": self.selected_by(),
            "validation": self.best["validation"],
            "recipe": portable(c.to_dict()),
        }
        if c.teacher:
            meta["teacher"] = {"file": Path(c.teacher).name, "fingerprint": self.data.cache.get("teacher")}
        stored = self.best.get("classifier")  # absent in checkpoints of older versions
        classifier = Classifier.from_payload(stored, str(c.out)) if stored else None
        save_encoder(encoder, c.out, meta, classifier=classifier)

    # --- checkpoints ------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "names": self.data.names,
            "epoch": self.epoch,
            "encoder": self.encoder.state_dict(),
            "head_kind": type(self.head).__name__,
            "head": self.head.state_dict(),
            "distill": self.distill.state_dict() if self.distill is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "best": self.best,
            "history": [asdict(r) for r in self.history],
        }

    def save(self) -> None:
        run, state = self.config.run_path, self.state()
        save_checkpoint(run / "checkpoint.pt", state)
        if self.epoch == self.config.epochs and self.config.epochs > 0:
            # The end of phase 1: kept so other phase-2 losses can start from the same point.
            save_checkpoint(run / "phase1.pt", state)
        self._write_log()

    def _write_log(self) -> None:
        path = self.config.run_path / "log.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(EpochRecord)])
            writer.writeheader()
            writer.writerows(asdict(r) for r in self.history)

    def restore(self, path: str | Path) -> None:
        """Continue from a checkpoint; refuses one from a run with different options."""
        state = load_checkpoint(path)
        self._check_compatible(state, Path(path))
        self.epoch = int(state["epoch"])
        self.encoder.load_state_dict(state["encoder"])
        self.history = [EpochRecord(**row) for row in state["history"]]
        self.best = state["best"]
        if state["head_kind"] == "MarginHead":
            self.head = self._margin_head()
        self.head.load_state_dict(state["head"])
        if self.distill is not None and state.get("distill") is not None:
            self.distill.load_state_dict(state["distill"])
        self._start_phase()  # builds the right head, optimiser and schedule for this epoch
        if self._same_phase(state):
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"])

    def _same_phase(self, state: dict[str, Any]) -> bool:
        """The saved optimiser belongs to this phase unless the checkpoint ended phase 1."""
        return not (self.epoch == self.config.epochs and state["head_kind"] == "SoftmaxHead")

    def _check_compatible(self, state: dict[str, Any], path: Path) -> None:
        saved = comparable(TrainConfig.from_dict(state["config"]).to_dict())
        wanted = comparable(self.config.to_dict())
        ignore = set(RUNTIME_FIELDS)
        if int(state["epoch"]) <= saved["epochs"] and int(state["epoch"]) <= wanted["epochs"]:
            ignore |= PHASE2_FIELDS  # phase 2 has not started: its options are still open
        changed = sorted(k for k in wanted if k not in ignore and saved.get(k) != wanted[k])
        if changed:
            detail = ", ".join(f"{k}: {saved.get(k)!r} -> {wanted[k]!r}" for k in changed)
            raise InputError(f"{path} was written by a run with other options ({detail}); resume with the same ones")
        if state["names"] != self.data.names:
            raise InputError(f"{path}: the training folder's people changed since the checkpoint")
        if int(state["epoch"]) > self.config.total_epochs:
            raise InputError(f"{path} is at epoch {state['epoch']}, past the {self.config.total_epochs} asked for")

    # --- the run ----------------------------------------------------------------------

    def run(self) -> TrainReport:
        while self.epoch < self.config.total_epochs:
            if self.epoch == self.config.epochs and isinstance(self.head, SoftmaxHead):
                self._start_phase()
            record = self.train_epoch()
            self.epoch += 1
            if self.team.lead:  # one process validates and writes; the others take its figures
                self.validate(record)
            record = self.team.share(record)
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(self._score(record))
            self.history.append(record)
            if self.team.lead:
                self._keep_if_best(record)
                self.save()
                if self.on_epoch:
                    self.on_epoch(record)
        if self.team.lead and self.best["encoder"] is not None and not self._wrote_best:
            self._write_model()  # a resumed run that never beat the checkpoint's best
        return self.report()

    def report(self) -> TrainReport:
        return TrainReport(
            model=str(self.config.out),
            epochs=self.epoch,
            best_epoch=int(self.best["epoch"]),
            selected_by=self.selected_by(),
            classes=len(self.data.names),
            train_images=len(self.data.train),
            heldout_images=len(self.data.heldout),
            history=self.history,
            validation=self.best["validation"],
            taught=self._taught() if self.config.prepared else None,
            config=portable(self.config.to_dict()),
        )

    def _taught(self) -> dict[str, Any]:
        """What the prepared-faces path did: faces left out, unlabelled faces, the cache."""
        d = self.data
        return {
            "alignment": self.config.alignment,
            "teacher": self.config.teacher and Path(self.config.teacher).name,
            "unlabelled_images": d.unlabelled_images,
            "no_face": d.no_face,
            "skipped": len(d.skipped),
            "cache": d.cache,
        }
