"""The NVML backend against autospec fakes of pynvml (no GPU on this machine)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pals_core.device.nvml import (
    NVMLGPU,
    NVMLGPUGroup,
    WriteAccess,
    build_nvml_group,
    load_nvml,
    parse_visible_devices,
    restore_saved_limits,
)
from pals_core.errors import (
    GPUError,
    GPUInitError,
    GPUNotFoundError,
    GPUNotSupportedError,
    GPUObserveOnlyError,
    GPUPermissionError,
    PowerLimitOutOfRangeError,
)
from tests.pals_core.device.fake_nvml import FakeDevice, FakeHandle, FakeNVML, two_h100s

REPO_ROOT = Path(__file__).resolve().parents[3]
pynvml = load_nvml()


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "gpu-restore.json"


def _fake(monkeypatch: pytest.MonkeyPatch, devices: list[FakeDevice], **kwargs: object) -> FakeNVML:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return FakeNVML(devices, **kwargs).install(monkeypatch.setattr)  # type: ignore[arg-type]


def _group(state_path: Path, **kwargs: object) -> NVMLGPUGroup:
    kwargs.setdefault("observe_only", False)
    return build_nvml_group(state_path=state_path, install_handlers=False, **kwargs)  # type: ignore[arg-type]


def test_reads_are_converted_from_milliwatts_and_millijoules(
    monkeypatch: pytest.MonkeyPatch, state_path: Path
) -> None:
    _fake(monkeypatch, two_h100s(limit_mw=650_500, min_mw=200_000, default_mw=700_000))
    with _group(state_path) as group:
        gpu = group[1]
        assert (gpu.index, gpu.uuid, gpu.name) == (
            1,
            "GPU-bbbbbbbb-1111-1111-1111-111111111111",
            "NVIDIA H100 80GB HBM3",
        )
        c = gpu.power_limit_constraints()
        assert (c.min_w, c.max_w, c.default_w) == (200.0, 700.0, 700.0)
        assert gpu.get_power_limit_w() == 650.5
        assert gpu.get_power_w() == pytest.approx(350.123)
        assert gpu.get_energy_j() == pytest.approx(1_234_567.89)
        assert gpu.get_sm_clock_mhz() == 1980.0
        assert gpu.get_temperature_c() == 45.0
        assert gpu.get_memory_used_bytes() == 12_345_678_912


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (pynvml.NVML_ERROR_NO_PERMISSION, GPUPermissionError),
        (pynvml.NVML_ERROR_NOT_SUPPORTED, GPUNotSupportedError),
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, GPUInitError),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, GPUInitError),
        (pynvml.NVML_ERROR_INVALID_ARGUMENT, GPUNotFoundError),
        (pynvml.NVML_ERROR_NOT_FOUND, GPUNotFoundError),
        (pynvml.NVML_ERROR_GPU_IS_LOST, GPUError),
    ],
)
def test_nvml_errors_become_typed_project_errors(
    monkeypatch: pytest.MonkeyPatch, state_path: Path, code: int, error_type: type[GPUError]
) -> None:
    fake = _fake(monkeypatch, two_h100s())
    with _group(state_path) as group:
        fake.devices[0].fail["nvmlDeviceGetTemperature"] = code
        with pytest.raises(error_type, match="GPU 0: read the temperature") as info:
            group[0].get_temperature_c()
        assert type(info.value) is error_type
        assert isinstance(info.value.__cause__, pynvml.NVMLError)


def test_nvml_unavailable_is_an_init_error_that_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, [], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    with pytest.raises(GPUInitError, match="NVML is unavailable"):
        build_nvml_group(install_handlers=False)


def test_missing_privilege_is_detected_once_and_explained(
    monkeypatch: pytest.MonkeyPatch, state_path: Path
) -> None:
    fake = _fake(monkeypatch, two_h100s(), can_write=False)
    with _group(state_path) as group:
        with pytest.raises(GPUPermissionError) as first:
            group.set_power_limit_w(0, 500.0)
        message = str(first.value)
        assert "setcap cap_sys_admin+ep" in message
        assert "nvidia-smi -pm 1" in message
        assert "PALS_OBSERVE_ONLY=1" in message
        assert fake.writes() == 1
        for position in (0, 1):  # the other GPU too: the privilege belongs to the process
            with pytest.raises(GPUPermissionError) as again:
                group.set_power_limit_w(position, 400.0)
            assert str(again.value) == message
        assert fake.writes() == 1
    assert [d.limit_mw for d in fake.devices] == [700_000, 700_000]
    assert not state_path.exists()  # closing removed the entry of the refused first write


def test_observe_only_refuses_writes_without_touching_nvml_or_the_state_file(
    monkeypatch: pytest.MonkeyPatch, state_path: Path
) -> None:
    fake = _fake(monkeypatch, two_h100s())
    with _group(state_path, observe_only=True) as group:
        with pytest.raises(GPUObserveOnlyError, match="PALS_OBSERVE_ONLY"):
            group.set_power_limit_w(0, 500.0)
        with pytest.raises(GPUObserveOnlyError):
            group[1].set_power_limit_w(500.0)
        assert group.get_power_w() == [pytest.approx(350.123)] * 2
    assert fake.writes() == 0
    assert not state_path.exists()


def test_out_of_range_is_refused_before_any_nvml_call(
    monkeypatch: pytest.MonkeyPatch, state_path: Path
) -> None:
    fake = _fake(monkeypatch, two_h100s())
    with _group(state_path) as group:
        before = len(fake.calls)
        for power_w in (150.0, 700.5):
            with pytest.raises(PowerLimitOutOfRangeError, match=r"\[200\.0, 700\.0\] W"):
                group[0].set_power_limit_w(power_w)
            with pytest.raises(PowerLimitOutOfRangeError):
                group.set_power_limit_w(0, power_w)
        assert fake.calls[before:] == []


def test_unchanged_value_is_not_written(monkeypatch: pytest.MonkeyPatch, state_path: Path) -> None:
    fake = _fake(monkeypatch, two_h100s(limit_mw=500_000))
    with _group(state_path) as group:
        group[0].set_power_limit_w(500.0)
        group[0].set_power_limit_w(500.0004)  # same at NVML's 1 mW resolution
        assert fake.writes() == 0
        group[0].set_power_limit_w(450.25)
        assert fake.writes() == 1
        assert fake.devices[0].limit_mw == 450_250


def test_group_saves_originals_before_the_first_write_and_restores_on_close(
    monkeypatch: pytest.MonkeyPatch, state_path: Path
) -> None:
    fake = _fake(monkeypatch, two_h100s(limit_mw=650_000))
    saved_before_write: list[dict[str, object]] = []
    real_set = fake.nvmlDeviceSetPowerManagementLimit

    def spy(handle: FakeHandle, limit: int) -> None:
        saved_before_write.append(json.loads(state_path.read_text()))
        real_set(handle, limit)

    monkeypatch.setattr(fake, "nvmlDeviceSetPowerManagementLimit", spy)
    fake.install(monkeypatch.setattr)  # type: ignore[arg-type]
    with _group(state_path) as group:
        group.set_power_limits_w([400.0, 300.0])
        group.set_power_limits_w([350.0, 300.0])
        assert [d.limit_mw for d in fake.devices] == [350_000, 300_000]
        saved = json.loads(state_path.read_text())["gpus"]
        assert {u: e["original_w"] for u, e in saved.items()} == {
            d.uuid: 650.0 for d in fake.devices
        }
        assert saved[fake.devices[0].uuid]["pid"] == os.getpid()
    assert saved_before_write[0]["gpus"][fake.devices[0].uuid]["original_w"] == 650.0  # type: ignore[index]
    assert [d.limit_mw for d in fake.devices] == [650_000, 650_000]
    assert not state_path.exists()
    assert fake.calls[-1] == "nvmlShutdown"


def test_crash_is_undone_by_restore_saved_limits(
    monkeypatch: pytest.MonkeyPatch, state_path: Path
) -> None:
    fake = _fake(monkeypatch, two_h100s(limit_mw=650_000, default_mw=700_000))
    crashed = _group(state_path)
    crashed.set_power_limit_w(1, 300.0)  # ... and the process dies without closing:
    del crashed
    saved = json.loads(state_path.read_text())
    saved["gpus"][fake.devices[1].uuid]["pid"] = os.getpid() + 1  # it was another process
    state_path.write_text(json.dumps(saved))
    # a new run capping the same GPU keeps the true original in the state file
    with _group(state_path) as second:
        second.set_power_limit_w(1, 250.0)
    assert fake.devices[1].limit_mw == 300_000  # the second run put back what it found
    assert json.loads(state_path.read_text())["gpus"][fake.devices[1].uuid]["original_w"] == 650.0

    done = restore_saved_limits(state_path=state_path)
    assert [(r.index, r.limit_w, r.source) for r in done] == [(1, 650.0, "saved")]
    assert fake.devices[1].limit_mw == 650_000
    assert not state_path.exists()

    done = restore_saved_limits(state_path=state_path, defaults=True)
    assert [(r.index, r.limit_w, r.source) for r in done] == [
        (0, 700.0, "default"),
        (1, 700.0, "default"),
    ]
    assert [d.limit_mw for d in fake.devices] == [700_000, 700_000]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tests.pals_core.device.fake_nvml import FakeNVML, two_h100s
    from pals_core.device.nvml import build_nvml_group

    log_path, state_path, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    FakeNVML(two_h100s(), log_path=log_path).install()
    group = build_nvml_group(state_path=state_path, observe_only=False)
    group.set_power_limits_w([500.0, 450.0])
    print("capped", flush=True)
    if mode == "wait":
        time.sleep(30)
    """
)


