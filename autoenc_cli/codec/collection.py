"""Many pictures into many latent files, as one job: `autoenc encode FOLDER -o DIR` (or several files).

The pictures are shared among torchrun's processes and a killed run continues where it stopped (data/jobs.py); the
job's folder is a hidden one among the outputs. Each latent (and its sidecar) is written whole as soon as it is
encoded, exactly as `autoenc encode PICTURE` writes it alone. One pass encodes each picture alone; with refinement,
pictures of one size are refined together, a batch as large as the memory budget holds (as --stack does).
A picture that cannot be read is skipped and reported; the others are all encoded.
"""

from dataclasses import dataclass
from pathlib import Path

from autoenc_cli.codec.budget import check_steps
from autoenc_cli.codec.encoding import check_resize, encode_picture
from autoenc_cli.codec.latentfile import check_dtype, save_latent
from autoenc_cli.codec.refine import Refinement
from autoenc_cli.codec.stack import encode_rows, pictures_per_pass, read_or_why, shown_size
from autoenc_cli.data.jobs import consecutive, job_identity, refinement_steps, run_job, share_sized, start_job

JOB_FOLDER = ".autoenc-encode.job"  # among the outputs; hidden, so that a folder of latents holds only latents
ONE_PASS_BATCH = 64  # at most, pictures saved as one batch of a one-pass job (each still encoded alone)


@dataclass
class Written:
    picture: Path
    latent: Path
    shape: tuple[int, ...]
    size: tuple[int, int]  # the picture's (width, height)


@dataclass
class Encoded:
    written: list[Written]
    skipped: list[tuple[Path, str]]  # (picture, why)


def job_folder(targets: list[Path]) -> Path:
    return targets[0].parent / JOB_FOLDER


def same_size_batches(sizes: list[tuple[int, int] | None], per_batch) -> list[list[int]]:
    """Consecutive pictures of one size in batches of at most per_batch(size); an unreadable one alone."""
    batches: list[list[int]] = []
    for i, size in enumerate(sizes):
        last = batches[-1] if batches else None
        if last and size and sizes[last[0]] == size and len(last) < per_batch(size):
            last.append(i)
        else:
            batches.append([i])
    return batches


def encode_files(codec, files: list[Path], targets: list[Path], dtype: str = "float32", resize: int | None = None,
                 refine: int = 0, progress=None, say=None) -> Encoded | None:
    """Encode files[i] into targets[i] (a latent .npy and its sidecar) for every i, as a job. Under torchrun every
    process calls it and takes its share; rank 0 returns what was written and skipped, the others None."""
    check_dtype(dtype)
    check_resize(resize)
    refine = check_steps(refine)
    model, budget, precision = codec.module, codec._budget, codec.precision
    sizes = [shown_size(p, resize) for p in files]
    options = {"--dtype": dtype, "--resize": resize, "--refine": refine, "--max-memory": budget, "--precision": precision,
               "outputs": [str(t) for t in targets]}

    def plan(processes: int) -> list[list[int]]:
        if not refine:  # each picture encoded alone, as encode_file does: a batch is what is saved at once
            return consecutive(len(files), share_sized(len(files), processes, ONE_PASS_BATCH))
        share = -(-len(files) // (2 * processes))  # two batches a process at least, as --stack refines
        return same_size_batches(sizes, lambda size: min(share, pictures_per_pass(model, size, budget)))
    pixels = [s[0] * s[1] if s else 1 for s in sizes]
    job = start_job(job_folder(targets), job_identity("encode", files, codec.fingerprint, options), plan, pixels, say)
    refined = Refinement(refine, precision=precision).to_json() if refine else None

    def do_batch(items: list[int], within):
        read = [read_or_why((files[i], resize)) for i in items]
        good = [(i, a) for i, (a, _) in zip(items, read) if a is not None]
        steps = refinement_steps(within) if refine else None
        if refine and good:  # pictures of one size, refined together
            latents = encode_rows(model, [a for _, a in good], len(good), budget, refine, steps, precision)
        else:  # each alone, as encode_file does
            latents = [encode_picture(model, a, budget, precision) for _, a in good]
        written = []
        for k, (i, a) in enumerate(good):
            size = (a.shape[1], a.shape[0])
            save_latent(targets[i], latents[k], size, dtype, resize, codec.fingerprint, refined)
            written.append([i, list(latents[k].shape), list(size)])
        return {"written": written, "skipped": [[i, why] for i, (a, why) in zip(items, read) if a is None]}, None

    run_job(job, do_batch, progress)
    if job.rank != 0:
        return None
    result = Encoded([], [])
    for part in job.parts(arrays=False):
        result.written += [Written(files[i], targets[i], tuple(shape), tuple(size)) for i, shape, size in part.record["written"]]
        result.skipped += [(files[i], why) for i, why in part.record["skipped"]]
    job.close()
    return result
