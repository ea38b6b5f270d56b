"""Synthetic faces: deterministic, identity-specific, with pose, lighting and noise variation.

So that the tests and the demo never depend on real photos. Each identity draws a fixed set
of traits (face shape, skin, hair, eye spacing, brows, nose, mouth) from its own seed; each
image of that identity re-renders those traits under a random yaw, roll, scale, shift,
expression, light direction, blur and noise. Same seeds, same pixels, on any machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


@dataclass(frozen=True)
class Traits:
    """What makes one synthetic person recognisable."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    background: tuple[int, int, int]
    face_width: float
    face_height: float
    hair_style: int
    eye_gap: float
    eye_height: float
    eye_size: float
    brow_tilt: float
    brow_weight: float
    nose_length: float
    nose_width: float
    mouth_width: float
    mouth_height: float
    lip: tuple[int, int, int]
    beard: bool
    glasses: bool


def identity_name(index: int) -> str:
    return f"person_{index:04d}"


def traits_for(identity_seed: int) -> Traits:
    rng = np.random.default_rng([identity_seed, 0xFACE])
    tone = rng.uniform(0.25, 1.0)
    skin = tuple(int(v) for v in np.array([235, 190, 160]) * tone + np.array([20, 15, 10]) * (1 - tone))
    return Traits(
        skin=skin,  # type: ignore[arg-type]
        hair=tuple(int(v) for v in rng.integers(10, 200, 3)),  # type: ignore[arg-type]
        iris=tuple(int(v) for v in rng.integers(20, 160, 3)),  # type: ignore[arg-type]
        background=tuple(int(v) for v in rng.integers(40, 230, 3)),  # type: ignore[arg-type]
        face_width=rng.uniform(0.30, 0.40),
        face_height=rng.uniform(0.40, 0.50),
        hair_style=int(rng.integers(0, 4)),
        eye_gap=rng.uniform(0.13, 0.21),
        eye_height=rng.uniform(-0.10, -0.02),
        eye_size=rng.uniform(0.045, 0.075),
        brow_tilt=rng.uniform(-0.04, 0.04),
        brow_weight=rng.uniform(0.012, 0.03),
        nose_length=rng.uniform(0.10, 0.18),
        nose_width=rng.uniform(0.04, 0.08),
        mouth_width=rng.uniform(0.10, 0.20),
        mouth_height=rng.uniform(0.18, 0.28),
        lip=tuple(int(v) for v in rng.integers(90, 200, 3) * np.array([1.0, 0.5, 0.5])),  # type: ignore[arg-type]
        beard=bool(rng.random() < 0.25),
        glasses=bool(rng.random() < 0.2),
    )