@pytest.mark.parametrize(
    ("mode", "signum", "expected_returncode"),
    [
        ("exit", None, 0),
        ("wait", signal.SIGTERM, -signal.SIGTERM),
        # the previous handler raises KeyboardInterrupt, of which Python dies by SIGINT
        ("wait", signal.SIGINT, -signal.SIGINT),
    ],
)
def test_limits_are_restored_at_exit_and_on_signals(
    tmp_path: Path, mode: str, signum: int | None, expected_returncode: int
) -> None:
    log_path, state_path = tmp_path / "nvml.log", tmp_path / "gpu-restore.json"
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(log_path), str(state_path), mode],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As a process started from a terminal: a run started in the background (`cmd &` in a
        # script) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt at all.
        preexec_fn=_default_sigint,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "capped"
    if mode == "wait":
        assert state_path.exists()
    if signum is not None:
        child.send_signal(signum)
    child.wait(timeout=20)
    assert child.returncode == expected_returncode, child.stderr.read() if child.stderr else ""
    assert log_path.read_text().splitlines() == [
        "set GPU-aaaaaaaa-0000-0000-0000-000000000000 500000",
        "set GPU-bbbbbbbb-1111-1111-1111-111111111111 450000",
        "set GPU-aaaaaaaa-0000-0000-0000-000000000000 700000",
        "set GPU-bbbbbbbb-1111-1111-1111-111111111111 700000",
    ]
    assert not state_path.exists()


def test_signal_handler_chains_to_the_previous_handler(
    monkeypatch: pytest.MonkeyPatch, state_path: Path
) -> None:
    fake = _fake(monkeypatch, two_h100s())
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        group = build_nvml_group(state_path=state_path, observe_only=False)
        group.set_power_limit_w(0, 500.0)
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]
        assert fake.devices[0].limit_mw == 700_000
        assert signal.getsignal(signal.SIGTERM) is not group._on_signal
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("1,0", [1, 0]),
        (" 0 , GPU-bbbb", [0, "GPU-bbbb"]),
    ],
)
def test_parse_visible_devices(value: str | None, expected: list[int | str] | None) -> None:
    assert parse_visible_devices(value) == expected


