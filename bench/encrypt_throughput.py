"""Segment encryption (AES-128-CBC, PKCS#7) throughput next to `openssl speed`.

Rows, all single-threaded, all on the same segment-sized inputs:
  - openssl speed -evp aes-128-cbc, its 16384-byte column: the ceiling on this CPU;
  - in memory, update_into: each segment's bytes encrypted into a reused buffer, only
    the last partial block padded by hand (the technique encrypt_file uses);
  - in memory, padder + update: cryptography's PKCS7 padder then encryptor.update,
    the idiom most code uses, for reference;
  - files, encrypt_file: stb_origin.packager.encrypt.encrypt_file from page-cached
    files into a fresh directory, as the packager does;
  - files, read + write only: the same open/read/write/close in 1 MiB chunks without
    the cipher, the I/O part of the row above.
MB is 10^6 bytes, as in openssl's output.

    .venv/bin/python bench/encrypt_throughput.py                       # 200 files of 1-2 MB
    .venv/bin/python bench/encrypt_throughput.py --files 20 --seconds 1 --repeat 1   # quick
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import OtherCpu, machine_facts, median, print_table, warn_if_busy
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from stb_origin.packager.encrypt import CHUNK, encrypt_file

BLOCK = 16
KEY = bytes(range(16))
IV = bytes(range(16, 32))


def openssl_speed(seconds: int) -> float:
    """MB/s of `openssl speed -evp aes-128-cbc` at 16384-byte blocks."""
    out = subprocess.run(["openssl", "speed", "-evp", "aes-128-cbc", "-seconds", str(seconds)],
                         capture_output=True, text=True, check=True).stdout
    header = next(line for line in out.splitlines() if line.startswith("type"))
    row = next(line for line in out.splitlines() if line.lower().startswith("aes-128-cbc"))
    columns = re.findall(r"(\d+) bytes", header)
    values = re.findall(r"([\d.]+)k", row)  # in 1000s of bytes per second
    return float(values[columns.index("16384")]) / 1000


def update_into(data: bytes, out: bytearray) -> int:
    """AES-128-CBC + PKCS#7 of data into out (len(data) + 2 blocks); returns the length."""
    encryptor = Cipher(algorithms.AES(KEY), modes.CBC(IV)).encryptor()
    full = len(data) - len(data) % BLOCK
    done = encryptor.update_into(memoryview(data)[:full], out)
    pad = BLOCK - len(data) % BLOCK
    done += encryptor.update_into(data[full:] + bytes([pad]) * pad, memoryview(out)[done:])
    encryptor.finalize()
    return done


def padder_update(data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(KEY), modes.CBC(IV)).encryptor()
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    return encryptor.update(padded) + encryptor.finalize()


def in_memory_update_into(segments: list[bytes]) -> None:
    out = bytearray(max(len(s) for s in segments) + 2 * BLOCK)
    for data in segments:
        update_into(data, out)


def in_memory_padder_update(segments: list[bytes]) -> None:
    for data in segments:
        padder_update(data)


def check_same_ciphertext(src: Path, dst: Path) -> None:
    """Every row must compute the same bytes, or comparing their speed means nothing."""
    data = src.read_bytes()
    out = bytearray(len(data) + 2 * BLOCK)
    in_memory = bytes(out[:update_into(data, out)])
    encrypt_file(src, dst, KEY, IV)
    if not in_memory == padder_update(data) == dst.read_bytes():
        raise SystemExit("the encryption paths disagree on the ciphertext")
    dst.unlink()


def files_encrypt(files: list[Path], dst: Path) -> None:
    for src in files:
        encrypt_file(src, dst / src.name, KEY, IV)


def files_read_write(files: list[Path], dst: Path) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    for src in files:
        with open(src, "rb") as fin, open(dst / src.name, "wb") as fout:
            while n := fin.readinto(buf):
                fout.write(view[:n])


def make_segments(folder: Path, count: int, min_mb: float, max_mb: float) -> list[Path]:
    rng = random.Random(1)  # the same sizes every run
    files = []
    for i in range(count):
        # Encrypted video is incompressible and its sizes are not block-aligned.
        size = rng.randint(int(min_mb * 1e6), int(max_mb * 1e6))
        path = folder / f"seg_{i:05d}.m4s"
        path.write_bytes(os.urandom(size))
        files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200, help="segment files (default 200)")
    parser.add_argument("--min-mb", type=float, default=1.0, help="smallest segment, MB")
    parser.add_argument("--max-mb", type=float, default=2.0, help="largest segment, MB")
    parser.add_argument("--seconds", type=int, default=3, help="openssl speed -seconds")
    parser.add_argument("--repeat", type=int, default=5,
                        help="passes over all segments per row; the median is shown")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the segment files go (default: the system temp dir)")
    args = parser.parse_args()

    print(machine_facts())
    warn_if_busy()
    other_cpu = OtherCpu()
    work = Path(tempfile.mkdtemp(prefix="stb-encrypt-bench-", dir=args.dir))
    try:
        src = work / "src"
        src.mkdir()
        files = make_segments(src, args.files, args.min_mb, args.max_mb)
        segments = [f.read_bytes() for f in files]  # also leaves the files page-cached
        total = sum(len(s) for s in segments)
        check_same_ciphertext(files[0], work / "check.m4s")
        print(f"{len(files)} segments, {total / 1e6:.0f} MB in {work}, page-cached;"
              f" {args.repeat} passes per row")

        def in_files(fn: Callable[[list[Path], Path], None]) -> Callable[[], None]:
            def run() -> None:
                dst = work / "dst"
                shutil.rmtree(dst, ignore_errors=True)
                dst.mkdir()
                fn(files, dst)
            return run

        rows_to_time: dict[str, Callable[[], None]] = {
            "in memory, update_into": lambda: in_memory_update_into(segments),
            "in memory, padder + update": lambda: in_memory_padder_update(segments),
            "files, encrypt_file": in_files(files_encrypt),
            "files, read + write only": in_files(files_read_write),
        }
        seconds: dict[str, list[float]] = {name: [] for name in rows_to_time}
        names = list(rows_to_time)
        for round_ in range(args.repeat):
            # Rotate the order so no row always runs first (or last, after the others).
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                # The file rows time creating dst too; removing the last one is not timed.
                start = time.perf_counter()
                rows_to_time[name]()
                seconds[name].append(time.perf_counter() - start)
        shutil.rmtree(work / "dst", ignore_errors=True)

        openssl = openssl_speed(args.seconds)
        rates = {name: total / 1e6 / median(values) for name, values in seconds.items()}
        rows: list[list[object]] = [["openssl speed, 16384-byte blocks", openssl, "100%"]]
        rows += [[name, rate, f"{100 * rate / openssl:.0f}%"] for name, rate in rates.items()]
        print()
        print_table(["what", "MB/s", "of openssl"], rows)

        # One thread does the I/O and the cipher in turn, so their times add up.
        serial = 1 / (1 / rates["files, read + write only"] + 1 / rates["in memory, update_into"])
        print(f"\nencrypt_file: {100 * rates['files, encrypt_file'] / openssl:.0f}% of openssl;"
              f" I/O and cipher in series would give {serial:.0f} MB/s"
              f" ({100 * serial / openssl:.0f}%)")
        print(f"in memory, update_into: {100 * rates['in memory, update_into'] / openssl:.0f}%"
              " of openssl (aim: >= 90%)")
        print(other_cpu.report())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