def render(traits: Traits, variation_seed: int, size: int = 112, variation: float = 1.0) -> Image.Image:
    """One photo of a person: their traits under a random pose, expression and light."""
    rng = np.random.default_rng([variation_seed, 0xBEEF])
    jitter = lambda scale: float(rng.normal(0.0, scale * variation))  # noqa: E731
    canvas = 2 * size  # draw at 2x and downsample: cheap antialiasing
    # The backdrop changes from photo to photo, so it cannot stand in for the identity.
    mix = min(1.0, 0.7 * variation)
    background = tuple(
        int((1 - mix) * c + mix * r) for c, r in zip(traits.background, rng.integers(30, 230, 3))
    )
    img = Image.new("RGB", (canvas, canvas), background)
    draw = ImageDraw.Draw(img)
    unit = canvas
    yaw = max(-0.6, min(0.6, jitter(0.25)))  # turns the features sideways and narrows the face
    cx = unit * (0.5 + jitter(0.03))
    cy = unit * (0.52 + jitter(0.03))
    scale = 1.0 + jitter(0.06)
    fw = traits.face_width * unit * scale * (1 - 0.25 * abs(yaw))
    fh = traits.face_height * unit * scale

    def px(x: float, y: float) -> tuple[float, float]:
        """Face-relative coordinates to canvas pixels, shifted by yaw (a cheap 3D turn)."""
        return cx + (x + yaw * 0.12 * math.cos(x * 3)) * unit * scale, cy + y * unit * scale

    _draw_hair(draw, traits, cx, cy, fw, fh, back=True)
    draw.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=traits.skin)
    if traits.beard:
        beard = tuple(int(c * 0.6) for c in traits.hair)
        x0, y0 = px(-0.22, 0.12)
        x1, y1 = px(0.22, 0.47)
        draw.chord([x0, y0 - fh * 0.4, x1, y1], 0, 180, fill=beard)
    _draw_hair(draw, traits, cx, cy, fw, fh, back=False)
    openness = max(0.3, 1.0 + jitter(0.2))
    for side in (-1, 1):
        ex, ey = px(side * traits.eye_gap, traits.eye_height)
        r = traits.eye_size * unit * scale
        draw.ellipse([ex - r, ey - r * 0.55 * openness, ex + r, ey + r * 0.55 * openness], fill=(245, 245, 240))
        ir = r * 0.5
        gaze = jitter(0.15) * r
        draw.ellipse([ex - ir + gaze, ey - ir * openness, ex + ir + gaze, ey + ir * openness], fill=traits.iris)
        draw.ellipse([ex - ir / 2.5 + gaze, ey - ir / 2.5, ex + ir / 2.5 + gaze, ey + ir / 2.5], fill=(10, 10, 10))
        bx0, by0 = px(side * traits.eye_gap - 0.06, traits.eye_height - 0.07 + side * traits.brow_tilt)
        bx1, by1 = px(side * traits.eye_gap + 0.06, traits.eye_height - 0.07 - side * traits.brow_tilt)
        draw.line([bx0, by0, bx1, by1], fill=tuple(int(c * 0.8) for c in traits.hair),
                  width=max(1, int(traits.brow_weight * unit)))
        if traits.glasses:
            draw.ellipse(
                [ex - r * 1.5, ey - r * 1.2, ex + r * 1.5, ey + r * 1.2], outline=(30, 30, 30), width=max(1, unit // 80)
            )
    shade = tuple(int(c * 0.8) for c in traits.skin)
    nx, ny = px(0.0, traits.eye_height + 0.03)
    tx, ty = px(0.0, traits.eye_height + traits.nose_length)
    nw = traits.nose_width * unit * scale
    draw.polygon([(nx, ny), (tx - nw, ty), (tx + nw, ty)], fill=shade)
    smile = jitter(0.4)
    mx, my = px(0.0, traits.mouth_height)
    mw = traits.mouth_width * unit * scale
    mh = max(2.0, (0.03 + 0.02 * abs(smile)) * unit * scale)
    if smile >= 0:
        draw.chord([mx - mw, my - mh, mx + mw, my + mh], 0, 180, fill=traits.lip)
    else:
        draw.chord([mx - mw, my - mh / 2, mx + mw, my + mh * 1.5], 180, 360, fill=traits.lip)

    img = img.rotate(jitter(8.0), resample=Image.Resampling.BILINEAR, fillcolor=background)
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    if rng.random() < 0.3 * variation:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 1.2))))
    return _light_and_noise(img, rng, variation)


def _draw_hair(
    draw: ImageDraw.ImageDraw, traits: Traits, cx: float, cy: float, fw: float, fh: float, back: bool
) -> None:
    style = traits.hair_style
    if back and style in (1, 3):  # long hair falls behind the face
        draw.rounded_rectangle([cx - fw * 1.25, cy - fh * 1.15, cx + fw * 1.25, cy + fh * (0.9 if style == 1 else 0.4)],
                               radius=int(fw * 0.6), fill=traits.hair)
    if not back and style != 2:  # style 2 is bald
        draw.chord([cx - fw * 1.05, cy - fh * 1.12, cx + fw * 1.05, cy - fh * 0.05], 180, 360, fill=traits.hair)