@pytest.mark.parametrize(
    ("value", "error_type", "match"),
    [
        ("", GPUNotFoundError, "hides every GPU"),
        ("0,abc", GPUNotFoundError, "entry 'abc' is invalid"),
        ("0,-1", GPUNotFoundError, "entry '-1' is invalid"),
        ("1,1", GPUNotFoundError, "twice"),
        ("MIG-1234", GPUNotSupportedError, "MIG instance"),
    ],
)
def test_parse_visible_devices_rejects_invalid_entries(
    value: str, error_type: type[GPUError], match: str
) -> None:
    with pytest.raises(error_type, match=match):
        parse_visible_devices(value)


def test_cuda_visible_devices_selects_and_orders_gpus(
    monkeypatch: pytest.MonkeyPatch, state_path: Path
) -> None:
    _fake(monkeypatch, two_h100s())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbbb,0")
    with _group(state_path) as group:
        assert [g.index for g in group] == [1, 0]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with _group(state_path) as group:
        assert [g.uuid for g in group] == ["GPU-bbbbbbbb-1111-1111-1111-111111111111"]
    for value, match in [("2", "out of range: this node has 2"), ("GPU-cc", "matches no GPU")]:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
        with pytest.raises(GPUNotFoundError, match=match):
            _group(state_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa,0")
    with pytest.raises(GPUNotFoundError, match="names the same GPU twice"):
        _group(state_path)


def test_ambiguous_uuid_prefix_is_an_error(
    monkeypatch: pytest.MonkeyPatch, state_path: Path
) -> None:
    _fake(monkeypatch, [FakeDevice(uuid="GPU-abc-1"), FakeDevice(uuid="GPU-abc-2")])
    with pytest.raises(GPUNotFoundError, match="'GPU-abc' matches several GPUs"):
        _group(state_path, visible_devices="GPU-abc")
    with _group(state_path, visible_devices="GPU-abc-2") as group:
        assert [g.index for g in group] == [1]


def test_mig_devices_are_refused(monkeypatch: pytest.MonkeyPatch, state_path: Path) -> None:
    devices = two_h100s()
    devices[1].mig_mode = pynvml.NVML_DEVICE_MIG_ENABLE
    fake = _fake(monkeypatch, devices)
    with pytest.raises(GPUNotSupportedError, match=r"GPU 1 .* is in MIG mode"):
        _group(state_path)
    assert fake.calls[-1] == "nvmlShutdown"
    with _group(state_path, visible_devices="0") as group:  # leaving it out works
        assert len(group) == 1
    devices[1].mig_mode = None  # pre-Ampere: no MIG at all
    with _group(state_path) as group:
        assert len(group) == 2


def test_energy_is_integrated_from_power_samples_without_a_counter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _fake(monkeypatch, [FakeDevice(uuid="GPU-old", energy_mj=None, power_mw=100_000)])
    now_s = [10.0]
    gpu = NVMLGPU(pynvml, FakeHandle(0), access=WriteAccess(False), monotonic_s=lambda: now_s[0])
    assert gpu.energy_source == "integrated"
    assert gpu.get_energy_j() == 0.0
    now_s[0] = 12.0
    fake.devices[0].power_mw = 300_000
    assert gpu.get_power_w() == 300.0  # every power reading is a sample
    now_s[0] = 13.0
    assert gpu.get_energy_j() == pytest.approx(2 * (100 + 300) / 2 + 1 * 300)

    fake.devices[0].energy_mj = 5_000
    assert NVMLGPU(pynvml, FakeHandle(0), access=WriteAccess(False)).energy_source == "counter"


def test_unwritable_state_file_stops_the_write(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = _fake(monkeypatch, two_h100s())
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with (
        _group(blocker / "gpu-restore.json") as group,
        pytest.raises(GPUError, match=r"GPU restore state file .*not-a-folder/gpu-restore\.json"),
    ):
        group.set_power_limit_w(0, 500.0)
    assert fake.writes() == 0


def test_restore_keeps_going_past_a_failing_gpu(
    monkeypatch: pytest.MonkeyPatch, state_path: Path
) -> None:
    fake = _fake(monkeypatch, two_h100s(limit_mw=650_000))
    crashed = _group(state_path)
    crashed.set_power_limits_w([300.0, 300.0])
    fake.devices[0].fail["nvmlDeviceSetPowerManagementLimit"] = pynvml.NVML_ERROR_GPU_IS_LOST
    with pytest.raises(GPUError, match="GPU 0: set the power limit"):
        restore_saved_limits(state_path=state_path)
    assert fake.devices[1].limit_mw == 650_000
    left = json.loads(state_path.read_text())["gpus"]
    assert list(left) == [fake.devices[0].uuid]  # only the failed one stays saved
