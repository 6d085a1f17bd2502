"""Checking an image file from its header, before a single pixel is read.

:func:`check_image_file` reads what a file's header claims (dimensions, size, components,
spacing, where the pixel data lie) and raises :class:`~workbench.errors.ImageError` when
reading the pixels would give a wrong image, allocate unbounded memory or never end:

* the path is not a regular file: a FIFO or a device would block or stream forever;
* the image is not a 3-D scalar volume (2-D, 4-D, vector or RGB);
* it claims more voxels than ``max_voxels`` (default :data:`DEFAULT_MAX_VOXELS`): a
  100-byte header can claim gigabytes, and ITK allocates them before reading;
* a voxel spacing is zero, negative, NaN or infinite. ITK reads a zero or NaN NIfTI
  ``pixdim`` as 1 mm and a negative one as its absolute value, so for NIfTI the raw
  ``pixdim`` is checked (with nibabel); for other formats, what ITK reports;
* a ``.nii.gz`` file has an uncompressed twin (same name without ``.gz``) in its folder: ITK's
  NIfTI library takes the header from the ``.nii.gz`` and the pixels from the twin;
* the file holds fewer bytes of pixel data than the header implies (ITK fills a truncated
  NIfTI with zeros). Checked for NIfTI ``.nii`` (file size) and ``.nii.gz`` (length of the
  decompressed stream: the gzip trailer when it agrees, else by decompressing up to the
  expected length), MetaImage ``.mha`` / ``.mhd`` + data file and NRRD ``.nrrd`` / ``.nhdr``
  + data file with raw data, and the stored size of compressed MetaImage data. Other
  encodings (gzip NRRD, lists of data files) are left to ITK, which refuses short data.

Why 512³ voxels (134,217,728) by default: it is 2.5 times a large clinical breast DCE
volume (512 × 512 × 200) and keeps one volume under 0.5 GiB as float32 (preprocessing holds a
few per phase), while a header claiming 3000 × 3000 × 300 is refused instead of allocating
gigabytes. Raise it with ``limits.max_voxels`` in the run config, or ``max_voxels=`` of
:func:`~workbench.imaging.io.read_image` and :func:`~workbench.cohort.check.check_cohort`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path

import SimpleITK as sitk

from workbench.errors import ImageError
from workbench.hashing import non_regular_kind

DEFAULT_MAX_VOXELS = 512**3
_HEADER_MAX = 1 << 16  # text headers (MetaImage, NRRD) are read up to this many bytes
_CHUNK = 1 << 20
_NIFTI_HEADER = 352  # bytes: a NIfTI-1 header and its extension flag
_COMPONENT_BYTES = {
    getattr(sitk, f"sitk{prefix}{name}"): size
    for name, size in (("UInt8", 1), ("Int8", 1), ("UInt16", 2), ("Int16", 2), ("UInt32", 4),
                       ("Int32", 4), ("UInt64", 8), ("Int64", 8), ("Float32", 4),
                       ("Float64", 8))
    for prefix in ("", "Vector") if hasattr(sitk, f"sitk{prefix}{name}")
}
__all__ = ["DEFAULT_MAX_VOXELS", "ImageHeader", "check_image_file", "format_numbers",
           "format_size", "itk_error_detail", "spacing_problem"]


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    """What an image file's header claims (ITK's view; sizes in x, y, z order)."""

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    components: int
    component_bytes: int | None  # None: a pixel type without a fixed size

    @property
    def voxels(self) -> int:
        return math.prod(self.size)

    @property
    def data_bytes(self) -> int | None:
        """Bytes of uncompressed pixel data the header implies."""
        if self.component_bytes is None:
            return None
        return self.voxels * self.components * self.component_bytes


def format_size(size: Sequence[int]) -> str:
    """``(206, 206, 18)`` as ``"206×206×18"``."""
    return "×".join(str(int(n)) for n in size)


def format_numbers(values: Sequence[float], decimals: int = 4) -> str:
    """Numbers as a plain tuple, ``"(0.7107, 0.7107, 2.2844)"`` (never ``np.float64(...)``)."""
    return "(" + ", ".join(str(round(float(v), decimals)) for v in values) + ")"


def spacing_problem(spacing: Sequence[float]) -> str | None:
    """Why a spacing is unusable (zero, negative, NaN or infinite), or ``None``."""
    bad = [float(s) for s in spacing if not (math.isfinite(float(s)) and float(s) > 0)]
    if not bad:
        return None
    return (f"voxel spacing {format_numbers(spacing)} is not usable ({format_numbers(bad)[1:-1]}"
            " is not a positive finite number of mm); fix the header's spacing and re-export "
            "the image")


def itk_error_detail(exc: BaseException) -> str:
    """The meaningful part of a SimpleITK exception: the text after ``ERROR:`` (without
    ITK's ``Class(0x...):`` prefix) and the lines after it, not the C++ source location."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    for i, line in enumerate(lines):
        found = re.search(r"ERROR:\s*(.*)", line)
        if found:
            text = re.sub(r"^\w+\(0x[0-9a-fA-F]+\):\s*", "", found.group(1))
            return " ".join([text, *lines[i + 1:]]).strip()[:300]
    useful = [line for line in lines if not line.startswith("Exception thrown in")]
    return (useful[0] if useful else lines[0] if lines else type(exc).__name__)[:300]


def check_image_file(path: str | Path, *, max_voxels: int | None = None,
                     patient: str | None = None, what: str = "image",
                     spec: object = None) -> ImageHeader:
    """Check an image file from its header (see the module docstring) and return the header.

    Parameters
    ----------
    path
        The image file (NIfTI, NRRD, MetaImage, or anything else ITK reads).
    max_voxels
        Largest voxel count accepted; ``None``: :data:`DEFAULT_MAX_VOXELS`.
    patient, what
        Patient and human name of the image (``"phase 'pre'"``), for error messages.
    spec
        How the caller named the file (for error messages; default ``path``).

    Raises
    ------
    ImageError
        Naming the patient, the file and what is wrong.
    """
    p = Path(path)
    spec = p if spec is None else spec
    cap = DEFAULT_MAX_VOXELS if max_voxels is None else int(max_voxels)

    def fail(message: str, file: object = spec) -> ImageError:
        return ImageError(message, patient=patient, step="read", path=file)

    kind = non_regular_kind(p)
    if kind is not None:
        raise fail(f"{what} is a {kind}, not a regular file: reading it would block or never "
                   "end; give the path of an image file")
    header = _read_information(p, fail, what)
    if len(header.size) != 3:
        raise fail(f"{what} is {len(header.size)}-D ({format_size(header.size)}); expected a "
                   "3-D volume" + ("; select one volume of the series" if len(header.size) > 3
                                   else ""))
    if header.components != 1:
        raise fail(f"{what} has {header.components} components per voxel (vector or colour "
                   "image); expected one scalar value per voxel")
    if header.voxels > cap:
        raise fail(f"{what} claims {header.voxels:,} voxels ({format_size(header.size)}), more "
                   f"than the limit of {cap:,}; if the image is genuine, raise "
                   "limits.max_voxels in the run config (max_voxels= in the API)")
    why = spacing_problem(header.spacing)
    if why is not None:
        raise fail(f"{what}: {why}")
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        _check_nifti(p, fail, what)
    elif name.endswith((".mha", ".mhd")):
        _check_layout(_meta_layout(p, fail, what), header, fail, what)
    elif name.endswith((".nrrd", ".nhdr")):
        _check_layout(_nrrd_layout(p, fail, what), header, fail, what)
    return header


def _read_information(p: Path, fail, what: str) -> ImageHeader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        name = p.name.lower()
        held, corrupt = (_gzip_length(p, _NIFTI_HEADER) if name.endswith(".nii.gz") else
                         (p.stat().st_size, False) if name.endswith(".nii") else (None, True))
        if held is not None and held < _NIFTI_HEADER and not corrupt:  # cut in the header
            raise fail(_truncated(what, _NIFTI_HEADER, held, "the file holds")) from exc
        raise fail(f"cannot read {what}: corrupt or unsupported file "
                   f"({itk_error_detail(exc)})") from exc
    return ImageHeader(size=tuple(int(n) for n in reader.GetSize()),
                       spacing=tuple(float(s) for s in reader.GetSpacing()),
                       components=int(reader.GetNumberOfComponents()),
                       component_bytes=_COMPONENT_BYTES.get(reader.GetPixelID()))


def _truncated(what: str, needed: int, actual: int, how: str) -> str:
    return (f"{what} is truncated: its header implies {needed:,} bytes, {how} only {actual:,}; the "
            "file was cut short (interrupted copy, download or export): copy or export it again")


# --------------------------------------------------------------------------- NIfTI
def _check_nifti(p: Path, fail, what: str) -> None:
    import nibabel as nib

    gz = p.name.lower().endswith(".gz")
    if gz:
        with open(p, "rb") as fh:
            if fh.read(2) != b"\x1f\x8b":
                raise fail(f"{what} is named .nii.gz but is not gzip-compressed; rename it .nii")
        twin = p.with_name(p.name[:-3])
        if twin.exists():  # ITK's NIfTI library would read the pixels from the twin
            raise fail(f"{what} has an uncompressed twin {twin.name} in its folder, and ITK "
                       f"reads the pixels of {p.name} from it (the header from {p.name}); "
                       "delete or move one of the two")
    try:
        with warnings.catch_warnings(), nib.imageglobals.LoggingOutputSuppressor():
            warnings.simplefilter("ignore")  # what nibabel would say, the checks below say
            nii = nib.load(str(p))
        with nib.openers.ImageOpener(str(p)) as fh:  # unchecked: load() "fixes" bad pixdim
            raw = type(nii.header).from_fileobj(fh, check=False)
        pixdim = [float(v) for v in raw["pixdim"][1:4]]
        proxy = nii.dataobj
        needed = int(proxy.offset) + math.prod(proxy.shape) * proxy.dtype.itemsize
    except Exception as exc:  # nibabel's header errors have no common base class
        held, corrupt = _gzip_length(p, _NIFTI_HEADER) if gz else (None, True)
        if held is not None and not corrupt:
            raise fail(_truncated(what, _NIFTI_HEADER, held, "its decompressed stream holds"
                                  )) from exc
        raise fail(f"cannot read {what}: invalid NIfTI header ({type(exc).__name__}: "
                   f"{exc})") from exc
    why = spacing_problem(pixdim)
    if why is not None:
        raise fail(f"{what}: NIfTI pixdim {why.removeprefix('voxel spacing ')}")
    if not gz:
        actual = p.stat().st_size
        if actual < needed:
            raise fail(_truncated(what, needed, actual, "the file holds"))
        return
    actual, corrupt = _gzip_length(p, needed)
    if actual is not None and corrupt:
        raise fail(f"{what} is corrupt: its gzip stream breaks after {actual:,} of the "
                   f"{needed:,} bytes its header implies; copy or export it again")
    if actual is not None:
        raise fail(_truncated(what, needed, actual, "its decompressed stream holds"))


def _gzip_length(p: Path, needed: int) -> tuple[int | None, bool]:
    """``(None, False)`` if the gzip stream of ``p`` holds at least ``needed`` bytes, else
    how many it holds and whether it is corrupt (rather than cut short). The trailer's
    length (mod 2**32) is trusted when it equals ``needed``: a cut stream ends in compressed
    data, which matches with probability 2**-32."""
    if p.stat().st_size >= 18:
        with open(p, "rb") as fh:
            fh.seek(-4, 2)
            if int.from_bytes(fh.read(4), "little") == needed % 2**32:
                return None, False
    total, corrupt = 0, False
    stream = zlib.decompressobj(zlib.MAX_WBITS | 16)  # gzip framing
    with open(p, "rb") as fh:
        try:
            while total < needed and (data := fh.read(_CHUNK)):
                while data and total < needed:  # bounded output per call: no zip bomb
                    total += len(stream.decompress(data, _CHUNK))
                    if stream.eof:  # next gzip member, if any
                        data, stream = stream.unused_data, zlib.decompressobj(zlib.MAX_WBITS | 16)
                    else:
                        data = stream.unconsumed_tail
        except zlib.error:
            corrupt = True  # what was decompressed before is what it holds
    return (None, False) if total >= needed else (total, corrupt)


# --------------------------------------------------------------------------- MetaImage, NRRD
@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where pixel data lie: ``data`` file, from byte ``offset`` (``-1``: the last bytes of
    the file), either raw or compressed to ``stored`` bytes."""

    data: Path
    offset: int
    raw: bool
    stored: int | None = None


def _text_header(p: Path) -> bytes:
    with open(p, "rb") as fh:
        return fh.read(_HEADER_MAX)


def _meta_layout(p: Path, fail, what: str) -> _Layout | None:
    head = _text_header(p)
    fields: dict[str, str] = {}
    end = None
    pos = 0
    for line in head.split(b"\n"):
        pos += len(line) + 1
        key, _, value = line.decode("latin-1").partition("=")
        fields[key.strip().lower()] = value.strip()
        if key.strip().lower() == "elementdatafile":
            end = pos
            break
    if end is None or fields.get("binarydata", "true").lower() not in ("true", "1"):
        return None
    compressed = fields.get("compresseddata", "false").lower() in ("true", "1")
    try:
        stored = int(fields["compresseddatasize"]) if "compresseddatasize" in fields else None
        skip = int(fields.get("headersize", "0"))
    except ValueError:
        return None
    source = fields["elementdatafile"]
    if source.upper() == "LOCAL":
        return _Layout(p, end, not compressed, stored)
    if source.upper().startswith("LIST") or "%" in source or " " in source:
        return None  # one file per slice: left to ITK
    return _Layout(_data_file(p, source, fail, what), skip, not compressed, stored)


def _nrrd_layout(p: Path, fail, what: str) -> _Layout | None:
    head = _text_header(p)
    if not head.startswith(b"NRRD"):
        return None
    fields: dict[str, str] = {}
    pos = 0
    end = None
    for line in head.split(b"\n"):
        pos += len(line) + 1
        text = line.decode("latin-1").rstrip("\r")
        if not text:
            end = pos
            break
        if text.startswith("#") or ":=" in text:
            continue
        key, _, value = text.partition(":")
        fields[key.strip().lower()] = value.strip()
    if fields.get("encoding", "raw").lower() != "raw":
        return None
    try:
        if int(fields.get("line skip", fields.get("lineskip", "0"))) != 0:
            return None
        skip = int(fields.get("byte skip", fields.get("byteskip", "0")))
    except ValueError:
        return None
    source = fields.get("data file", fields.get("datafile"))
    if source is None:
        return None if end is None else _Layout(p, -1 if skip == -1 else end + skip, True)
    if source.upper().startswith("LIST") or " " in source:
        return None
    return _Layout(_data_file(p, source, fail, what), skip, True)


def _data_file(header: Path, name: str, fail, what: str) -> Path:
    data = Path(name) if Path(name).is_absolute() else header.parent / name
    if not data.exists():
        raise fail(f"the data file of {what} is missing", file=data)
    kind = non_regular_kind(data)
    if kind is not None:
        raise fail(f"the data file of {what} is a {kind}, not a regular file: reading it "
                   "would block or never end", file=data)
    return data


def _check_layout(layout: _Layout | None, header: ImageHeader, fail, what: str) -> None:
    if layout is None:
        return
    payload = header.data_bytes if layout.raw else layout.stored
    if payload is None:
        return
    needed = payload if layout.offset < 0 else layout.offset + payload
    actual = layout.data.stat().st_size
    if actual < needed:
        how = "the file holds" if layout.raw else "(data compressed) the file holds"
        raise fail(_truncated(what, needed, actual, how), file=layout.data)