def _light_and_noise(img: Image.Image, rng: np.random.Generator, variation: float) -> Image.Image:
    arr = np.asarray(img, dtype=np.float32)
    h, w, _ = arr.shape
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gradient = ((xx / w - 0.5) * math.cos(angle) + (yy / h - 0.5) * math.sin(angle))
    light = 1.0 + rng.uniform(0.0, 0.5) * variation * gradient
    gain = 1.0 + rng.normal(0, 0.12 * variation)
    tint = 1.0 + rng.normal(0, 0.04 * variation, 3)
    arr = arr * light[..., None] * gain * tint
    arr += rng.normal(0, rng.uniform(1.0, 6.0) * variation, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def make_face(identity: int, sample: int, size: int = 112, seed: int = 0, variation: float = 1.0) -> Image.Image:
    """Photo ``sample`` of person ``identity`` (both ints), reproducible from the seeds.
    ``variation`` scales how much photos of one person differ (pose, light, expression,
    noise): 1 as in training sets, 0.5 for photos taken alike (even light, facing the camera)."""
    return render(traits_for(seed * 1_000_003 + identity), seed * 7_919 + identity * 104_729 + sample, size, variation)


def write_dataset(
    root: str | Path,
    identities: int,
    images_per_identity: int,
    size: int = 112,
    seed: int = 0,
    first_identity: int = 0,
    first_sample: int = 0,
    variation: float = 1.0,
) -> list[Path]:
    """Write ``root/<identity>/<nnnn>.jpg`` (the gallery and ImageFolder layout)."""
    root = Path(root)
    written = []
    for ident in range(first_identity, first_identity + identities):
        folder = root / identity_name(ident)
        folder.mkdir(parents=True, exist_ok=True)
        for sample in range(first_sample, first_sample + images_per_identity):
            path = folder / f"{sample:04d}.jpg"
            make_face(ident, sample, size, seed, variation).save(path, quality=92)
            written.append(path)
    return written


def write_pairs(
    root: str | Path,
    identities: int = 20,
    images_per_identity: int = 4,
    folds: int = 10,
    per_fold: int = 10,
    size: int = 112,
    seed: int = 0,
    first_identity: int = 0,
    variation: float = 1.0,
) -> Path:
    """An LFW-style verification set: ``root/images/<Name>/<Name>_<nnnn>.jpg`` and
    ``root/pairs.txt`` with ``folds`` x ``per_fold`` same- and different-person pairs.
    Returns the pairs file. Pairs are drawn with a seeded RNG, so the set is reproducible."""
    root = Path(root)
    names = [identity_name(i) for i in range(first_identity, first_identity + identities)]
    for ident, name in zip(range(first_identity, first_identity + identities), names):
        folder = root / "images" / name
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(1, images_per_identity + 1):
            make_face(ident, n, size, seed, variation).save(folder / f"{name}_{n:04d}.jpg", quality=92)
    rng = np.random.default_rng(seed)
    lines = [f"{folds}\t{per_fold}"]
    for _ in range(folds):
        for _ in range(per_fold):
            name = names[rng.integers(identities)]
            i, j = rng.choice(images_per_identity, 2, replace=False) + 1
            lines.append(f"{name}\t{i}\t{j}")
        for _ in range(per_fold):
            a, b = rng.choice(identities, 2, replace=False)
            i, j = rng.integers(images_per_identity, size=2) + 1
            lines.append(f"{names[a]}\t{i}\t{names[b]}\t{j}")
    pairs = root / "pairs.txt"
    pairs.write_text("\n".join(lines) + "\n")
    return pairs


def write_probes(
    root: str | Path,
    identities: int,
    enrolled: int,
    images_per_identity: int = 1,
    size: int = 112,
    seed: int = 0,
    first_identity: int = 0,
    first_sample: int = 0,
    variation: float = 1.0,
) -> Path:
    """An HW2P2-style probe set: ``root/unknown_dev/<nnnnnn>.jpg`` and
    ``root/verification_dev.csv`` (``id,label``). The first ``enrolled`` people keep their
    names; the others are labelled n000000 (people the gallery does not know). Returns the
    probe folder."""
    from facesearch import UNKNOWN

    folder = Path(root) / "unknown_dev"
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["id,label"]
    for k, ident in enumerate(range(first_identity, first_identity + identities)):
        label = identity_name(ident) if k < enrolled else UNKNOWN
        for sample in range(first_sample, first_sample + images_per_identity):
            name = f"{len(rows) - 1:06d}.jpg"
            make_face(ident, sample, size, seed, variation).save(folder / name, quality=92)
            rows.append(f"{name},{label}")
    (Path(root) / "verification_dev.csv").write_text("\n".join(rows) + "\n")
    return folder
