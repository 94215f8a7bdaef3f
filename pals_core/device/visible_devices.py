"""Which GPUs a node's agent controls: ``CUDA_VISIBLE_DEVICES`` parsed strictly and resolved
to NVML handles; GPUs in MIG mode are refused (a power limit applies to the whole GPU)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pals_core.device.nvml_gpu import nvml_call, nvml_text, translate_error
from pals_core.errors import GPUNotFoundError, GPUNotSupportedError


def parse_visible_devices(value: str | None) -> list[int | str] | None:
    """``CUDA_VISIBLE_DEVICES`` as a list of indices and UUIDs (``None``: unset, all GPUs).

    Unlike CUDA, which silently stops at the first invalid entry, an invalid entry is an error.
    Integer entries are taken as NVML (PCI bus order) indices, which match CUDA's only with
    ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` or on a node whose GPUs are all the same model.
    """
    if value is None:
        return None
    entries = [e.strip() for e in value.split(",")]
    if value.strip() == "" or value.strip() == "-1":
        raise GPUNotFoundError(
            f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU; unset it or list GPUs to control"
        )
    parsed: list[int | str] = []
    for entry in entries:
        if entry.isdigit():
            parsed.append(int(entry))
        elif entry.startswith("MIG-"):
            raise GPUNotSupportedError(
                f"CUDA_VISIBLE_DEVICES entry {entry!r} is a MIG instance; power limits apply to "
                "whole GPUs, so list the parent GPU (index or GPU-UUID) instead"
            )
        elif entry.startswith("GPU-") and len(entry) > 4:
            parsed.append(entry)
        else:
            raise GPUNotFoundError(
                f"CUDA_VISIBLE_DEVICES entry {entry!r} is invalid: expected a GPU index (e.g. 0) "
                "or a GPU UUID (GPU-...), separated by commas"
            )
    if len(set(parsed)) != len(parsed):
        raise GPUNotFoundError(f"CUDA_VISIBLE_DEVICES={value!r} lists a GPU twice")
    return parsed


def select_handles(nvml: ModuleType, entries: list[int | str] | None) -> list[Any]:
    count = int(nvml_call(nvml, "count GPUs", nvml.nvmlDeviceGetCount))
    if count == 0:
        raise GPUNotFoundError("NVML sees no GPU on this node")

    def handle(i: int) -> Any:
        return nvml_call(nvml, f"open GPU {i}", nvml.nvmlDeviceGetHandleByIndex, i)

    if entries is None:
        return [handle(i) for i in range(count)]
    uuids: list[str] | None = None
    selected: list[int] = []
    for entry in entries:
        if isinstance(entry, int):
            if entry >= count:
                raise GPUNotFoundError(
                    f"CUDA_VISIBLE_DEVICES entry {entry} is out of range: this node has {count} "
                    f"GPU(s), indices 0-{count - 1}"
                )
            selected.append(entry)
            continue
        if uuids is None:  # CUDA accepts any unique UUID prefix, so compare with them all
            uuids = [
                nvml_text(nvml_call(nvml, "read UUID", nvml.nvmlDeviceGetUUID, handle(i)))
                for i in range(count)
            ]
        matches = [i for i, u in enumerate(uuids) if u.startswith(entry)]
        if len(matches) != 1:
            problem = "matches no GPU" if not matches else "matches several GPUs"
            raise GPUNotFoundError(
                f"CUDA_VISIBLE_DEVICES entry {entry!r} {problem}; GPUs here: {', '.join(uuids)}"
            )
        selected.append(matches[0])
    if len(set(selected)) != len(selected):
        raise GPUNotFoundError("CUDA_VISIBLE_DEVICES names the same GPU twice")
    return [handle(i) for i in selected]


def refuse_mig(nvml: ModuleType, handle: Any, where: str) -> None:
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError as err:
        if isinstance(translate_error(nvml, err, ""), GPUNotSupportedError):
            return  # pre-Ampere GPUs have no MIG at all
        raise translate_error(nvml, err, f"{where}: read the MIG mode") from err
    if current == nvml.NVML_DEVICE_MIG_ENABLE:
        raise GPUNotSupportedError(
            f"{where} is in MIG mode: pals_core controls whole GPUs (a power limit applies to "
            "every MIG instance at once). Disable MIG (`sudo nvidia-smi -i <index> -mig 0`) or "
            "leave this GPU out with CUDA_VISIBLE_DEVICES"
        )
