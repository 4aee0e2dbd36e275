"""Expected cost of mapping weights onto devices (DESIGN section 2): write pulses, reads, time
and energy of programming a model, some of its weights write-verified and some read back, with
the expected verify iterations of the chips' device models (`tsblib.devices`).

The write-verify statistics themselves (tolerance, iterations, residual) are
`tsblib.writeverify`, which the device models use; this module sits above both.
"""
from __future__ import annotations

from dataclasses import dataclass

from tsblib.config import DeviceConfig, MappingCostConfig, WriteVerifyConfig
from tsblib.devices.base import stack_of
from tsblib.writeverify import check_count, checked_sigma


@dataclass(frozen=True)
class MappingCost:
    """Expected cost of programming a model's weights onto devices."""

    devices: int
    """Devices programmed: weights * devices_per_weight."""
    verified_devices: int
    """Devices programmed with write-verify (the rest get one pulse, no read)."""
    write_pulses: float
    """Expected program pulses over all devices."""
    reads: float
    """Expected verify reads over all devices (one per write-verify iteration)."""
    time_s: float
    """Expected programming time, seconds, with `parallel_devices` programmed at once."""
    energy_j: float
    """Expected programming energy, joules."""

    def ratio_to(self, other: MappingCost) -> float:
        """Time ratio self.time_s / other.time_s: how many times longer `self` takes than `other`.

        Raises ValueError if `other.time_s` is 0 (ratio undefined).
        """
        if other.time_s == 0:
            raise ValueError("other.time_s = 0.0 is not allowed: the time ratio needs a reference "
                             "with time_s > 0")
        return self.time_s / other.time_s


def _validate_mapping(n_weights: int, n_verified_weights: int, sigma: float, device: DeviceConfig,
                      wv: WriteVerifyConfig, cost: MappingCostConfig) -> float:
    check_count("n_weights", n_weights, "an integer >= 0",
                 isinstance(n_weights, int) and n_weights >= 0)
    check_count("n_verified_weights", n_verified_weights,
                 f"an integer in [0, n_weights={n_weights}]",
                 isinstance(n_verified_weights, int) and 0 <= n_verified_weights <= n_weights)
    sigma = checked_sigma(sigma)
    device.validate()
    wv.validate()
    cost.validate()
    return sigma


def mapping_cost(n_weights: int, n_verified_weights: int, sigma: float, device: DeviceConfig,
                 wv: WriteVerifyConfig, cost: MappingCostConfig,
                 read_back_weights: int = 0) -> MappingCost:
    """Expected cost of mapping `n_weights` weights, `n_verified_weights` of them write-verified,
    and reading back `read_back_weights` of them once after programming.

    Each device of an unverified weight gets one pulse and no read; each device of a verified
    weight gets E[iterations] pulses and E[iterations] reads, with delta = `delta_for(sigma, wv)`
    and E[iterations] from the chips' device models (`stack_of(device).verify_iterations`: Gaussian
    1 / P(|e| < delta); a stuck device runs to `wv.max_iterations` and gives up);
    each device read back costs one more read (TSB reads its programmed backbone once, so that the
    block can be fine-tuned for the chip).
    time = (pulses * pulse_time + reads * read_time) / parallel_devices;
    energy = pulses * pulse_energy + reads * read_energy.
    """
    sigma = _validate_mapping(n_weights, n_verified_weights, sigma, device, wv, cost)
    per_weight = device.devices_per_weight
    devices = n_weights * per_weight
    verified = n_verified_weights * per_weight
    iterations = stack_of(device).verify_iterations(sigma, wv)
    pulses = float(devices - verified) + verified * iterations
    if not 0 <= read_back_weights <= n_weights:
        raise ValueError(f"read_back_weights = {read_back_weights!r} is not allowed: expected "
                         f"0 <= read_back_weights <= n_weights = {n_weights}")
    reads = verified * iterations + read_back_weights * per_weight
    time_s = (pulses * cost.pulse_time_s + reads * cost.read_time_s) / cost.parallel_devices
    energy_j = pulses * cost.pulse_energy_j + reads * cost.read_energy_j
    return MappingCost(devices=devices, verified_devices=verified, write_pulses=pulses,
                       reads=reads, time_s=time_s, energy_j=energy_j)


def full_over_selective_ratio(n_weights: int, n_verified: int, sigma: float, device: DeviceConfig,
                              wv: WriteVerifyConfig, cost: MappingCostConfig) -> float:
    """Time of verifying every weight over time of verifying only `n_verified` (closed form).

    N E (tp + tr) / ((N - V) tp + V E (tp + tr)) with N, V the device counts and E the expected
    iterations; the parallelism cancels. Raises ValueError if the selective time is 0.
    """
    sigma = _validate_mapping(n_weights, n_verified, sigma, device, wv, cost)
    e = stack_of(device).verify_iterations(sigma, wv)
    n = n_weights * device.devices_per_weight
    v = n_verified * device.devices_per_weight
    tp, tr = cost.pulse_time_s, cost.read_time_s
    selective = (n - v) * tp + v * e * (tp + tr)
    if selective == 0:
        raise ValueError(f"n_weights = {n_weights!r} with pulse_time_s = {tp!r} gives zero "
                         f"selective mapping time; the ratio needs n_weights >= 1 and times > 0")
    return n * e * (tp + tr) / selective
